"""A transposed convolution whose gradient XLA:CPU computes fast.

``lax.conv_transpose`` is a convolution of the input dilated by the stride (``lhs_dilation``).
Autodiff turns its weight gradient into another lhs-dilated convolution, which XLA:CPU runs on a
generic loop emitter instead of its Eigen kernels: for ECCV16's 4 x 4 stride-2 upsampling layer at
64 px and batch 16 it took 5.4 s against 0.4 s for the forward and input gradient together (and
pix2pix has one such layer per level). Here the gradient uses the identity
``<T(x, W), g> = <x, A(g, W)>``, where ``A``, the adjoint of ``T`` in ``x``, is a plain strided
convolution: ``dx = A(g, W)`` and ``dW`` is the weight gradient of that strided convolution, which
XLA lowers to a window-dilated convolution that its fast kernels take. The values are the same as
autodiff's (up to float rounding); the forward pass is unchanged.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
from flax import nnx


def _transpose(x, kernel, strides, padding):
    return lax.conv_transpose(x, kernel, strides, padding, transpose_kernel=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple, padding: tuple) -> jax.Array:
    """``lax.conv_transpose(x, kernel, strides, padding, transpose_kernel=True)`` (NHWC, HWOI
    kernel as flax stores it), with the gradient computed through the adjoint strided convolution."""
    return _transpose(x, kernel, strides, padding)


def _forward(x, kernel, strides, padding):
    return _transpose(x, kernel, strides, padding), (x, kernel)


def _backward(strides, padding, residuals, g):
    x, kernel = residuals

    def adjoint(kernel):  # A(g, W): a strided convolution of g
        return jax.linear_transpose(lambda x_: _transpose(x_, kernel, strides, padding), x)(g)[0]

    dx, kernel_vjp = jax.vjp(adjoint, kernel)
    (dkernel,) = kernel_vjp(x.astype(dx.dtype))
    return dx, dkernel


conv_transpose.defvjp(_forward, _backward)


class ConvTranspose(nnx.ConvTranspose):
    """``nnx.ConvTranspose`` (same parameters, same outputs) with the fast gradient, for 2-D NHWC
    inputs with ``transpose_kernel=True``, explicit padding, no kernel dilation and no mask."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.transpose_kernel or len(self.kernel_size) != 2 or self.mask is not None:
            raise ValueError("ConvTranspose supports 2-D kernels with transpose_kernel=True and no mask")
        if self.kernel_dilation not in (None, 1, (1, 1)) or isinstance(self.padding, str):
            raise ValueError("ConvTranspose supports explicit padding and no kernel dilation")

    def __call__(self, inputs: jax.Array) -> jax.Array:
        if inputs.ndim != 4:
            raise ValueError(f"ConvTranspose expects NHWC inputs, got shape {inputs.shape}")
        strides = self.strides if isinstance(self.strides, tuple) else (self.strides or 1,) * 2
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        y = conv_transpose(inputs, kernel, tuple(strides), tuple(tuple(p) for p in self.padding))
        return y if bias is None else y + bias
