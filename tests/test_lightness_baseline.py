"""The lightness baseline: mean ab per integer L, counted with the prior, checked by hand.

The test photos are made so that ab is a function of L alone (a = f(L), b = g(L)), written as
uint8 sRGB through scikit-image: the lookup must then reproduce each photo's colours up to the
quantisation of L to integers and of RGB to 8 bits.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import skimage.color
from PIL import Image

from colorjax.bins import zhang_bins
from colorjax.evaluation import commands
from colorjax.evaluation.baselines import baseline_predictor
from colorjax.prior import LIGHTNESS_LEVELS, ColourPrior, lightness_ab_sums, mean_ab_by_lightness


def ab_of_lightness(L):
    """A colour path through the sRGB gamut: warm darks, green-blue mid-tones, neutral highlights."""
    return np.stack([25.0 * np.sin(L / 15.0), 20.0 * np.cos(L / 20.0) - 5.0], axis=-1)


def photo_with_ab_from_L(seed: int, size: int = 48) -> np.ndarray:
    """uint8 sRGB [size, size, 3] whose Lab has L from a smooth random field and ab = ab_of_lightness(L)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    L = 50 + 30 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * x + rng.uniform(0, 1))) * np.cos(
        2 * np.pi * rng.uniform(0.5, 2) * y)
    lab = np.concatenate([L[..., None], ab_of_lightness(L)], axis=-1)
    return np.round(np.clip(skimage.color.lab2rgb(lab), 0, 1) * 255).astype(np.uint8)


def test_lightness_sums_match_a_hand_count():
    rng = np.random.default_rng(0)
    L = rng.uniform(0, 100, (2, 9, 7))
    ab = rng.normal(0, 30, (2, 9, 7, 2))
    mask = np.array([1.0, 0.0])[:, None, None]  # the second image does not count (a gray image)
    sums = np.asarray(lightness_ab_sums(jnp.asarray(L), jnp.asarray(ab), jnp.asarray(mask)), np.float64)
    level = np.round(L[0]).astype(int)
    for lv in (0, 17, 50, 99, 100):
        pick = level == lv
        np.testing.assert_allclose(sums[lv], [ab[0][pick][:, 0].sum(), ab[0][pick][:, 1].sum(), pick.sum()],
                                   atol=1e-3)
    assert sums[:, 2].sum() == L[0].size


def test_empty_levels_are_interpolated_between_seen_ones():
    sums = np.zeros((LIGHTNESS_LEVELS, 3))
    sums[10] = [10.0, -20.0, 1.0]  # mean (10, -20) at L = 10
    sums[30] = [60.0, 20.0, 2.0]  # mean (30, 10) at L = 30
    table = mean_ab_by_lightness(sums)
    np.testing.assert_allclose(table[10], [10, -20])
    np.testing.assert_allclose(table[20], [20, -5])  # half way
    np.testing.assert_allclose(table[0], [10, -20])  # constant below the first seen level
    np.testing.assert_allclose(table[100], [30, 10])  # and above the last
    assert np.all(mean_ab_by_lightness(np.zeros((LIGHTNESS_LEVELS, 3))) == 0)


def test_a_prior_without_lightness_sums_refuses_the_baseline():
    with pytest.raises(ValueError, match="lightness"):
        baseline_predictor("lightness", prior=ColourPrior.uniform(zhang_bins()))
    with pytest.raises(ValueError, match="prior"):
        baseline_predictor("lightness")


def test_lightness_baseline_recovers_colours_that_depend_on_L_alone(tmp_path):
    train, test = tmp_path / "photos" / "train", tmp_path / "photos" / "test"
    for folder, seeds in ((train, range(6)), (test, range(100, 102))):
        folder.mkdir(parents=True)
        for seed in seeds:
            Image.fromarray(photo_with_ab_from_L(seed)).save(folder / f"{seed}.png")
    (tmp_path / "photos" / "validation").mkdir()
    Image.fromarray(photo_with_ab_from_L(200)).save(tmp_path / "photos" / "validation" / "200.png")
    record = commands.evaluate_to_file(baseline="lightness", data=str(tmp_path / "photos"), split="test",
                                       out=tmp_path / "lightness", size=48, batch_size=2,
                                       data_dir=str(tmp_path / "tfds"))
    assert record["prior_source"].startswith("counted on")
    # The counted table against the same count by hand: scikit-image Lab of the training photos.
    prior = commands.count_prior(str(tmp_path / "photos"), "train", size=48, batch_size=2,
                                 data_dir=str(tmp_path / "tfds"))
    labs = np.concatenate([skimage.color.rgb2lab(photo_with_ab_from_L(s) / 255.0).reshape(-1, 3) for s in range(6)])
    level = np.round(labs[:, 0]).astype(int)
    table = prior.mean_ab_by_lightness
    for lv in np.unique(level)[::7]:
        np.testing.assert_allclose(table[lv], labs[level == lv, 1:].mean(0), atol=0.05)
    # With ab a function of L, the lookup is nearly exact on unseen photos: every pixel within
    # 2.5 ab units (L rounded to an integer moves ab by at most ~1 unit, 8-bit RGB by ~1 more).
    test_lab = skimage.color.rgb2lab(photo_with_ab_from_L(100) / 255.0)
    predicted = np.asarray(baseline_predictor("lightness", prior=prior)(jnp.asarray(test_lab, jnp.float32)))
    assert np.abs(predicted - test_lab[..., 1:]).max() < 2.5
    assert record["metrics"]["auc_raw"] > 98.0
    # Gray is far worse on the same photos: the baseline is not trivially right.
    gray = commands.evaluate_to_file(baseline="gray", data=str(tmp_path / "photos"), split="test",
                                     out=tmp_path / "gray", size=48, batch_size=2, data_dir=str(tmp_path / "tfds"))
    assert gray["metrics"]["auc_raw"] < record["metrics"]["auc_raw"] - 5.0
    assert json.loads((tmp_path / "lightness.json").read_text())["baseline"] == "lightness"


def test_a_saved_prior_keeps_its_lightness_table(tmp_path):
    sums = np.zeros((LIGHTNESS_LEVELS, 3))
    sums[40:60] = [[4.0, -2.0, 2.0]] * 20
    prior = ColourPrior.from_counts(np.ones(313), zhang_bins(), lightness_sums=sums)
    prior.save(tmp_path / "p.npz")
    loaded = ColourPrior.load(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded.lightness_sums, sums)
    np.testing.assert_allclose(loaded.mean_ab_by_lightness[50], [2.0, -1.0])
