"""Train and evaluate every row of one of the papers' tables, then write the table.

    python -m experiments.run_table zhang --scale tiny --workdir runs/zhang_tiny
    python -m experiments.run_table comparison --scale tiny --workdir runs/comparison_tiny
    python -m experiments.run_table rrelu --scale tiny --workdir runs/rrelu_tiny
    python -m experiments.run_table temperature --workdir runs/zhang_tiny   # needs the zhang run
    python -m experiments.run_table zhang --scale tiny_imagenet --workdir runs/zhang_tiny_imagenet
    python -m experiments.run_table rrelu --scale tiny_imagenet --workdir runs/rrelu_tiny_imagenet

For each row: train its config (``experiments/<row config>.py`` at ``--scale``) into
``WORKDIR/<row>`` unless that run already finished, then evaluate the checkpoint on the scale's held-out split
(``scales.EVAL_SPLIT``) into ``WORKDIR/records/<row>.json``; baselines are only evaluated. All rows share one colour prior,
counted once on the training split (``WORKDIR/prior.npz``), so their rebalanced AuCs are comparable.
The table goes to ``WORKDIR/<table>.md``, with each row's wall time; for ``zhang`` and ``rrelu`` each
row's bootstrap error and paired leads go to ``WORKDIR/bootstrap.md`` (``bootstrap_table.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from colorjax.training.commands import load_config_module
from experiments.configs.scales import EVAL_IMAGES, EVAL_SPLIT, SCALES

EXPERIMENTS = Path(__file__).resolve().parent

# table -> row -> (config file, keyword arguments of its get_config) or a baseline name
ROWS = {
    "zhang": {
        "gray": "gray",
        "random": "random",
        "lightness": "lightness",
        "regression_l2": ("zhang_regression_l2.py", {}),
        "classification": ("zhang_classification.py", {}),
        "classification_rebalanced": ("zhang_classification_rebalanced.py", {}),
    },
    "comparison": {
        "unet": ("comparison_unet.py", {}),
        "pix2pix": ("comparison_pix2pix.py", {}),
        "nogan": ("comparison_nogan.py", {}),
    },
    "rrelu": {
        "gray": "gray",
        "lightness": "lightness",
        **{f"patchnet_{act}_{'bn' if bn else 'nobn'}": ("rrelu_patchnet.py", {"activation": act, "batch_norm": bn})
        for bn in (True, False) for act in ("relu", "leaky_relu", "prelu", "elu", "rrelu")},
    },
}


def load_row_config(filename: str, scale: str, **kwargs):
    """``get_config(scale, **kwargs)`` of an experiment file."""
    return load_config_module(EXPERIMENTS / "configs" / filename).get_config(scale, **kwargs)


def table_config(table: str, scale: str):
    """The config of the table's first trained row: the data, size and data dir every row shares."""
    config_file, kwargs = next(v for v in ROWS[table].values() if not isinstance(v, str))
    return load_row_config(config_file, scale, **kwargs)


def finished(workdir: Path, num_steps: int) -> bool:
    """True when ``workdir`` holds the checkpoint of the run's last step."""
    return (workdir / "checkpoints" / str(num_steps) / "model").is_dir()


def shared_prior(path: Path, spec: str, size: int, data_dir):
    if not path.exists():
        from colorjax.evaluation.commands import count_prior

        count_prior(spec, "train", size=size, data_dir=data_dir).save(path)
    return path


def run_rows(table: str, rows: list[str], scale: str, workdir: Path, steps: int | None) -> dict:
    """Train (where needed) and evaluate ``rows``; returns ``{row: wall seconds}``."""
    from colorjax.evaluation.commands import evaluate_to_file
    from colorjax.training import train
    from colorjax.training.trainer import total_steps

    base = table_config(table, scale)
    spec, size, data_dir = base.data.spec, base.data.crop_size, base.data.data_dir
    prior = shared_prior(workdir / "prior.npz", spec, size, data_dir)
    timings = {}
    for row in rows:
        start, entry = time.perf_counter(), ROWS[table][row]
        target = dict(data=spec, split=EVAL_SPLIT[scale], out=workdir / "records" / row, size=size, batch_size=16,
                      prior_path=prior, data_dir=data_dir, max_images=EVAL_IMAGES[scale])
        if isinstance(entry, str):
            evaluate_to_file(baseline=entry, **target)
        else:
            config = load_row_config(entry[0], scale, **entry[1])
            if steps is not None:
                config.train.num_steps = config.train.checkpoint_every = steps
            run_dir = workdir / row
            if not finished(run_dir, total_steps(config)):
                train(config, run_dir, resume=(run_dir / "checkpoints").is_dir())
            evaluate_to_file(checkpoint=run_dir, temperature=config.bins.temperature, **target)
        timings[row] = round(time.perf_counter() - start, 1)
        print(f"{table}/{row}: {timings[row]} s", flush=True)
    return timings


def write_table(table: str, workdir: Path, timings: dict) -> Path:
    from colorjax.evaluation.tables import TABLES, load_records, render_table

    timing_file = workdir / "timings.json"
    all_timings = {**(json.loads(timing_file.read_text()) if timing_file.exists() else {}), **timings}
    timing_file.write_text(json.dumps(all_timings, indent=2) + "\n")
    markdown = render_table(TABLES[table], load_records(TABLES[table], workdir / "records"))
    markdown += "Wall time per row (train + evaluate), s: " + ", ".join(f"{k} {v}" for k, v in all_timings.items()) + ".\n"
    out = workdir / f"{table}.md"
    out.write_text(markdown)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=[*ROWS, "temperature"])
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--rows", default=None, help="comma-separated subset of the table's rows")
    parser.add_argument("--steps", type=int, default=None, help="override every trained row's num_steps")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    from experiments.bootstrap_table import REFERENCE_ROW, write_bootstrap

    if args.table == "temperature":
        from colorjax.evaluation.temperature_sweep import write_sweep

        config = load_row_config("zhang_classification_rebalanced.py", args.scale)
        write_sweep(args.workdir / "classification_rebalanced", config.data.spec, args.workdir / "temperature.png",
                    size=config.data.crop_size, images=6, data_dir=config.data.data_dir)
        print((args.workdir / "temperature.md").read_text())
        return 0
    rows = list(ROWS[args.table]) if args.rows is None else args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS[args.table]]
    if unknown:
        parser.error(f"unknown rows {unknown}; {args.table} has {list(ROWS[args.table])}")
    start = time.perf_counter()
    timings = run_rows(args.table, rows, args.scale, args.workdir, args.steps)
    out = write_table(args.table, args.workdir, timings)
    print(out.read_text())
    if args.table in REFERENCE_ROW:  # each row's bootstrap error and its paired leads
        print(write_bootstrap(args.table, args.scale, args.workdir))
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
