"""Colour prior: counting, smoothing and rebalancing weights against hand computations."""

import jax
import numpy as np
import pytest

from colorjax import bins, prior
from colorjax.prior import ColourPrior

LINE = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]], np.float32)


def test_bin_counts_by_hand():
    ab = np.array([[[1.0, 2.0], [9.0, 0.0], [16.0, -3.0], [40.0, 0.0]]], np.float32)
    np.testing.assert_array_equal(prior.bin_counts(ab, LINE), [1, 1, 2])
    mask = np.array([[1, 0, 1, 1]], bool)
    np.testing.assert_array_equal(jax.jit(prior.bin_counts)(ab, LINE, mask), [1, 0, 2])


def test_count_bins_over_skips_gray_images():
    colourful = np.zeros((2, 2, 2, 2), np.float32)
    colourful[0] = [[[0.0, 0.0], [12.0, 1.0]], [[21.0, 0.0], [19.0, 0.0]]]
    gray = np.zeros((1, 2, 2, 2), np.float32)  # every pixel at centre 0
    counts, images = prior.count_bins_over([colourful[:1], gray], LINE)
    np.testing.assert_array_equal(counts, [1, 1, 2])
    assert images == 1 and counts.dtype == np.float64
    counts, images = prior.count_bins_over([colourful[:1], gray], LINE, skip_gray=False)
    np.testing.assert_array_equal(counts, [5, 1, 2])
    assert images == 2


def test_smoothed_prior_and_weights_by_hand():
    # p = (1/2, 1/4, 1/4) on three centres 10 apart; sigma 5 gives kernel exp(-d^2 / 50):
    # e^-2 between neighbours and e^-8 between the two ends.
    e2, e8 = np.exp(-2.0), np.exp(-8.0)
    blurred = np.array([0.5 + 0.25 * e2 + 0.25 * e8, 0.5 * e2 + 0.25 + 0.25 * e2, 0.5 * e8 + 0.25 * e2 + 0.25])
    p = blurred / blurred.sum()
    w = 1.0 / (0.5 * p + 0.5 / 3)
    w = w / (p * w).sum()
    result = ColourPrior.from_counts([2.0, 1.0, 1.0], LINE, smoothing_sigma=5.0, lam=0.5)
    np.testing.assert_allclose(result.probs, p, rtol=1e-12)
    np.testing.assert_allclose(result.weights, w, rtol=1e-12)
    assert np.sum(result.probs * result.weights) == pytest.approx(1.0, abs=1e-12)
    assert result.num_pixels == 4


def test_unsmoothed_prior_is_rrelu_studys_variant():
    result = ColourPrior.from_counts([2.0, 1.0, 1.0], LINE, smoothing_sigma=None)
    np.testing.assert_allclose(result.probs, [0.5, 0.25, 0.25])
    assert ColourPrior.from_counts([2.0, 1.0, 1.0], LINE, smoothing_sigma=0).smoothing_sigma is None
    # w ~ 1 / (0.25 + 1/6) = 2.4 and 1 / (0.125 + 1/6) = 24/7; sum p w = 1 fixes the scale.
    raw = np.array([2.4, 24 / 7, 24 / 7])
    np.testing.assert_allclose(result.weights, raw / (raw @ [0.5, 0.25, 0.25]))


