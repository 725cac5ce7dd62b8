"""3 x 3 convolutions by Winograd's minimal filtering F(2 x 2, 3 x 3), for XLA:CPU.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): a 3 x 3 convolution
over 2 x 2 output tiles needs 16 multiplications per tile and channel pair instead of 36. Each
4 x 4 input tile is transformed (``B^T d B``), the kernel likewise (``G g G^T``), the 16 transformed
positions become 16 independent matrix products over the channels, and an output transform
(``A^T m A``) gives the 2 x 2 outputs. XLA:CPU runs those batched matrix products near its matmul
peak, so the big stride-1 layers of ECCV16 (256 and 512 channels) run faster than XLA's own
convolution kernel (``benchmarks/bench_models.py`` measures it); cuDNN and oneDNN make the same
choice internally, so the direct convolution stays the rule on GPU and TPU.

Dilated kernels are handled without a space-to-batch copy: the padded input is viewed as
``(rows / d, d)``, so each of the ``d x d`` dilation phases is a plain 3 x 3 convolution whose
tiles are just more rows of the batched product. The gradient is written out (a custom VJP): the
input gradient is the same kind of convolution of the output gradient with the flipped kernel, the
kernel gradient a batched product in the transformed domain; differentiating the transforms
through autodiff instead made XLA:CPU's backward pass slower than the direct convolution's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


# The transforms of F(2 x 2, 3 x 3) (Lavin & Gray 2016, section 4.1). Points of a 4 x 4 tile are
# numbered 4 col + row throughout. G g maps the 3 kernel taps along an axis to 4 points.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], np.float32)
# G g G^T for a whole 3 x 3 kernel as one (16, 9) matrix: point 4 col + row, tap 3 i + j.
_KERNEL_TRANSFORM = np.einsum("ri,cj->crij", _G, _G).reshape(16, 9)
# G applied to a kernel reversed along an axis gives G's rows in this order (an involution).
_FLIPPED = (3, 1, 2, 0)


def _input_transform(x: jax.Array, axis: int, tiles: int, order=(0, 1, 2, 3)) -> jax.Array:
    """``B^T d`` along ``axis`` (length ``2 tiles + 2``) for every tile, points in ``order``: a
    new leading axis of 4."""
    even = jax.lax.slice_in_dim(x, 0, None, 2, axis)
    odd = jax.lax.slice_in_dim(x, 1, None, 2, axis)
    d0, d2 = (jax.lax.slice_in_dim(even, s, s + tiles, axis=axis) for s in (0, 1))
    d1, d3 = (jax.lax.slice_in_dim(odd, s, s + tiles, axis=axis) for s in (0, 1))
    points = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    return jnp.stack([points[i] for i in order])


def _output_transform(m: jax.Array, order=(0, 1, 2, 3)) -> jax.Array:
    """``A^T m A``: ``(4 col, 4 row, ...)`` products, point ``k`` of each axis at ``order[k]``
    (``order`` an involution) -> ``(2 col, 2 row, ...)`` outputs."""
    m = [m[i] for i in order]
    m = jnp.stack([m[0] + m[1] + m[2], m[1] - m[2] - m[3]])
    m = [m[:, i] for i in order]
    return jnp.stack([m[0] + m[1] + m[2], m[1] - m[2] - m[3]], axis=1)


def _output_transform_transposed(y: jax.Array) -> jax.Array:
    """``A y A^T``: ``(2 col, 2 row, ...)`` output gradients -> ``(4 col, 4 row, ...)``."""
    y = jnp.stack([y[0], y[0] + y[1], y[0] - y[1], -y[1]])
    return jnp.stack([y[:, 0], y[:, 0] + y[:, 1], y[:, 0] - y[:, 1], -y[:, 1]], axis=1)


def _geometry(size: int, padding: int, dilation: int) -> tuple[int, int, int]:
    """``(outputs, tiles per dilation phase, padding after)`` along one spatial axis."""
    outputs = size + 2 * padding - 2 * dilation
    tiles = -(-outputs // (2 * dilation))
    return outputs, tiles, dilation * (2 * tiles + 2) - size - padding


def _transformed_input(x: jax.Array, padding: int, dilation: int, order=(0, 1, 2, 3)) -> tuple[jax.Array, tuple]:
    """``(V, geometry)``: the ``(16, tiles, C)`` transformed input tiles of NHWC ``x``."""
    n, h, w, c = x.shape
    (ho, th, pad_h), (wo, tw, pad_w) = _geometry(h, padding, dilation), _geometry(w, padding, dilation)
    x = jnp.pad(x, ((0, 0), (padding, pad_h), (padding, pad_w), (0, 0)))
    # (N, rows / d, d, columns / d, d, C): each dilation phase is a plain 3 x 3 convolution.
    x = x.reshape(n, 2 * th + 2, dilation, 2 * tw + 2, dilation, c)
    v = _input_transform(_input_transform(x, 1, th, order), 4, tw, order)  # (4 col, 4 row, N, th, d, tw, d, C)
    return v.reshape(16, -1, c), (n, ho, wo, th, tw)


def transformed_kernel(w: jax.Array) -> jax.Array:
    """``G w G^T``: ``(3, 3, C_in, C_out)`` -> ``(16, C_in, C_out)``, one matrix product."""
    u = jnp.dot(jnp.asarray(_KERNEL_TRANSFORM, w.dtype), w.reshape(9, -1))
    return u.reshape(16, *w.shape[2:])


def _kernel_gradient(du: jax.Array) -> jax.Array:
    """``G^T dU G``: ``(16, C_in, C_out)`` -> ``(3, 3, C_in, C_out)``, one matrix product."""
    dw = jnp.dot(jnp.asarray(_KERNEL_TRANSFORM.T, du.dtype), du.reshape(16, -1))
    return dw.reshape(3, 3, *du.shape[1:])


def _batched_matmul(a: jax.Array, b: jax.Array, contract_a: int, contract_b: int) -> jax.Array:
    return jax.lax.dot_general(a, b, (((contract_a,), (contract_b,)), ((0,), (0,))))


def _forward(x: jax.Array, u: jax.Array, padding: int, dilation: int, flipped: bool = False) -> jax.Array:
    """The convolution of ``x`` with the transformed kernel ``u`` ``(16, C_in, C_out)``; with
    ``flipped``, with the kernel flipped in space and its channels swapped, from the same ``u``
    ``(16, C_out, C_in)``: the points are permuted on the data side and ``u`` read transposed."""
    order = _FLIPPED if flipped else (0, 1, 2, 3)
    v, (n, ho, wo, th, tw) = _transformed_input(x, padding, dilation, order)
    m = _batched_matmul(v, u, 2, 2 if flipped else 1)
    out_channels = m.shape[-1]
    m = m.reshape(4, 4, n, th, dilation, tw, dilation, out_channels)
    y = _output_transform(m, order)  # (2 col, 2 row, N, th, d, tw, d, O)
    # output row (2 i + a) d + r, column (2 j + b) d + s
    y = y.transpose(2, 3, 1, 4, 5, 0, 6, 7)
    y = y.reshape(n, th * 2 * dilation, tw * 2 * dilation, out_channels)
    return y[:, :ho, :wo]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv3x3(x: jax.Array, w: jax.Array, padding: int = 1, dilation: int = 1) -> jax.Array:
    """``lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2, rhs_dilation=(d, d))``
    in NHWC / HWIO, computed by Winograd's F(2 x 2, 3 x 3). ``padding <= 2 dilation``."""
    if w.shape[:2] != (3, 3) or x.shape[-1] != w.shape[2]:
        raise ValueError(f"conv3x3 needs a (3, 3, {x.shape[-1]}, C_out) kernel, got {w.shape}")
    if not 0 <= padding <= 2 * dilation:
        raise ValueError(f"conv3x3 needs 0 <= padding <= 2 x dilation, got {padding}, {dilation}")
    return _forward(x, transformed_kernel(w), padding, dilation)


