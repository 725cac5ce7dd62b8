"""Mixed precision: bfloat16 compute against the float32 computation of the same module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models import build_model
from colorjax.training import precision
from colorjax.training.trainer import module_rngs


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


def _tiny_classification_step(compute_dtype: str):
    """The library's jitted classification step for a width-1/32 ECCV16 at 16 px, and its state."""
    from colorjax.bins import zhang_bins
    from colorjax.prior import ColourPrior
    from colorjax.training import config as config_lib
    from colorjax.training import optim, parallel, steps, trainer
    from colorjax.training import state as state_lib

    config = config_lib.get_config()
    config.model.width, config.model.batch_norm = 1 / 32, False
    config.train.compute_dtype = compute_dtype
    centres = zhang_bins()
    model_fn = trainer.model_factory(trainer.model_config_of(config, centres), config.seed)
    objective = trainer.build_objective(config, 4, centres, ColourPrior.uniform(centres))
    tx = optim.make_optimizer(config.optim, optim.learning_rate_schedule(config.optim, 10))
    modules, state = state_lib.init_state(model_fn, tx, parallel.data_mesh())
    return jax.jit(steps.supervised_step(objective, modules.train, tx), donate_argnums=0), state


def test_training_step_in_bfloat16_matches_float32_without_host_transfers():
    rgb = jax.device_put(np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), np.uint8))
    results = {}
    for dtype in ("float32", "bfloat16"):
        step, state = _tiny_classification_step(dtype)
        dtypes = jax.tree.map(lambda x: x.dtype, state)
        with jax.transfer_guard("disallow"):  # no hidden host round trip inside the step
            state, metrics = step(state, {"rgb": rgb})
        assert jax.tree.map(lambda x: x.dtype, state) == dtypes  # float32 master state kept
        results[dtype] = float(metrics["grad_norm"])
    # (The first loss is log 313 in both: the model starts from uniform logits; the gradient differs.)
    assert np.isfinite(results["bfloat16"])
    assert 1e-4 < abs(results["bfloat16"] - results["float32"]) / results["float32"] < 5e-2
