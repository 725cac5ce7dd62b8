"""Training losses against hand computations in numpy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.bins import zhang_bins
from colorjax.training import losses

RNG = np.random.default_rng(0)


def test_pixel_losses_on_ab_over_110():
    pred = RNG.uniform(-80, 80, (2, 3, 4, 2)).astype(np.float32)
    true = RNG.uniform(-80, 80, (2, 3, 4, 2)).astype(np.float32)
    d = (pred - true) / 110.0
    np.testing.assert_allclose(losses.ab_pixel_loss(pred, true, "l1"), np.abs(d).mean(-1), rtol=1e-6)
    np.testing.assert_allclose(losses.ab_pixel_loss(pred, true, "l2"), (d**2).mean(-1), rtol=1e-6)
    delta = 0.1
    huber = np.where(np.abs(d) <= delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))
    np.testing.assert_allclose(losses.ab_pixel_loss(pred, true, "huber", delta), huber.mean(-1), rtol=1e-5)
    with pytest.raises(ValueError, match="l1, l2 or huber"):
        losses.ab_pixel_loss(pred, true, "l3")


def test_masked_mean_ignores_gray_images():
    pixel_map = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    assert float(losses.masked_mean(pixel_map, np.array([True, False]))) == pytest.approx(pixel_map[0].mean())
    assert float(losses.masked_mean(pixel_map, np.array([False, False]))) == 0.0


def test_rebalanced_soft_cross_entropy_matches_numpy():
    centres = zhang_bins()
    logits = RNG.normal(size=(1, 2, 2, len(centres))).astype(np.float32)
    true_ab = np.array([[[[0.0, 0.0], [40.0, -20.0]], [[-12.0, 33.0], [71.0, 4.0]]]], np.float32)
    class_weights = RNG.uniform(0.5, 3.0, len(centres)).astype(np.float32)
    target = RNG.dirichlet(np.ones(len(centres)), size=(1, 2, 2)).astype(np.float32)

    weights = losses.rebalancing_weights(true_ab, centres, class_weights)
    nearest = np.argmin(((true_ab[..., None, :] - centres) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(weights, class_weights[nearest])

    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(target * log_probs).sum(-1) * class_weights[nearest]
    np.testing.assert_allclose(losses.soft_cross_entropy(logits, target, weights), expected, rtol=1e-5)


def test_subsample_takes_every_fourth_pixel_from_the_corner():
    x = np.arange(8 * 8, dtype=np.float32).reshape(1, 8, 8, 1)
    np.testing.assert_array_equal(losses.subsample(x, 4)[0, :, :, 0], [[0, 4], [32, 36]])


def test_perceptual_map_stays_per_pixel():
    pred = [np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 1, 1, 4), np.float32)]
    true = [np.zeros((1, 2, 2, 3), np.float32), np.full((1, 1, 1, 4), 2.0, np.float32)]
    true[0][0, 1, 0] = [3.0, 0.0, 0.0]  # one location of the first layer differs: mean of 9, 0, 0
    out = np.asarray(losses.perceptual_map(pred, true, 2, 2))
    # first layer: 3 at (1, 0) only; second layer (1 x 1 -> 2 x 2): 4 everywhere
    np.testing.assert_allclose(out[0], [[4.0, 4.0], [7.0, 4.0]], rtol=1e-6)


def test_gan_losses_bce_and_least_squares():
    real, fake = np.array([2.0, -1.0], np.float32), np.array([0.5, -3.0], np.float32)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731  -log(sigmoid(x)) = softplus(-x)
    expected_d = softplus(-real).mean() + softplus(fake).mean()
    assert float(losses.discriminator_loss(real, fake, "bce")) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.generator_gan_loss(fake, "bce")) == pytest.approx(softplus(-fake).mean(), rel=1e-6)
    assert float(losses.discriminator_loss(real, fake, "lsgan")) == pytest.approx(((real - 1) ** 2).mean() + (fake**2).mean())
    assert float(losses.generator_gan_loss(fake, "lsgan")) == pytest.approx(((fake - 1) ** 2).mean())
    # a discriminator that outputs 0 everywhere is maximally unsure: log 2 per term
    zeros = jnp.zeros(4)
    assert float(losses.discriminator_loss(zeros, zeros)) == pytest.approx(2 * np.log(2), rel=1e-6)