def _conv3x3_fwd(x, w, padding, dilation):
    return conv3x3(x, w, padding, dilation), (x, w)


def _conv3x3_bwd(padding, dilation, residuals, grad):
    x, w = residuals
    # The input gradient: the output gradient convolved with the kernel flipped in space, its
    # channels swapped (padding 2 d - p gives back the input's size).
    grad_x = _forward(grad, transformed_kernel(w), 2 * dilation - padding, dilation, flipped=True)
    # The kernel gradient in the transformed domain: dU = V^T dM, then dw = G^T dU G.
    v, (n, ho, wo, th, tw) = _transformed_input(x, padding, dilation)
    g = jnp.pad(grad, ((0, 0), (0, th * 2 * dilation - ho), (0, tw * 2 * dilation - wo), (0, 0)))
    g = g.reshape(n, th, 2, dilation, tw, 2, dilation, w.shape[-1]).transpose(5, 2, 0, 1, 3, 4, 6, 7)
    dm = _output_transform_transposed(g).reshape(16, -1, w.shape[-1])
    return grad_x, _kernel_gradient(_batched_matmul(v, dm, 1, 1))


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def conv3x3_transformed(x: jax.Array, u: jax.Array, padding: int = 1, dilation: int = 1) -> jax.Array:
    """:func:`conv3x3` with the kernel given transformed (:func:`transformed_kernel`), for inference."""
    if u.shape[0] != 16 or x.shape[-1] != u.shape[1] or not 0 <= padding <= 2 * dilation:
        raise ValueError(f"conv3x3_transformed: kernel {u.shape}, input {x.shape}, padding {padding}, dilation {dilation}")
    return _forward(x, u, padding, dilation)


# ---- which algorithm a 3 x 3 convolution layer uses ----------------------------------------------

# What a stride-1 3 x 3 convolution layer runs: "direct" (XLA's convolution), "winograd"
# (:func:`conv3x3`), or "auto" (Winograd for float32 layers of at least MIN_CHANNEL_PRODUCT channel
# pairs on the CPU backend, where it is faster; direct elsewhere). Each layer carries its choice
# (``colorjax.models.layers.Conv.conv_algorithm``, set for a whole model by ``build_model``).
ALGORITHMS = ("auto", "direct", "winograd")


def check_algorithm(name: str) -> str:
    """``name`` if it is one of :data:`ALGORITHMS`, else a ValueError naming the choices."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    return name


# "auto" takes Winograd where it paid on a 2-core AVX-512 CPU at 64 px x 16 (forward / gradient,
# against XLA's convolution): 1.3x for 128 -> 256 channels, 1.3-1.9x for 256 and 512; for 64 and
# 128 channels the transforms cost about what they save (0.9-1.2x), and compiling them is not free.
MIN_CHANNEL_PRODUCT = 128 * 256


def use_winograd(algorithm: str, dtype, in_channels: int, out_channels: int) -> bool:
    """Whether an eligible layer set to ``algorithm`` (one of :data:`ALGORITHMS`), traced with
    inputs of ``dtype``, takes :func:`conv3x3`."""
    if check_algorithm(algorithm) == "direct":
        return False
    if algorithm == "winograd":
        return True
    return (jnp.dtype(dtype) == jnp.float32 and jax.default_backend() == "cpu"
            and in_channels * out_channels >= MIN_CHANNEL_PRODUCT)
