"""Mixed precision: bfloat16 compute against the float32 computation of the same module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models import build_model
from colorjax.training import precision
from colorjax.training.setup import module_rngs


def _tiny_eccv16(batch_norm: bool = True):
    """(graphdef, params, rest) of a width-1/32 ECCV16 in training mode, initialised in one jit."""
    build = lambda: build_model("eccv16", "classification", width=1 / 32, batch_norm=batch_norm,  # noqa: E731
                                rngs=module_rngs(0))
    graphdef, _, _ = nnx.split(nnx.eval_shape(build), nnx.Param, ...)
    params, rest = jax.jit(lambda: nnx.split(build(), nnx.Param, ...)[1:])()
    return graphdef, params, rest


def _relative_error(x, reference):
    x, reference = np.asarray(x, np.float64), np.asarray(reference, np.float64)
    return np.linalg.norm(x - reference) / np.linalg.norm(reference)


def test_cast_floating_casts_only_float32_leaves():
    tree = {"w": jnp.ones((2,), jnp.float32), "n": jnp.arange(3), "flag": True}
    cast = precision.cast_floating(tree, jnp.bfloat16)
    assert cast["w"].dtype == jnp.bfloat16
    assert cast["n"].dtype == tree["n"].dtype and cast["flag"] is True


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="float32, bfloat16"):
        precision.compute_dtype("float16")


def test_bfloat16_forward_and_gradients_match_float32():
    # Without BatchNorm: at 16 px its statistics over 2 x 2 x 2 values would amplify any rounding.
    graphdef, params, rest = _tiny_eccv16(batch_norm=False)
    L = jax.random.uniform(jax.random.key(1), (2, 16, 16, 1), minval=0.0, maxval=100.0)

    def loss(params, dtype):
        out, _ = precision.apply_module(graphdef, params, rest, L, dtype=dtype)
        return jnp.mean(jax.nn.log_softmax(out) ** 2), out

    grad = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
    g32, out32 = grad(params, "float32")
    g16, out16 = grad(params, "bfloat16")
    direct = jax.jit(lambda p: nnx.merge(graphdef, p, rest, copy=True)(L))(params)
    np.testing.assert_allclose(out32, direct, rtol=1e-4, atol=1e-4)  # float32: the module itself
    # bfloat16 operands (8-bit mantissa): between 1e-3 and a few 1e-2 relative, never exact.
    assert out16.dtype == jnp.float32
    assert 1e-3 < _relative_error(out16, out32) < 3e-2
    flat = lambda tree: jnp.concatenate([x.ravel() for x in jax.tree.leaves(tree)])  # noqa: E731
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(g16))
    assert 1e-3 < _relative_error(flat(g16), flat(g32)) < 5e-2


def test_bfloat16_keeps_batchnorm_statistics_float32():
    build = lambda: build_model("eccv16", "classification", width=1 / 32, rngs=module_rngs(0))  # noqa: E731
    graphdef, params, rest = nnx.split(nnx.eval_shape(build), nnx.Param, ...)  # shapes only
    L = jax.ShapeDtypeStruct((2, 16, 16, 1), jnp.float32)
    out, new_rest = jax.eval_shape(lambda p, r, L: precision.apply_module(graphdef, p, r, L, dtype="bfloat16"),
                                   params, rest, L)
    assert out.dtype == jnp.float32
    assert jax.tree.map(lambda x: x.dtype, new_rest) == jax.tree.map(lambda x: x.dtype, rest)
    assert any(x.dtype == jnp.float32 for x in jax.tree.leaves(new_rest))
