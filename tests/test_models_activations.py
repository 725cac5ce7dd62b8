"""The five activations against their formulas (the patch-network RReLU study; Xu et al. 2015 for RReLU)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models import Activation

X = np.linspace(-6.0, 6.0, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)


def rngs(seed=0):
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("relu", np.maximum(X, 0)),
        ("leaky_relu", np.where(X >= 0, X, 0.2 * X)),
        ("prelu", np.where(X >= 0, X, 0.25 * X)),
        ("elu", np.where(X >= 0, X, np.expm1(np.minimum(X, 0)))),
        ("rrelu", np.where(X >= 0, X, X / 5.5)),  # evaluation: a = (3 + 8) / 2
    ],
)
def test_activation_in_evaluation_mode_matches_formula(kind, expected):
    act = Activation(kind, 3, rngs=rngs())
    act.eval()
    np.testing.assert_allclose(act(jnp.asarray(X)), expected, rtol=1e-6, atol=1e-6)


def test_prelu_learns_one_slope_per_channel():
    act = Activation("prelu", 3, rngs=rngs())
    act.slope[...] = jnp.array([0.1, 0.5, -1.0])
    expected = np.where(X >= 0, X, X * np.array([0.1, 0.5, -1.0], np.float32))
    np.testing.assert_allclose(act(jnp.asarray(X)), expected, rtol=1e-6)
    assert jax.grad(lambda a: a(jnp.asarray(X)).sum())(act).slope[...].shape == (3,)


def test_rrelu_in_training_divides_each_negative_element_by_its_own_draw_from_3_to_8():
    act = Activation("rrelu", 3, rngs=rngs(1))
    x = -jnp.ones((64, 64, 3))
    first, second = np.asarray(act(x)), np.asarray(act(x))
    a = -1.0 / first
    assert a.min() >= 3.0 and a.max() <= 8.0
    assert abs(a.mean() - 5.5) < 0.05  # U(3, 8): mean 5.5, std 1.44, 12288 draws
    assert abs(a.std() - 5 / np.sqrt(12)) < 0.05
    assert not np.array_equal(first, second)  # a fresh draw on every call
    np.testing.assert_array_equal(act(jnp.ones((4, 3))), 1.0)  # the positive part is untouched
    again = Activation("rrelu", 3, rngs=rngs(1))
    np.testing.assert_array_equal(again(x), first)  # reproducible from the seed


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        Activation("swish", 3, rngs=rngs())
