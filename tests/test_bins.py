"""Bin sets, nearest bins, soft-encoding and the non-gray test against hand and numpy references."""

from pathlib import Path

import jax
import numpy as np
import pytest

from colorjax import bins
from colorjax.color import rgb_uint8_to_lab

SHARED_BINS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "zhang16" / "pts_in_hull.npy"


def _random_ab(shape, seed=0):
    return np.random.default_rng(seed).uniform(-100, 100, size=(*shape, 2)).astype(np.float32)


@pytest.mark.skipif(not SHARED_BINS.exists(), reason="../shared/data/zhang16/pts_in_hull.npy not present")
def test_zhang_bins_equal_the_released_table():
    released = np.load(SHARED_BINS)
    centres = bins.zhang_bins()
    assert centres.dtype == np.float32 and centres.shape == (313, 2)
    np.testing.assert_array_equal(centres, released.astype(np.float32))


def test_zhang_bins_are_a_sorted_grid_of_ten():
    centres = bins.zhang_bins()
    assert np.all(centres % 10 == 0)
    order = np.lexsort((centres[:, 1], centres[:, 0]))
    np.testing.assert_array_equal(order, np.arange(313))
    assert centres[:, 0].min() == -90 and centres[:, 0].max() == 100
    assert centres[:, 1].min() == -110 and centres[:, 1].max() == 100


def test_grid_cell_counts_and_bins_by_hand():
    ab = np.array([[0.0, 0.0], [4.9, -5.1], [12.0, 0.0], [200.0, -200.0], [12.0, 3.0]], np.float32)
    mask = np.array([1, 1, 1, 1, 0], np.float32)
    counts = np.asarray(bins.grid_cell_counts(ab, grid=10, mask=mask))
    assert counts.shape == (23, 23) and counts.sum() == 4
    # Cells are centred on multiples of 10: (0, 0) -> (11, 11); (4.9, -5.1) -> (0, -10) -> (11, 10);
    # (12, 0) -> (10, 0) -> (12, 11); (200, -200) clamps to the corner (110, -110) -> (22, 0).
    expected = {(11, 11): 1, (11, 10): 1, (12, 11): 1, (22, 0): 1}
    for (i, j), n in expected.items():
        assert counts[i, j] == n
    centres = bins.grid_bins(counts, grid=10)
    np.testing.assert_array_equal(centres, [[0, -10], [0, 0], [10, 0], [110, -110]])
    # Counts merge by addition; min_count filters rare cells.
    merged = counts + np.asarray(bins.grid_cell_counts(ab[:1], grid=10))
    np.testing.assert_array_equal(bins.grid_bins(merged, grid=10, min_count=2), [[0, 0]])


def test_grid_of_five_and_bad_grid():
    counts = np.asarray(bins.grid_cell_counts(np.array([[2.4, -2.6]], np.float32), grid=5))
    assert counts.shape == (45, 45)
    np.testing.assert_array_equal(bins.grid_bins(counts, grid=5), [[0, -5]])
    with pytest.raises(ValueError, match="divide"):
        bins.grid_cell_counts(np.zeros((1, 2)), grid=7)
    with pytest.raises(ValueError, match="shape"):
        bins.grid_bins(counts, grid=10)


def test_grid_bins_of_the_srgb_gamut_lie_in_zhangs_set():
    # The full 8-bit gamut gives 261 grid-10 cells (docs/reference.md section 2), all among Zhang's 313.
    levels = np.append(np.arange(0, 256, 10), 255).astype(np.uint8)
    rgb = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    counts = bins.grid_cell_counts(rgb_uint8_to_lab(rgb)[..., 1:], grid=10)
    found = {tuple(c) for c in bins.grid_bins(counts, grid=10).astype(int)}
    zhang = {tuple(c) for c in bins.zhang_bins().astype(int)}
    assert found <= zhang
    assert 255 <= len(found) <= 261


def test_nearest_bin_matches_numpy_brute_force():
    centres = bins.zhang_bins()
    ab = _random_ab((3, 7, 5))
    d2 = ((ab[..., None, :].astype(np.float64) - centres) ** 2).sum(-1)
    got = np.asarray(jax.jit(bins.nearest_bin)(ab, centres))
    assert got.dtype == np.int32 and got.shape == (3, 7, 5)
    np.testing.assert_array_equal(got, d2.argmin(-1))


def test_soft_encode_by_hand_at_a_centre():
    # ab = (0, 0) is a centre; its 4 nearest neighbours lie at distance 10, so with sigma 5 each gets
    # exp(-100 / 50) = e^-2 relative to the centre's 1.
    centres = bins.zhang_bins()
    encoded = np.asarray(bins.soft_encode(np.zeros((1, 2), np.float32), centres))[0]
    norm = 1 + 4 * np.exp(-2.0)
    origin = np.flatnonzero((centres == 0).all(-1))[0]
    assert encoded[origin] == pytest.approx(1 / norm, rel=1e-6)
    neighbours = np.flatnonzero(np.isclose(np.hypot(*centres.T), 10))
    np.testing.assert_allclose(encoded[neighbours], np.exp(-2.0) / norm, rtol=1e-6)
    assert np.count_nonzero(encoded) == 5


@pytest.mark.parametrize("k", [bins.SOFT_ENCODE_K, bins.SOFT_ENCODE_K_RELEASED])
def test_soft_encode_matches_numpy_brute_force(k):
    centres = bins.zhang_bins()
    ab = _random_ab((2, 6, 4), seed=k)
    d2 = ((ab[..., None, :].astype(np.float64) - centres) ** 2).sum(-1).reshape(-1, 313)
    expected = np.zeros_like(d2)
    for row, dist in enumerate(d2):
        nearest = np.argsort(dist, kind="stable")[:k]
        w = np.exp(-dist[nearest] / (2 * 5.0**2))
        expected[row, nearest] = w / w.sum()
    got = np.asarray(jax.jit(bins.soft_encode, static_argnames="k")(ab, centres, k=k))
    assert got.shape == (2, 6, 4, 313) and got.dtype == np.float32
    np.testing.assert_allclose(got.reshape(-1, 313), expected, atol=2e-6)


def test_soft_encode_far_outside_the_centres_stays_finite():
    encoded = np.asarray(bins.soft_encode(np.array([[500.0, -500.0]], np.float32), bins.zhang_bins()))
    assert np.isfinite(encoded).all() and encoded.sum() == pytest.approx(1.0)


def test_is_colourful_rules():
    images = np.zeros((4, 3, 3, 2), np.float32)
    images[1, 2, 1] = [0.0, -6.0]  # one strong channel
    images[2, 0, 0] = [4.0, 4.0]  # chroma 5.66 but no channel above 5
    images[3] = 5.0  # exactly at the threshold: not above it
    np.testing.assert_array_equal(bins.is_colourful(images), [False, True, False, False])
    np.testing.assert_array_equal(bins.is_colourful(images, rule="chroma"), [False, True, True, True])
    with pytest.raises(ValueError, match="rule"):
        bins.is_colourful(images, rule="norm")
