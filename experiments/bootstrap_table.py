"""How much of a table's differences is noise: bootstrap over the scored photos, and where the weight sits.

    python -m experiments.bootstrap_table zhang --scale tiny --workdir runs/zhang_tiny
    python -m experiments.bootstrap_table rrelu --scale tiny_imagenet --workdir runs/rrelu_tiny_imagenet

For a finished ``run_table.py`` workdir (``zhang`` or ``rrelu``): recomputes every row's per-image
metric sums on the photos the table was scored on (the scale's split and image count,
``experiments/configs/scales.py``; the workdir's shared prior), resamples the photos 1000 times
(seeded), and writes ``WORKDIR/bootstrap.md``: each row's AuC raw / rebalanced with its bootstrap
standard error, the paired difference of every row against the lightness lookup and against the
table's reference row, and how concentrated the rebalanced AuC's pixel weights are (the share of
the total weight carried by the top 1 % of pixels). ``run_table.py`` runs it after its table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from experiments.configs.scales import EVAL_IMAGES, EVAL_SPLIT, SCALES
from experiments.run_table import ROWS, load_row_config, table_config

RESAMPLES = 1000
# The row every other row is compared with, besides the lightness lookup: the paper's full method,
# and the activation the RReLU study found best (ReLU with BatchNorm).
REFERENCE_ROW = {"zhang": "classification_rebalanced", "rrelu": "patchnet_relu_bn"}


def per_image_sums(workdir: Path, table: str, row: str, scale: str, batches, prior) -> dict:
    """Each scored image's metric sums for ``row`` (a baseline or the row's checkpoint)."""
    from colorjax.evaluation import bootstrap
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import model_predictor

    entry = ROWS[table][row]
    if isinstance(entry, str):
        predictor = baseline_predictor(entry, prior=prior)
    else:
        from colorjax.inference import Colorizer

        # the row config's temperature, as run_table scores it; the net sees the crops as they are
        config = load_row_config(entry[0], scale, **entry[1])
        colorizer = Colorizer.from_checkpoint(workdir / row, size=batches[0].shape[1],
                                              temperature=config.bins.temperature)
        predictor = model_predictor(colorizer)
    return bootstrap.per_image_sums(predictor, batches, prior)


def weight_concentration(batches, prior) -> float:
    """Share of the total rebalanced-AuC weight carried by the top 1 % of scored pixels."""
    from colorjax import color
    from colorjax.metrics import inverse_prior_weights

    w = np.concatenate([np.asarray(inverse_prior_weights(color.rgb_uint8_to_lab(b)[..., 1:], prior)).ravel()
                        for b in batches])
    top = np.sort(w)[::-1][: max(1, len(w) // 100)]
    return float(top.sum() / w.sum())


def scored_batches(table: str, scale: str) -> list[np.ndarray]:
    """The photos ``run_table`` scores the table's rows on: the scale's split, colour photos only, at the
    rows' crop size, the first :data:`EVAL_IMAGES` of them in the loader's fixed order."""
    from colorjax.data import make_loader
    from colorjax.evaluation.evaluate import first_images

    config = table_config(table, scale)
    loader = make_loader(config.data.spec, EVAL_SPLIT[scale], crop_size=config.data.crop_size, batch_size=16,
                         train=False, data_dir=config.data.data_dir, drop_gray=True, num_epochs=1)
    return list(first_images(loader, EVAL_IMAGES[scale]))


def bootstrap_markdown(table: str, scale: str, workdir: Path, *, resamples: int = RESAMPLES) -> str:
    """The bootstrap table of a finished ``run_table`` workdir, in Markdown."""
    from colorjax.evaluation.bootstrap import aucs, paired_lead
    from colorjax.prior import ColourPrior

    prior = ColourPrior.load(workdir / "prior.npz")
    batches = scored_batches(table, scale)
    rows = [r for r in ROWS[table] if isinstance(ROWS[table][r], str) or (workdir / r).is_dir()]
    sums = {row: per_image_sums(workdir, table, row, scale, batches, prior) for row in rows}
    n = len(next(iter(sums.values()))["pixels"])
    rng = np.random.default_rng(0)
    samples = [rng.integers(0, n, n) for _ in range(resamples)]
    everything = np.arange(n)
    reference = REFERENCE_ROW[table]
    lines = [f"{n} scored photos ({EVAL_SPLIT[scale]} split), {resamples} bootstrap resamples; the top 1 % of "
             f"pixels carry {100 * weight_concentration(batches, prior):.0f} % of the rebalanced-AuC weight.", "",
             f"| row | AuC raw | AuC rebal. | raw minus lightness | rebal. minus lightness | rebal. minus {reference} |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        raw, reb = aucs(sums[row], everything)
        se = np.std([aucs(sums[row], idx) for idx in samples], axis=0)
        cells = [f"{raw:.2f} +- {se[0]:.2f}", f"{reb:.2f} +- {se[1]:.2f}"]
        for other, keys in (("lightness", ("raw", "rebalanced")), (reference, ("rebalanced",))):
            if other not in sums or other == row:
                cells += ["" for _ in keys]
                continue
            lead = paired_lead(sums[row], sums[other], resamples=resamples)
            cells += [f"{lead[k]:+.2f} +- {lead[f'{k}_se']:.2f}" for k in keys]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_bootstrap(table: str, scale: str, workdir: Path) -> str:
    """:func:`bootstrap_markdown` written to ``WORKDIR/bootstrap.md``; returns it."""
    markdown = bootstrap_markdown(table, scale, workdir)
    (workdir / "bootstrap.md").write_text(markdown)
    return markdown


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(REFERENCE_ROW))
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args(argv)
    print(write_bootstrap(args.table, args.scale, args.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
