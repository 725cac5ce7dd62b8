"""How much of a table's differences is noise: bootstrap over test images, and where the weight sits.

    python -m experiments.bootstrap_table runs/zhang_tiny

For a finished ``run_table.py zhang`` workdir: recomputes every row's per-image metric sums on the
test split (with the workdir's shared prior), resamples the images 1000 times (seeded), and prints
each row's AuC raw / rebalanced with a bootstrap standard error, the paired difference of every row
against the rebalanced classifier, and how concentrated the rebalanced AuC's pixel weights are (the
share of the total weight carried by the top 1 % of pixels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


from experiments.run_table import ROWS, load_row_config

RESAMPLES = 1000
REFERENCE_ROW = "classification_rebalanced"


def per_image_sums(workdir: Path, row: str, batches, prior) -> dict:
    """Each test image's metric sums for ``row`` (a baseline or the row's checkpoint)."""
    from colorjax.evaluation import bootstrap
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import model_predictor

    entry = ROWS["zhang"][row]
    if isinstance(entry, str):
        predictor = baseline_predictor(entry, prior=prior)
    else:
        from colorjax.inference import Colorizer

        # the row config's temperature; the net sees the test crops as they are
        colorizer = Colorizer.from_checkpoint(workdir / row, size=batches[0].shape[1],
                                              temperature=load_row_config(entry[0], "tiny").bins.temperature)
        predictor = model_predictor(colorizer)
    return bootstrap.per_image_sums(predictor, batches, prior)


def weight_concentration(batches, prior) -> float:
    """Share of the total rebalanced-AuC weight carried by the top 1 % of test pixels."""
    from colorjax import color
    from colorjax.metrics import inverse_prior_weights

    w = np.concatenate([np.asarray(inverse_prior_weights(color.rgb_uint8_to_lab(b)[..., 1:], prior)).ravel()
                        for b in batches])
    top = np.sort(w)[::-1][: max(1, len(w) // 100)]
    return float(top.sum() / w.sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    args = parser.parse_args(argv)
    from colorjax.data import make_loader
    from colorjax.evaluation.bootstrap import aucs
    from colorjax.prior import ColourPrior

    config = load_row_config("zhang_classification_rebalanced.py", "tiny")
    prior = ColourPrior.load(args.workdir / "prior.npz")
    batches = [np.asarray(b["rgb"]) for b in make_loader(config.data.spec, "test", crop_size=config.data.crop_size,
                                                           batch_size=16, train=False, num_epochs=1)]
    rows = [r for r in ROWS["zhang"] if isinstance(ROWS["zhang"][r], str) or (args.workdir / r).is_dir()]
    sums = {row: per_image_sums(args.workdir, row, batches, prior) for row in rows}
    n = len(next(iter(sums.values()))["images"])
    rng = np.random.default_rng(0)
    samples = [rng.integers(0, n, n) for _ in range(RESAMPLES)]
    everything = np.arange(n)
    boot = {row: np.array([aucs(s, idx) for idx in samples]) for row, s in sums.items()}
    print(f"{n} test images, {RESAMPLES} bootstrap resamples; top 1 % of pixels carry "
          f"{100 * weight_concentration(batches, prior):.0f} % of the rebalanced-AuC weight\n")
    print(f"| row | AuC raw | AuC rebal. | rebal. minus {REFERENCE_ROW} (paired) |")
    print("|---|---|---|---|")
    for row in rows:
        raw, reb = aucs(sums[row], everything)
        se = boot[row].std(0)
        diff = boot[row][:, 1] - boot.get(REFERENCE_ROW, boot[row])[:, 1]
        point = reb - aucs(sums.get(REFERENCE_ROW, sums[row]), everything)[1]
        print(f"| {row} | {raw:.2f} +- {se[0]:.2f} | {reb:.2f} +- {se[1]:.2f} | {point:+.2f} +- {diff.std():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
