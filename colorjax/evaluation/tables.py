"""``colorjax table``: the papers' tables from evaluation records, ours beside the published numbers.

``colorjax table zhang|comparison|rrelu --records DIR --out FILE.md`` reads ``DIR/ROW.json``
(written by ``colorjax evaluate --out DIR/ROW``, one per row; :data:`TABLES` lists the row names)
and writes a Markdown table; a missing record leaves its row's cells empty and is listed below the
table. ``colorjax table temperature --checkpoint DIR --data SPEC --out FILE.png`` writes the
temperature sweep grid (see :mod:`colorjax.evaluation.temperature_sweep`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from colorjax.evaluation import paper_numbers as paper
from colorjax.evaluation.report import format_value, read_record, report_paths
from colorjax.inference.colorizer import DEFAULT_SIZE


@dataclasses.dataclass(frozen=True)
class Column:
    metric: str  # key in an evaluation record's "metrics"
    header: str
    paper_key: str | None = None  # key in the row's paper values; None: no paper column


@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    rows: tuple[tuple[str, str], ...]  # (record name, label)
    columns: tuple[Column, ...]
    paper: dict  # record name -> paper values
    source: str
    notes: tuple[str, ...] = ()


ZHANG = Table(
    title="Zhang et al. 2016, Table 1: colorization on held-out images",
    rows=(
        ("gray", "Gray (ab = 0)"),
        ("random", "Random (colours of another image)"),
        ("lightness", "Lightness lookup (mean ab per L; not in the paper)"),
        ("regression_l2", "L2 regression"),
        ("classification", "Classification, no rebalancing"),
        ("classification_rebalanced", "Classification, rebalanced (full)"),
    ),
    columns=(
        Column("auc_raw", "AuC raw %", "auc_raw"),
        Column("auc_rebalanced", "AuC rebal. %", "auc_rebalanced"),
        Column("psnr", "PSNR dB", "psnr"),
        Column("colourfulness", "colourfulness", "colourfulness"),
    ),
    paper=paper.ZHANG_TABLE1,
    source=paper.ZHANG_TABLE1_SOURCE,
    notes=("Paper pattern: gray and L2 high on raw AuC; the rebalanced classifier best on rebalanced AuC "
           "and colourfulness.",),
)

COMPARISON = Table(
    title="Pappalardo and Caterini: U-Net vs Pix2Pix (and NoGAN)",
    rows=(("unet", "U-Net (L1; + perceptual at full scale)"), ("pix2pix", "Pix2Pix"), ("nogan", "NoGAN")),
    columns=(
        Column("custom_accuracy", "custom accuracy", "custom_accuracy"),
        Column("rmse", "RMSE", "rmse"),
        Column("psnr", "PSNR dB", "psnr_from_rmse"),
    ),
    paper={k: {**v, "psnr_from_rmse": v["rmse"] and round(paper.psnr_from_rmse(v["rmse"]), 2)}
           for k, v in paper.COMPARISON_TABLE.items()},
    source=paper.COMPARISON_SOURCE,
    notes=(
        "The study prints PSNR -150.4 (U-Net) and -153.5 (Pix2Pix), impossible for an RMSE of 0.206 / "
        "0.216 on [0, 1]; the paper column shows the PSNR that RMSE implies, 20 log10(1 / RMSE).",
        "The study's NoGAN run failed (undertrained discriminator) and has no numbers.",
    ),
)

ACTIVATION_ROWS = tuple(
    (f"patchnet_{act}_{'bn' if bn else 'nobn'}", f"{act}, {'with' if bn else 'without'} BatchNorm")
    for bn in (True, False) for act in paper.ACTIVATIONS
)
RRELU = Table(
    title="The RReLU study: activations on the patch net (Q-bin classifier)",
    rows=(("gray", "Gray (ab = 0)"), ("lightness", "Lightness lookup (mean ab per L)"), *ACTIVATION_ROWS),
    columns=(
        Column("auc_raw", "AuC raw %"),
        Column("auc_rebalanced", "AuC rebal. %"),
        Column("psnr", "PSNR dB"),
        Column("colourfulness", "colourfulness"),
    ),
    paper={},
    source="no published numbers for colorization",
    notes=(paper.RRELU_FINDING + ".",),
)

TABLES = {"zhang": ZHANG, "comparison": COMPARISON, "rrelu": RRELU}


def load_records(table: Table, records_dir: str | Path) -> dict[str, dict]:
    """The records of the table's rows that exist in ``records_dir``."""
    found = {}
    for name, _ in table.rows:
        path = report_paths(Path(records_dir) / name)["json"]
        if path.exists():
            found[name] = read_record(path)
    return found


def render_table(table: Table, records: dict[str, dict]) -> str:
    """The table in Markdown: per column our value, then the paper's where it has one."""
    header = ["method"]
    for col in table.columns:
        header += [f"{col.header} (ours)"] + ([f"{col.header} (paper)"] if col.paper_key else [])
    header.append("images")
    lines = [f"## {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, label in table.rows:
        metrics = records.get(name, {}).get("metrics", {})
        cells = [label]
        for col in table.columns:
            cells.append(format_value(metrics.get(col.metric)))
            if col.paper_key:
                cells.append(format_value(table.paper.get(name, {}).get(col.paper_key)))
        cells.append(format_value(metrics.get("num_images")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Paper: {table.source}.", *table.notes]
    described = next(iter(records.values()), None)
    if described:
        lines.append(f"Ours: data `{described['data']}`, split `{described['split']}`, {described['size']} px, "
                     f"rebalancing prior: {described.get('prior_source')}.")
    missing = [name for name, _ in table.rows if name not in records]
    if missing:
        lines.append(f"No record for: {', '.join(missing)}.")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", choices=[*TABLES, "temperature"], help="which table to write")
    parser.add_argument("--out", required=True, help="Markdown file (PNG for the temperature grid)")
    parser.add_argument("--records", help="folder of evaluation records ROW.json (tables zhang, comparison, rrelu)")
    parser.add_argument("--checkpoint", help="temperature: the Q-bin model to sweep")
    parser.add_argument("--data", default="embedded", help="temperature: images to colorize")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=6, help="temperature: rows of the grid")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="temperature: the crop side the model sees")


def run(args: argparse.Namespace) -> int:
    if args.table == "temperature":
        if not args.checkpoint:
            print("table temperature: --checkpoint is required", file=sys.stderr)
            return 2
        from colorjax.evaluation.temperature_sweep import write_sweep

        write_sweep(args.checkpoint, args.data, args.out, split=args.split, images=args.images, size=args.size,
                    data_dir=args.data_dir)
        print(f"temperature sweep -> {args.out}")
        return 0
    if not args.records or not Path(args.records).is_dir():
        print(f"table {args.table}: --records must be a folder of evaluation records", file=sys.stderr)
        return 2
    table = TABLES[args.table]
    records = load_records(table, args.records)
    if not records:
        print(f"table {args.table}: no records in {args.records} (expected {', '.join(n for n, _ in table.rows)})",
              file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render_table(table, records))
    print(f"{args.table}: {len(records)} of {len(table.rows)} rows -> {args.out}")
    return 0
