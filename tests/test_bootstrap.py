"""Paired bootstrap of AuC leads: point estimates by hand, errors that shrink with agreement."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.bins import zhang_bins
from colorjax.evaluation import bootstrap
from colorjax.prior import ColourPrior


def _auc_by_hand(distances):
    curve = np.array([(distances <= t).mean() for t in range(151)])
    return 100.0 * np.trapezoid(curve) / 150.0


def _photos(n=12, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_paired_lead_matches_a_hand_computation():
    import skimage.color

    photos = _photos()
    prior = ColourPrior.uniform(zhang_bins())
    true_ab = skimage.color.rgb2lab(photos / 255.0)[..., 1:]
    gray = lambda lab: jnp.zeros(lab.shape[:-1] + (2,), lab.dtype)  # noqa: E731
    half = lambda lab: lab[..., 1:] * 0.5  # noqa: E731  (half the true chroma: closer than gray)
    sums_half = bootstrap.per_image_sums(half, [photos[:5], photos[5:]], prior)
    sums_gray = bootstrap.per_image_sums(gray, [photos], prior)
    lead = bootstrap.paired_lead(sums_half, sums_gray, resamples=200)
    expected = _auc_by_hand(np.linalg.norm(true_ab * 0.5, axis=-1)) - _auc_by_hand(np.linalg.norm(true_ab, axis=-1))
    assert lead["raw"] == pytest.approx(expected, abs=0.05)
    assert lead["raw"] > 0 and 0 < lead["raw_se"] < lead["raw"]
    assert lead["images"] == 12
    # a predictor against itself: no lead and no spread
    same = bootstrap.paired_lead(sums_gray, sums_gray, resamples=50)
    assert same["raw"] == 0 and same["raw_se"] == 0 and same["rebalanced_se"] == 0


def test_paired_lead_refuses_different_image_sets():
    prior = ColourPrior.uniform(zhang_bins())
    gray = lambda lab: jnp.zeros(lab.shape[:-1] + (2,), lab.dtype)  # noqa: E731
    a = bootstrap.per_image_sums(gray, [_photos(4)], prior)
    b = bootstrap.per_image_sums(gray, [_photos(5)], prior)
    with pytest.raises(ValueError, match="different numbers"):
        bootstrap.paired_lead(a, b)
