"""Annealed-mean decoding against hand computations and a float64 numpy softmax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.bins import zhang_bins
from colorjax.decode import DEPLOY_LOGIT_SCALE, annealed_mean

TWO = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)


def _numpy_annealed_mean(logits, centres, t):
    z = logits.astype(np.float64) / t
    p = np.exp(z - z.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ centres.astype(np.float64)


def _logits(seed=0):
    return np.random.default_rng(seed).normal(0, 3, (2, 3, 4, 313)).astype(np.float32)


def test_hand_computed_two_bins():
    # logits (0, log 3): T = 1 gives p = (1/4, 3/4), ab = (7.5, 0); T = 1/2 squares the odds: 9 : 1.
    logits = np.array([0.0, np.log(3.0)], np.float32)
    np.testing.assert_allclose(annealed_mean(logits, TWO, 1.0), [7.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(annealed_mean(logits, TWO, 0.5), [9.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(annealed_mean(logits, TWO, 0.0), [10.0, 0.0])


def test_temperature_one_is_the_mean():
    logits, centres = _logits(), zhang_bins()
    got = jax.jit(annealed_mean)(logits, centres, 1.0)
    assert got.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(got, _numpy_annealed_mean(logits, centres, 1.0), atol=1e-4)


def test_temperature_zero_is_the_mode():
    logits, centres = _logits(1), zhang_bins()
    mode = centres[logits.argmax(-1)]
    np.testing.assert_array_equal(annealed_mean(logits, centres, 0), mode)
    np.testing.assert_array_equal(jax.jit(annealed_mean)(logits, centres, jnp.float32(0.0)), mode)  # traced T


def test_deploy_scale_is_temperature_0_38():
    logits, centres = _logits(2), zhang_bins()
    reference = _numpy_annealed_mean(logits * DEPLOY_LOGIT_SCALE, centres, 1.0)
    np.testing.assert_allclose(annealed_mean(logits, centres, 1 / DEPLOY_LOGIT_SCALE), reference, atol=1e-4)
    assert 1 / DEPLOY_LOGIT_SCALE == pytest.approx(0.38, abs=0.005)


def test_small_temperature_is_stable_and_near_the_mode():
    centres = zhang_bins()
    logits = _logits(3) * 100  # logits / 0.01 reach ~1e5: a naive exp overflows
    mode = centres[logits.argmax(-1)]
    got = np.asarray(annealed_mean(logits, centres, 0.01))
    assert np.isfinite(got).all()
    # Runner-up logits trail by far more than 0.01 * 30 here, so their weight is below e^-30.
    top2 = np.sort(logits, -1)[..., -2:]
    assert (top2[..., 1] - top2[..., 0]).min() > 0.3
    np.testing.assert_allclose(got, mode, atol=1e-3)
    np.testing.assert_allclose(got, _numpy_annealed_mean(logits, centres, 0.01), atol=1e-3)
    grad = jax.grad(lambda x: annealed_mean(x, centres, 0.01).sum())(jnp.asarray(logits))
    assert np.isfinite(grad).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        annealed_mean(np.zeros(2), TWO, -1.0)
    with pytest.raises(ValueError, match="3 classes"):
        annealed_mean(np.zeros(3), TWO, 1.0)


def test_the_rebalancing_correction_recovers_the_unweighted_distribution():
    """Logits of the weighted distribution w * p (what weighted cross-entropy learns), corrected with
    strength 1, decode to the annealed mean of p itself; strength 0 decodes as trained."""
    import numpy as np

    from colorjax.bins import zhang_bins
    from colorjax.decode import annealed_mean
    from colorjax.models.heads import ClassificationHead, rebalancing_logit_bias

    centres = zhang_bins()
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(len(centres)), size=(2, 3))
    w = rng.uniform(0.2, 5.0, len(centres))
    weighted_logits = np.log(p * w)  # up to a constant per pixel, which softmax ignores
    head = ClassificationHead(centres)
    bias = lambda strength: rebalancing_logit_bias(w, strength)  # noqa: E731
    for t in (1.0, 0.38):
        expected = np.asarray(annealed_mean(np.log(p), centres, t))
        np.testing.assert_allclose(np.asarray(head.decode(weighted_logits, t, logit_bias=bias(1.0))), expected, atol=1e-3)
    # half way: p * w ** 0.5
    np.testing.assert_allclose(np.asarray(head.decode(weighted_logits, 1.0, logit_bias=bias(0.5))),
                               np.asarray(annealed_mean(np.log(p * np.sqrt(w)), centres, 1.0)), atol=1e-3)
    np.testing.assert_allclose(np.asarray(head.decode(weighted_logits, 1.0, logit_bias=bias(0.0))),
                               np.asarray(annealed_mean(weighted_logits, centres, 1.0)), atol=1e-5)
    # a strength of -1 (a sweep over strengths): p * w ** 2
    np.testing.assert_allclose(np.asarray(head.decode(weighted_logits, 1.0, logit_bias=bias(-1.0))),
                               np.asarray(annealed_mean(np.log(p * w * w), centres, 1.0)), atol=1e-3)
    np.testing.assert_allclose(np.asarray(head.decode(weighted_logits, 0.38)),  # no bias: decoded as trained
                               np.asarray(annealed_mean(weighted_logits, centres, 0.38)), atol=1e-5)
