"""Winograd F(2 x 2, 3 x 3) convolutions against a float64 numpy definition (forward), autodiff of
XLA's convolution (gradients), and the layer's choice between the two algorithms."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models import build_model, layers, winograd


def _numpy_conv(x, w, padding, dilation):
    """Cross-correlation by definition, in float64: out[y, x] = sum_ij xpad[y + d i, x + d j] w[i, j]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = xp.shape[1] - 2 * dilation, xp.shape[2] - 2 * dilation
    out = np.zeros((x.shape[0], ho, wo, w.shape[-1]))
    for i in range(3):
        for j in range(3):
            window = xp[:, i * dilation : i * dilation + ho, j * dilation : j * dilation + wo]
            out += np.einsum("nhwc,co->nhwo", window, w[i, j])
    return out


def _lax_conv(x, w, padding, dilation):
    return jax.lax.conv_general_dilated(x, w, (1, 1), ((padding, padding),) * 2, rhs_dilation=(dilation,) * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")


CASES = [((2, 7, 9, 3), p, 1) for p in (0, 1, 2)] + [((1, 10, 13, 4), p, 2) for p in (1, 2, 3, 4)] + [
    ((2, 12, 8, 5), 3, 3), ((1, 5, 6, 2), 0, 1)]


@pytest.mark.parametrize("shape,padding,dilation", CASES)
def test_forward_matches_the_definition(shape, padding, dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((3, 3, shape[-1], 6)).astype(np.float32)
    got = jax.jit(winograd.conv3x3, static_argnums=(2, 3))(x, w, padding, dilation)
    expected = _numpy_conv(x, w, padding, dilation)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("shape,padding,dilation", CASES[:5] + CASES[-2:])
def test_gradients_match_autodiff_of_xla_convolution(shape, padding, dilation):
    x = jax.random.normal(jax.random.key(1), shape)
    w = jax.random.normal(jax.random.key(2), (3, 3, shape[-1], 6))
    weights = jax.random.normal(jax.random.key(3), _lax_conv(x, w, padding, dilation).shape)

    def grads(conv):
        loss = lambda x, w: jnp.sum(jnp.sin(conv(x, w, padding, dilation)) * weights)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(x, w)

    for got, expected in zip(grads(winograd.conv3x3), grads(_lax_conv)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(jnp.abs(expected).max()))


def test_bad_arguments_are_refused():
    x = jnp.zeros((1, 6, 6, 2))
    with pytest.raises(ValueError, match="padding"):
        winograd.conv3x3(x, jnp.zeros((3, 3, 2, 4)), 3, 1)
    with pytest.raises(ValueError, match="kernel"):
        winograd.conv3x3(x, jnp.zeros((5, 5, 2, 4)), 1, 1)
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        build_model("patchnet", "regression", width=1 / 8, conv_algorithm="fft", rngs=nnx.Rngs(0))


def _primitives(layer, x) -> set[str]:
    """The primitives of a fresh trace (a new function each time: JAX caches traces per function)."""
    return {eqn.primitive.name for eqn in jax.make_jaxpr(lambda x: layer(x))(x).eqns}


def test_the_layer_chooses_winograd_for_wide_float32_stride_one_3x3_on_cpu():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 128))
    dilated = layers.conv(128, 256, 3, padding=2, dilation=2, rngs=nnx.Rngs(0))
    strided = layers.conv(128, 256, 3, stride=2, padding=1, rngs=nnx.Rngs(0))
    narrow = layers.conv(128, 128, 3, padding=1, rngs=nnx.Rngs(0))
    assert jax.default_backend() == "cpu"
    assert "conv_general_dilated" in _primitives(narrow, x)  # auto: below MIN_CHANNEL_PRODUCT
    forced = layers.set_conv_algorithm(nnx.clone(narrow), "winograd")
    assert "conv_general_dilated" not in _primitives(forced, x)
    assert "conv_general_dilated" not in _primitives(dilated, x)  # auto: Winograd (a custom VJP of dots)
    assert "conv_general_dilated" in _primitives(strided, x)  # stride 2: XLA's convolution
    bf16 = layers.Conv(128, 256, (3, 3), padding=((2, 2), (2, 2)), kernel_dilation=(2, 2), dtype=jnp.bfloat16,
                       rngs=nnx.Rngs(0))
    assert layers.winograd_padding(bf16) == 2
    assert "conv_general_dilated" in _primitives(bf16, x)  # auto: float32 only
    direct_layer = layers.set_conv_algorithm(nnx.clone(dilated), "direct")
    assert "conv_general_dilated" in _primitives(direct_layer, x)
    direct = direct_layer(x)
    np.testing.assert_allclose(dilated(x), direct, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(direct, _numpy_conv(x, dilated.kernel[...], 2, 2) + np.asarray(dilated.bias[...]),
                               rtol=1e-5, atol=1e-4)


def test_for_inference_transforms_kernels_once_in_a_copy():
    layer = layers.conv(128, 256, 3, padding=1, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (1, 6, 6, 128))
    expected = layer(x)
    prepared = layers.for_inference(layer)
    assert layer.winograd_kernel is None and not layer.deterministic  # the original is untouched
    assert isinstance(prepared.winograd_kernel, layers.WinogradKernel) and prepared.deterministic
    np.testing.assert_allclose(winograd.transformed_kernel(layer.kernel[...]), prepared.winograd_kernel[...])
    assert "dot_general" in _primitives(prepared, x) and "conv_general_dilated" not in _primitives(prepared, x)
    np.testing.assert_allclose(prepared(x), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(prepared, x), expected, rtol=1e-5, atol=1e-4)
    prepared.train()  # training mode reads the kernel itself, never the transformed copy
    prepared.kernel[...] = 2 * prepared.kernel[...]
    np.testing.assert_allclose(prepared(x), 2 * (expected - layer.bias[...]) + layer.bias[...], rtol=1e-5, atol=2e-4)


def _all_primitives(jaxpr) -> set[str]:
    """Primitive names of ``jaxpr`` and of every jaxpr nested in its equations (jit, custom rules)."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            names |= _all_primitives(sub)
    return names


def test_the_algorithm_travels_with_the_model_into_one_jitted_function():
    """Two models with the same weights, one built "direct" and one "winograd", through the same
    jitted function in one process and with no context around them: each is traced with its own
    algorithm (the option is static, like dtype) and both give the same colours."""
    direct = build_model("patchnet", "regression", width=1 / 8, conv_algorithm="direct", rngs=nnx.Rngs(0))
    fast = build_model("patchnet", "regression", width=1 / 8, conv_algorithm="winograd", rngs=nnx.Rngs(1))
    nnx.update(fast, nnx.state(direct))  # the same weights; only the static option differs
    direct.eval(), fast.eval()
    L = jax.random.uniform(jax.random.key(0), (2, 32, 32, 1), minval=0.0, maxval=100.0)
    traces = []

    @nnx.jit
    def colorize(model, L):
        traces.append(model.backbone.convs[0].conv_algorithm)
        return model(L)

    ab_direct, ab_fast = colorize(direct, L), colorize(fast, L)
    assert traces == ["direct", "winograd"]  # one trace per choice, in the order called
    np.testing.assert_allclose(ab_fast, ab_direct, rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(ab_direct).max()) > 1e-3  # not a trivially zero output

    def primitives(model):
        graphdef, state = nnx.split(model)
        return _all_primitives(jax.make_jaxpr(lambda s, L: nnx.merge(graphdef, s)(L))(state, L).jaxpr)

    assert "conv_general_dilated" in primitives(direct) and "custom_vjp_call" not in primitives(direct)
    assert "custom_vjp_call" in primitives(fast) and "conv_general_dilated" not in primitives(fast)
    assert {layer.conv_algorithm for _, layer in nnx.iter_modules(fast) if isinstance(layer, layers.Conv)} == {"winograd"}


def test_unknown_algorithms_are_refused_by_every_constructor():
    with pytest.raises(ValueError, match="unknown convolution algorithm 'fft'"):
        layers.Conv(4, 4, (3, 3), conv_algorithm="fft", rngs=nnx.Rngs(0))
    layer = layers.conv(4, 4, 3, padding=1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="unknown convolution algorithm 'fft'"):
        layers.set_conv_algorithm(layer, "fft")
    assert layer.conv_algorithm == "auto"  # refused before anything changed
    from colorjax.models import PatchDiscriminator, VGG16Features

    with pytest.raises(ValueError, match="unknown convolution algorithm 'fft'"):
        PatchDiscriminator(width=1 / 16, conv_algorithm="fft", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="unknown convolution algorithm 'fft'"):
        VGG16Features(("relu1_2",), width=1 / 16, conv_algorithm="fft", rngs=nnx.Rngs(0))
