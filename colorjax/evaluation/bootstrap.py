"""Paired bootstrap over test images: is one colorizer's AuC lead over another more than noise?

Both predictors are scored on the same images; each resample draws images with replacement and
recomputes both AuCs from the per-image sums (pixel-weighted, as the metrics themselves are), so the
lead's standard error accounts for the images the two share (Efron and Tibshirani 1993).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000


def per_image_sums(predictor, batches, prior) -> dict:
    """Each image's metric sums (:func:`colorjax.metrics.per_image_sums_lab`) for ``predictor``."""
    import jax.numpy as jnp

    from colorjax import color
    from colorjax.metrics import per_image_sums_lab

    parts = []
    for rgb in batches:
        lab = color.rgb_uint8_to_lab(np.asarray(rgb))
        pred = jnp.concatenate([lab[..., :1], predictor(lab)], axis=-1)
        parts.append({k: np.asarray(v, np.float64) for k, v in per_image_sums_lab(pred, lab, prior=prior).items()})
    if not parts:
        raise ValueError("no images to score")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def aucs(sums: dict, index: np.ndarray) -> tuple[float, float]:
    """``(raw AuC, rebalanced AuC)`` of the images ``index`` (with repeats) of ``sums``."""
    from colorjax.metrics import auc_from_hits

    raw = auc_from_hits(sums["auc_hits"][index].sum(0), sums["pixels"][index].sum())
    rebalanced = auc_from_hits(sums["auc_weighted_hits"][index].sum(0), sums["auc_weight"][index].sum())
    return float(raw), float(rebalanced)


def paired_lead(sums_a: dict, sums_b: dict, *, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """A's lead over B in raw and rebalanced AuC: the point estimate and its bootstrap standard error."""
    n = len(sums_a["pixels"])
    if len(sums_b["pixels"]) != n:
        raise ValueError("the two predictors were scored on different numbers of images")
    everything = np.arange(n)
    point = np.subtract(aucs(sums_a, everything), aucs(sums_b, everything))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        draws.append(np.subtract(aucs(sums_a, index), aucs(sums_b, index)))
    se = np.std(draws, axis=0)
    return {"raw": float(point[0]), "raw_se": float(se[0]), "rebalanced": float(point[1]),
            "rebalanced_se": float(se[1]), "images": n, "resamples": resamples}
