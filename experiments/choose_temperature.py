"""Choose a Q-bin model's decoding temperature on validation photos, against the lightness baseline.

    python -m experiments.choose_temperature runs/cpu_colorizer

Rebalanced training buys colour with raw AuC; the annealed-mean temperature T sets where on that
trade a model decodes (T = 1: the mean, dull and safe; T -> 0: the mode, vivid and risky). This
script decodes the imagenet-samples *validation* split (never used for training or for the test
figures) at 256 px, the model run at its saved size, for each T of a grid, beside the lightness
baseline on the same photos, and picks the most colourful T whose raw AuC is no more than
``--raw-margin`` below the baseline's (the lowest-raw-AuC-cost colour). With several
``--prior-correction`` strengths S (``0,0.25,0.5``) it searches the (S, T) grid and picks, among the
pairs within the raw margin and at least ``--min-colourfulness``, the highest rebalanced AuC (the
most colourful pair within the margin when none is that colourful). It prints the table and the
choice; pass them to ``colorjax colorize / evaluate --temperature --prior-correction`` or set
``bins.temperature`` and ``bins.prior_correction`` in the recipe, which training stores in the
checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


from experiments.configs.scales import SAMPLES

TEMPERATURES = (0.38, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 1.0)
RAW_MARGIN = 0.25  # AuC points below the baseline's raw AuC that a chosen T may cost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default=SAMPLES)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--raw-margin", type=float, default=RAW_MARGIN)
    parser.add_argument("--prior-correction", default=None,
                        help="decode p / w**S; a comma list searches S too (default: the checkpoint's saved S, else 0)")
    parser.add_argument("--min-colourfulness", type=float, default=0.0,
                        help="among (S, T) within the raw margin, prefer the best rebalanced AuC at least this colourful")
    parser.add_argument("--out", type=Path, default=None, help="write the table and choice as JSON here")
    args = parser.parse_args(argv)
    from colorjax.data import make_loader
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import evaluate, model_predictor
    from colorjax.inference import Colorizer

    def colorizer_with(strength):  # the checkpoint's size (else --size) and, for None, its saved correction
        return Colorizer.from_checkpoint(args.checkpoint, prior_correction=strength, default_size=args.size)

    strengths = [None] if args.prior_correction is None else [float(x) for x in str(args.prior_correction).split(",")]
    colorizer = colorizer_with(strengths[0])
    prior, model_size = colorizer.prior, colorizer.size
    batches = [{"rgb": np.asarray(b["rgb"])} for b in make_loader(
        args.data, args.split, crop_size=args.size, batch_size=16, train=False, data_dir=args.data_dir,
        drop_gray=True, num_epochs=1)]
    keys = ("auc_raw", "auc_rebalanced", "colourfulness", "psnr")
    baseline = evaluate(baseline_predictor("lightness", prior=prior), batches, prior=prior)[0]
    rows = {}
    for strength in strengths:
        colorizer = colorizer_with(strength)
        s = colorizer.prior_correction
        for t in TEMPERATURES:
            rows[(s, t)] = evaluate(model_predictor(colorizer, t), batches, prior=prior)[0]
    print(f"{int(baseline['num_images'])} photos of {args.data}:{args.split} at {args.size} px (model at {model_size} px)")
    print("| S | T | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
    print("| lightness | | " + " | ".join(f"{baseline[k]:.2f}" for k in keys) + " |")
    for (s, t), m in rows.items():
        print(f"| {s:g} | {t:g} | " + " | ".join(f"{m[k]:.2f}" for k in keys) + " |")
    eligible = [key for key, m in rows.items() if m["auc_raw"] >= baseline["auc_raw"] - args.raw_margin]
    colourful = [key for key in eligible if rows[key]["colourfulness"] >= args.min_colourfulness]
    if colourful and args.min_colourfulness > 0:
        chosen = max(colourful, key=lambda key: rows[key]["auc_rebalanced"])
    elif eligible:
        chosen = max(eligible, key=lambda key: rows[key]["colourfulness"])
    else:
        chosen = max(rows, key=lambda key: rows[key]["auc_raw"])
    print(f"chosen S = {chosen[0]:g}, T = {chosen[1]:g}" + ("" if eligible else " (none within the margin: the highest raw AuC)"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"chosen": {"prior_correction": chosen[0], "temperature": chosen[1]},
                                        "baseline": baseline,
                                        "rows": [{"prior_correction": s, "temperature": t, **m}
                                                 for (s, t), m in rows.items()]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
