"""Evaluation records on disk: ``NAME.json`` (everything), ``NAME.md`` (metrics table), ``NAME_grid.png``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from colorjax.grids import image_grid
from colorjax.safe_files import write_text_atomically


def report_paths(out: str | Path) -> dict[str, Path]:
    """The three files of the record ``out`` (a ``.json`` suffix is added when missing)."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix == ".json" else out
    return {"json": base.with_suffix(".json"), "md": base.with_suffix(".md"), "grid": base.with_name(base.name + "_grid.png")}


def format_value(value) -> str:
    """Numbers for tables: integers as is, others with 4 significant digits; ``-`` for missing."""
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def metrics_markdown(record: dict) -> str:
    """A Markdown summary of one evaluation record: what was evaluated, then metric | value."""
    what = record.get("checkpoint") or f"baseline {record.get('baseline')}"
    lines = [
        f"# Evaluation of {what}",
        "",
        f"data `{record['data']}`, split `{record['split']}`, {int(record['metrics']['num_images'])} images at "
        f"{record['size']} px, temperature {record.get('temperature')}, prior: {record.get('prior_source')}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {format_value(value)} |" for name, value in record["metrics"].items()]
    return "\n".join(lines) + "\n"


def write_report(out: str | Path, record: dict, grid_rows: list[list[np.ndarray]] = (), *,
                 markdown: Callable[[dict], str] = metrics_markdown) -> dict[str, Path]:
    """Write the record's JSON, its ``markdown`` and (when there are rows) the gray | prediction | truth
    grid; the JSON and Markdown whole or not at all (:func:`colorjax.safe_files.write_text_atomically`)."""
    paths = report_paths(out)
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(paths["json"], json.dumps(record, indent=2) + "\n")
    write_text_atomically(paths["md"], markdown(record))
    if grid_rows:
        Image.fromarray(image_grid(grid_rows)).save(paths["grid"])
    return paths


def read_record(path: str | Path) -> dict:
    """An evaluation record written by :func:`write_report`."""
    return json.loads(report_paths(path)["json"].read_text())
