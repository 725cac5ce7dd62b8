"""Choose a Q-bin model's decoding (prior correction S, temperature T) on validation photos only,
against the lightness baseline.

    python -m experiments.choose_temperature runs/cpu_colorizer --prior-correction 0,0.25,0.5,0.75 \\
        --min-colourfulness 25 --out runs/cpu_colorizer/decoding.json

Rebalanced training buys colour with raw AuC; the annealed-mean temperature T and the share S of
the rebalancing undone at decoding (``p / w ** S``) set where on that trade a model decodes (T = 1:
the mean, dull and safe; T -> 0: the mode, vivid and risky). This script decodes each validation
set (by default both the CPU recipe has: tiny-imagenet-64 ``val/`` at 64 px and the imagenet-samples
*validation* split at 256 px, neither used for training nor for test figures; ``--sets`` picks
one, ``--data`` / ``--split`` / ``--size`` name another), the model run at its saved size, for each
(S, T) of the grid, beside the lightness baseline on the same photos. The choice
(:func:`choose`): among the pairs whose raw AuC is no more than ``--raw-margin`` below the
baseline's on every set, and at least ``--min-colourfulness`` colourful on every set, the one whose
smallest rebalanced-AuC lead over the baseline (across the sets) is largest; when none is that
colourful, the most colourful pair within the margin (its least colourful set counts); when none is
within the margin, the pair with the smallest raw-AuC deficit. ``--save`` writes the choice into the
checkpoint's latest step (:func:`colorjax.checkpointing.save_decoding`), so ``colorize`` and
``evaluate`` decode as chosen; the recipe's ``bins.temperature`` and ``bins.prior_correction`` are
what training stores there in the first place.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from experiments.configs.scales import SAMPLES, TINY_IMAGENET

TEMPERATURES = (0.38, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 1.0)
RAW_MARGIN = 0.25  # AuC points below the baseline's raw AuC that a chosen pair may cost (the bar allows 0.5)
# name -> (data, split, evaluation crop side): the CPU recipe's two validation sets
VALIDATION_SETS = {"tiny_imagenet_val": (TINY_IMAGENET, "validation", 64),
                   "imagenet_samples_validation": (SAMPLES, "validation", 256)}


def choose(rows: dict, baselines: dict, *, raw_margin: float, min_colourfulness: float) -> tuple[tuple, str]:
    """``((S, T), why)`` from ``rows[(S, T)][set] = metrics`` and ``baselines[set] = metrics``, by the
    rule in the module's docstring."""
    def worst(key, metric, minus_baseline=True):
        return min(rows[key][s][metric] - (baselines[s][metric] if minus_baseline else 0.0) for s in baselines)

    eligible = [key for key in rows if worst(key, "auc_raw") >= -raw_margin]
    colourful = [key for key in eligible if worst(key, "colourfulness", False) >= min_colourfulness]
    if colourful and min_colourfulness > 0:
        return max(colourful, key=lambda key: worst(key, "auc_rebalanced")), "the best rebalanced lead within the bar"
    if eligible:
        return max(eligible, key=lambda key: worst(key, "colourfulness", False)), "the most colourful within the raw margin"
    return max(rows, key=lambda key: worst(key, "auc_raw")), "none within the margin: the smallest raw deficit"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sets", default=",".join(VALIDATION_SETS),
                        help=f"comma-separated validation sets among {list(VALIDATION_SETS)}")
    parser.add_argument("--data", default=None, help="instead of --sets: one other dataset (folder or TFDS name)")
    parser.add_argument("--split", default="validation", help="with --data")
    parser.add_argument("--size", type=int, default=256, help="with --data: evaluation crop side")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--raw-margin", type=float, default=RAW_MARGIN)
    parser.add_argument("--prior-correction", default=None,
                        help="decode p / w**S; a comma list searches S too (default: the checkpoint's saved S, else 0)")
    parser.add_argument("--min-colourfulness", type=float, default=0.0,
                        help="prefer the best rebalanced lead among pairs at least this colourful on every set")
    parser.add_argument("--temperatures", default=",".join(map(str, TEMPERATURES)), help="comma-separated T grid")
    parser.add_argument("--max-images", type=int, default=None, help="score at most this many photos of each set")
    parser.add_argument("--save", action="store_true",
                        help="write the chosen S and T into the checkpoint's latest step (colorize and evaluate read them)")
    parser.add_argument("--out", type=Path, default=None, help="write the table and choice as JSON here")
    args = parser.parse_args(argv)
    if args.data is not None:
        sets = {"given": (args.data, args.split, args.size)}
    else:
        unknown = [s for s in args.sets.split(",") if s not in VALIDATION_SETS]
        if unknown:
            parser.error(f"unknown sets {unknown}; known: {list(VALIDATION_SETS)}")
        sets = {s: VALIDATION_SETS[s] for s in args.sets.split(",")}
    from colorjax.data import make_loader
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import evaluate, first_images, model_predictor
    from colorjax.inference import Colorizer

    def colorizer_with(strength):  # the checkpoint's saved size and, for None, its saved correction
        return Colorizer.from_checkpoint(args.checkpoint, prior_correction=strength, default_size=64)

    temperatures = [float(t) for t in args.temperatures.split(",")]
    strengths = [None] if args.prior_correction is None else [float(x) for x in str(args.prior_correction).split(",")]
    colorizers = [colorizer_with(s) for s in strengths]
    prior = colorizers[0].prior
    keys = ("auc_raw", "auc_rebalanced", "colourfulness", "psnr")
    baselines, rows = {}, {}
    for name, (data, split, size) in sets.items():
        loader = make_loader(data, split, crop_size=size, batch_size=32, train=False, data_dir=args.data_dir,
                             drop_gray=True, num_epochs=1)
        batches = [{"rgb": rgb} for rgb in first_images(loader, args.max_images)]
        baselines[name] = evaluate(baseline_predictor("lightness", prior=prior), batches, prior=prior)[0]
        for colorizer in colorizers:
            for t in temperatures:
                rows.setdefault((colorizer.prior_correction, t), {})[name] = evaluate(
                    model_predictor(colorizer, t), batches, prior=prior)[0]
        print(f"{name}: {int(baselines[name]['num_images'])} photos of {data}:{split} at {size} px "
              f"(model at {colorizers[0].size} px)", flush=True)
    chosen, why = choose(rows, baselines, raw_margin=args.raw_margin, min_colourfulness=args.min_colourfulness)
    for name in sets:
        print(f"\n{name}\n| S | T | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
        print("| lightness | | " + " | ".join(f"{baselines[name][k]:.2f}" for k in keys) + " |")
        for (s, t), by_set in rows.items():
            mark = " **chosen**" if (s, t) == chosen else ""
            print(f"| {s:g} | {t:g}{mark} | " + " | ".join(f"{by_set[name][k]:.2f}" for k in keys) + " |")
    print(f"\nchosen S = {chosen[0]:g}, T = {chosen[1]:g} ({why})")
    if args.save:
        from colorjax.checkpointing import save_decoding

        step = save_decoding(args.checkpoint, temperature=chosen[1], prior_correction=chosen[0])
        print(f"saved in {args.checkpoint} step {step}: temperature {chosen[1]:g}, prior correction {chosen[0]:g}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "chosen": {"prior_correction": chosen[0], "temperature": chosen[1], "why": why},
            "sets": {name: {"data": d, "split": sp, "size": sz} for name, (d, sp, sz) in sets.items()},
            "baselines": baselines,
            "rows": [{"prior_correction": s, "temperature": t, **by_set} for (s, t), by_set in rows.items()]},
            indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
