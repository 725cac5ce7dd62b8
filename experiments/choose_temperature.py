"""Choose a Q-bin model's decoding temperature on validation photos, against the lightness baseline.

    python -m experiments.choose_temperature runs/cpu_colorizer

Rebalanced training buys colour with raw AuC; the annealed-mean temperature T sets where on that
trade a model decodes (T = 1: the mean, dull and safe; T -> 0: the mode, vivid and risky). This
script decodes the imagenet-samples *validation* split (never used for training or for the test
figures) at 256 px, the model run at its saved size, for each T of a grid, beside the lightness
baseline on the same photos, and picks the most colourful T whose raw AuC is no more than
``--raw-margin`` below the baseline's (the lowest-raw-AuC-cost colour). It prints the table and the
choice; pass it to ``colorjax colorize / evaluate --temperature`` or set ``bins.temperature`` in the
recipe, which training stores in the checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


from experiments.scales import SAMPLES

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
    parser.add_argument("--prior-correction", type=float, default=None,
                        help="decode p / w**S (default: the checkpoint's saved S, else 0)")
    parser.add_argument("--out", type=Path, default=None, help="write the table and choice as JSON here")
    args = parser.parse_args(argv)
    from colorjax.checkpointing import inference_defaults, load_model
    from colorjax.data import make_loader
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import evaluate, model_predictor
    from colorjax.inference.colorize import checkpoint_directory

    from colorjax.inference.commands import apply_prior_correction

    model, model_config, prior = load_model(checkpoint_directory(args.checkpoint))
    correction = apply_prior_correction(model, model_config, prior, args.prior_correction)
    model_size = inference_defaults(model_config)["size"] or args.size
    batches = [{"rgb": np.asarray(b["rgb"])} for b in make_loader(
        args.data, args.split, crop_size=args.size, batch_size=16, train=False, data_dir=args.data_dir,
        drop_gray=True, num_epochs=1)]
    keys = ("auc_raw", "auc_rebalanced", "colourfulness", "psnr")
    baseline = evaluate(baseline_predictor("lightness", prior=prior), batches, prior=prior)[0]
    rows = {t: evaluate(model_predictor(model, t, model_size=model_size), batches, prior=prior)[0] for t in TEMPERATURES}
    print(f"{int(baseline['num_images'])} photos of {args.data}:{args.split} at {args.size} px (model at {model_size} px, "
          f"rebalancing correction {correction:g})")
    print("| T | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    print("| lightness | " + " | ".join(f"{baseline[k]:.2f}" for k in keys) + " |")
    for t, m in rows.items():
        print(f"| {t:g} | " + " | ".join(f"{m[k]:.2f}" for k in keys) + " |")
    eligible = [t for t, m in rows.items() if m["auc_raw"] >= baseline["auc_raw"] - args.raw_margin]
    chosen = max(eligible, key=lambda t: rows[t]["colourfulness"]) if eligible else max(
        TEMPERATURES, key=lambda t: rows[t]["auc_raw"])
    print(f"chosen T = {chosen:g}" + ("" if eligible else " (no T within the margin: the highest raw AuC)"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"chosen": chosen, "baseline": baseline,
                                        "rows": {str(t): m for t, m in rows.items()}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