def test_inverse_prior_gives_zero_weight_to_empty_bins():
    weights = prior.rebalancing_weights([0.5, 0.5, 0.0], lam=0.0)
    np.testing.assert_allclose(weights, [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="lambda"):
        prior.rebalancing_weights([1.0], lam=1.5)


def test_uniform_prior_has_unit_weights():
    uniform = ColourPrior.uniform(bins.zhang_bins())
    np.testing.assert_allclose(uniform.weights, 1.0)
    np.testing.assert_allclose(uniform.probs, 1 / 313)


def test_zhang_bins_prior_sums_to_one():
    counts = np.random.default_rng(0).integers(0, 1000, 313)
    result = ColourPrior.from_counts(counts, bins.zhang_bins())
    assert result.probs.sum() == pytest.approx(1.0) and np.sum(result.probs * result.weights) == pytest.approx(1.0)
    # Each weight by hand from the smoothed distribution: 1 / (0.5 p + 0.5 / 313), scaled so that
    # sum p w = 1 (a sum over the smoothed p, not the raw counts).
    mixed = 0.5 * result.probs + 0.5 / 313
    np.testing.assert_allclose(result.weights, (1 / mixed) / np.sum(result.probs / mixed), rtol=1e-12)
    from scipy.spatial.distance import cdist

    kernel = np.exp(-cdist(bins.zhang_bins(), bins.zhang_bins(), "sqeuclidean") / (2 * 5.0**2))
    smoothed = kernel @ (counts / counts.sum())
    np.testing.assert_allclose(result.probs, smoothed / smoothed.sum(), rtol=1e-10)


def test_weight_ratio_reaches_the_uniform_mixture_bound():
    # All mass in one bin, no smoothing: the ratio of the largest to the smallest weight is
    # (0.5 + 0.5 / Q) / (0.5 / Q) = Q + 1 exactly, the largest any distribution can give at lambda = 0.5.
    counts = np.zeros(313)
    counts[7] = 10.0
    result = ColourPrior.from_counts(counts, bins.zhang_bins(), smoothing_sigma=None)
    assert result.weights.max() / result.weights.min() == pytest.approx(314.0, rel=1e-12)
    assert int(np.argmin(result.weights)) == 7


def test_save_and_load_round_trip(tmp_path):
    for sigma in (5.0, None):
        original = ColourPrior.from_counts([3.0, 0.0, 1.0], LINE, smoothing_sigma=sigma, num_images=7)
        original.save(tmp_path / "prior.npz")
        loaded = ColourPrior.load(tmp_path / "prior.npz")
        for name in ("centres", "counts", "probs", "weights"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        assert (loaded.smoothing_sigma, loaded.lam, loaded.num_images) == (sigma, 0.5, 7)
        assert loaded.metadata()["num_pixels"] == 4


def test_load_refuses_bad_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        ColourPrior.load(tmp_path / "junk.npz")
    good = ColourPrior.from_counts([1.0, 1.0, 2.0], LINE)
    np.savez(tmp_path / "bad.npz", centres=good.centres, counts=good.counts, weights=good.weights * 2,
             metadata=np.array('{"format_version": 1, "smoothing_sigma": 5.0, "lam": 0.5, "num_images": null}'))
    with pytest.raises(ValueError, match="bad.npz.*disagree"):
        ColourPrior.load(tmp_path / "bad.npz")


def test_load_never_suggests_allow_pickle(tmp_path):
    import pickle

    (tmp_path / "text.npz").write_text("a text file")
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"centres": [1, 2]}))
    np.savez(tmp_path / "objects.npz", centres=np.array([{"a": 1}], dtype=object))
    for name, reason in [("text", "not an .npz archive"), ("pickle", "not an .npz archive"),
                         ("objects", "holds pickled objects, which a colour prior never does")]:
        with pytest.raises(ValueError, match=f"{name}.npz: not a colour prior file") as caught:
            ColourPrior.load(tmp_path / f"{name}.npz")
        assert reason in str(caught.value) and "allow_pickle" not in str(caught.value)


def test_per_pixel_weights():
    """The prior's weights at each ground-truth ab's nearest bin (the loss's rebalancing weights;
    zeroing gray images is losses.masked_mean's, tested in test_losses)."""
    from colorjax.training import losses

    result = ColourPrior.from_counts([2.0, 1.0, 1.0], LINE, smoothing_sigma=None)
    ab = np.array([[[[1.0, 0.0], [14.0, 0.0]]], [[[3.0, 0.0], [0.0, 0.0]]]], np.float32)  # [2, 1, 2, 2]
    weights = jax.jit(losses.rebalancing_weights)(ab, result.centres, result.weights)
    np.testing.assert_allclose(weights, result.weights[[[[0, 1]], [[0, 0]]]], rtol=1e-6)