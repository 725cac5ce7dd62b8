"""The fast-gradient transposed convolution against a numpy scatter definition (forward) and
autodiff of ``nnx.ConvTranspose`` (gradients)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.models.conv_transpose import ConvTranspose
from colorjax.models.layers import conv_transpose


def _numpy_conv_transpose(x, kernel, bias, stride, padding):
    """PyTorch's ConvTranspose2d by definition: each input pixel scatters ``kernel`` times its value;
    ``kernel`` in flax's layout [kh, kw, out, in], ``padding`` cropped from every side."""
    n, h, w, _ = x.shape
    kh, kw, out, _ = kernel.shape
    full = np.zeros((n, (h - 1) * stride + kh, (w - 1) * stride + kw, out))
    for i in range(h):
        for j in range(w):
            full[:, i * stride : i * stride + kh, j * stride : j * stride + kw] += np.einsum(
                "nc,aboc->nabo", x[:, i, j], kernel)
    return full[:, padding : full.shape[1] - padding, padding : full.shape[2] - padding] + bias


def _layer_pair(stride, padding, kernel=4, channels=(6, 5), bias=True):
    """The same parameters in nnx.ConvTranspose and in the fast ConvTranspose."""
    reference = nnx.ConvTranspose(*channels, (kernel, kernel), strides=stride,
                                  padding=((kernel - 1 - padding,) * 2,) * 2, use_bias=bias,
                                  transpose_kernel=True, rngs=nnx.Rngs(0))
    if bias:  # a nonzero bias, so that adding it is checked
        reference.bias[...] = jax.random.normal(jax.random.key(3), (channels[1],))
    graphdef, state = nnx.split(reference)
    fast = nnx.merge(nnx.split(ConvTranspose(*channels, (kernel, kernel), strides=stride,
                                             padding=((kernel - 1 - padding,) * 2,) * 2, use_bias=bias,
                                             transpose_kernel=True, rngs=nnx.Rngs(1)))[0], state)
    return reference, fast


@pytest.mark.parametrize("stride,padding,bias", [(2, 1, True), (2, 1, False), (1, 1, True), (2, 0, True)])
def test_forward_matches_the_scatter_definition(stride, padding, bias):
    reference, fast = _layer_pair(stride, padding, bias=bias)
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 6)).astype(np.float32)
    b = np.asarray(reference.bias[...]) if bias else 0.0
    expected = _numpy_conv_transpose(x, np.asarray(reference.kernel[...]), b, stride, padding)
    np.testing.assert_allclose(fast(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reference(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding,out_hw", [(2, 1, (12, 10)), (1, 1, (7, 6))])
def test_gradients_match_autodiff_of_lax_conv_transpose(stride, padding, out_hw):
    reference, fast = _layer_pair(stride, padding)  # stride 2: sub-pixel split; 1: adjoint gradient
    x = jax.random.normal(jax.random.key(1), (3, 6, 5, 6))
    weights = jax.random.normal(jax.random.key(2), (3, *out_hw, 5))

    def grads(layer):
        graphdef, state = nnx.split(layer)
        loss = lambda s, x: jnp.sum(jnp.sin(nnx.merge(graphdef, s)(x)) * weights)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))(state, x)

    for want, got in zip(jax.tree.leaves(grads(reference)), jax.tree.leaves(grads(fast)), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_library_layer_uses_it_and_bad_options_are_refused():
    layer = conv_transpose(4, 3, 4, stride=2, padding=1, rngs=nnx.Rngs(0))
    assert isinstance(layer, ConvTranspose) and isinstance(layer, nnx.ConvTranspose)
    with pytest.raises(ValueError, match="no kernel dilation"):
        ConvTranspose(4, 3, (4, 4), strides=2, padding="SAME", transpose_kernel=True, rngs=nnx.Rngs(0))
