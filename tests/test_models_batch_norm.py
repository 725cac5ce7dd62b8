"""BatchNorm against torch.nn.BatchNorm2d (tests/fixtures/batch_norm_torch.npz, written by
tests/fixtures/make_batch_norm_fixture.py): outputs, running mean and the running variance, which
PyTorch averages as the unbiased batch variance."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.models.layers import batch_norm

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "batch_norm_torch.npz")


def test_training_updates_and_outputs_match_pytorch():
    reference = np.load(FIXTURE)
    norm = batch_norm(3, rngs=nnx.Rngs(0))
    norm.scale.set_value(jnp.asarray(reference["weight"]))
    norm.bias.set_value(jnp.asarray(reference["bias"]))
    norm.train()
    for step in range(3):  # one 2 x 2 image (n = 4 values a channel), two 3 x 3 (n = 18), four 1 x 1 (n = 4)
        y = norm(jnp.asarray(reference[f"x{step}"]))
        np.testing.assert_allclose(y, reference[f"y{step}"], atol=1e-5)
        np.testing.assert_allclose(norm.mean[...], reference[f"running_mean{step}"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(norm.var[...], reference[f"running_var{step}"], rtol=1e-6, atol=1e-6)
    norm.eval()
    np.testing.assert_allclose(norm(jnp.asarray(reference["x_eval"])), reference["y_eval"], atol=1e-5)


def test_the_running_variance_uses_the_unbiased_batch_variance_by_hand():
    x = jnp.asarray([1.0, 2.0, 3.0, 5.0]).reshape(1, 2, 2, 1)  # n = 4, biased var 2.1875, unbiased 2.9167
    norm = batch_norm(1, rngs=nnx.Rngs(0))
    norm.train()
    norm(x)
    unbiased = np.var([1.0, 2.0, 3.0, 5.0], ddof=1)
    assert abs(float(norm.var[0]) - (0.9 * 1.0 + 0.1 * unbiased)) < 1e-6  # 1.1917, flax's biased: 1.1188


def test_the_update_is_the_same_under_jit_and_with_a_mask():
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 3))
    eager, jitted = batch_norm(3, rngs=nnx.Rngs(0)), batch_norm(3, rngs=nnx.Rngs(0))

    @nnx.jit
    def step(module, x):
        return module(x)

    np.testing.assert_allclose(step(jitted, x), eager(x), atol=1e-6)
    np.testing.assert_allclose(jitted.var[...], eager.var[...], rtol=1e-6)
    masked = batch_norm(3, rngs=nnx.Rngs(0))
    mask = jnp.zeros((2, 4, 4, 1), bool).at[0].set(True)  # only the first image counts: n = 16
    masked(x, mask=mask)
    expected = 0.9 + 0.1 * np.var(np.asarray(x[0]).reshape(-1, 3), axis=0, ddof=1)
    np.testing.assert_allclose(masked.var[...], expected, rtol=1e-5)
