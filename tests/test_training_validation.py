"""In-run validation decodes as the checkpoint will be used: the saved temperature and the saved
prior correction (``bins.prior_correction``), so its scores are those of what ``colorize`` writes."""

from __future__ import annotations

import numpy as np

from colorjax.bins import zhang_bins
from colorjax.decode import annealed_mean
from colorjax.prior import ColourPrior
from colorjax.training import steps
from colorjax.training.trainer import build_objective


def _prior(centres) -> ColourPrior:
    counts = np.random.default_rng(0).integers(1, 1000, size=len(centres)).astype(np.float64)
    return ColourPrior.from_counts(counts, centres)


def test_validation_decodes_with_the_saved_prior_correction(tiny_config):
    centres = np.asarray(zhang_bins(), np.float32)
    prior = _prior(centres)
    config = tiny_config("bins.temperature=0.6", "bins.prior_correction=0.5")
    objective = build_objective(config, 4, centres, prior)
    logits = np.random.default_rng(1).normal(size=(2, 3, 3, len(centres))).astype(np.float32)
    # by hand: p(q) / w_q ** S, annealed at T (Zhang et al. 2016, eq. 5, on the corrected logits)
    corrected = logits - 0.5 * np.log(prior.weights)[None, None, None]
    expected = annealed_mean(corrected, centres, 0.6)
    np.testing.assert_allclose(steps.predicted_ab(objective, logits), expected, atol=1e-4)
    uncorrected = annealed_mean(logits, centres, 0.6)
    assert np.abs(np.asarray(expected) - np.asarray(uncorrected)).max() > 1.0  # the correction shows


def test_validation_without_a_correction_decodes_as_trained(tiny_config):
    centres = np.asarray(zhang_bins(), np.float32)
    config = tiny_config("bins.temperature=0.6", "bins.prior_correction=0.0")
    objective = build_objective(config, 4, centres, _prior(centres))
    logits = np.random.default_rng(2).normal(size=(1, 2, 2, len(centres))).astype(np.float32)
    np.testing.assert_allclose(steps.predicted_ab(objective, logits), annealed_mean(logits, centres, 0.6), atol=1e-5)
