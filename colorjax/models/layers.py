"""Convolution and normalisation layers with PyTorch's padding and BatchNorm conventions.

Padding is explicit (symmetric, as PyTorch's ``padding=p``) rather than ``'SAME'``, which pads a
stride-2 convolution asymmetrically and would break weight compatibility with the reference
implementations. Transposed convolutions use ``transpose_kernel=True``, so a layer computes exactly
what ``torch.nn.ConvTranspose2d`` computes with the kernel ``weight.transpose(2, 3, 1, 0)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn import normalization as flax_normalization
from jax.ad_checkpoint import checkpoint_name

from colorjax.models import winograd
from colorjax.models.conv_transpose import ConvTranspose

# The name of the activations ``train.remat = "blocks"`` keeps for the backward pass.
BLOCK_OUTPUT = "colorjax_block_output"


def block_output(x: jax.Array) -> jax.Array:
    """``x`` tagged as a block's output: under ``train.remat = "blocks"`` these are the only
    activations kept for the backward pass; everything inside a block is recomputed there."""
    return checkpoint_name(x, BLOCK_OUTPUT)


# PyTorch BatchNorm2d defaults (momentum 0.1 of the new batch = flax momentum 0.9; eps 1e-5), which
# the reference implementations of ECCV16 and pix2pix use.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

HE_NORMAL = nnx.initializers.he_normal()
# pix2pix (Isola et al. 2017) and Pappalardo and Caterini's comparison: weights drawn from N(0, 0.02).
PIX2PIX_INIT = nnx.initializers.normal(0.02)


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


class WinogradKernel(nnx.Variable):
    """A layer's Winograd-transformed kernel ``G w G^T``, computed once for inference."""


class Conv(nnx.Conv):
    """``nnx.Conv`` (same parameters, same outputs up to float rounding) whose stride-1 3 x 3
    layers run by Winograd's F(2 x 2, 3 x 3) where :func:`winograd.use_winograd` says so for the
    layer's ``conv_algorithm`` (``"auto"``, ``"direct"`` or ``"winograd"``; a static attribute, like
    ``dtype``, so a jitted function traces each choice apart). In evaluation mode a kernel
    transformed beforehand (:func:`for_inference`) is used if present."""

    def __init__(self, *args, conv_algorithm: str = "auto", **kwargs):
        winograd.check_algorithm(conv_algorithm)
        super().__init__(*args, **kwargs)
        self.conv_algorithm = conv_algorithm
        self.deterministic = False  # Module.eval() sets it
        self.winograd_kernel: WinogradKernel | None = nnx.data(None)

    def __call__(self, inputs: jax.Array) -> jax.Array:
        padding = winograd_padding(self)
        if padding is None or inputs.ndim != 4:
            return super().__call__(inputs)
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        if not winograd.use_winograd(self.conv_algorithm, inputs.dtype, self.in_features, self.out_features):
            return super().__call__(inputs)
        if self.deterministic and self.winograd_kernel is not None:
            u = self.winograd_kernel[...].astype(inputs.dtype)
            y = winograd.conv3x3_transformed(inputs, u, padding, self.kernel_dilation[0])
        else:
            y = winograd.conv3x3(inputs, kernel, padding, self.kernel_dilation[0])
        return y if bias is None else y + bias


def for_inference(model: nnx.Module) -> nnx.Module:
    """A copy of ``model`` in evaluation mode whose Winograd layers (as each layer's
    ``conv_algorithm`` chooses on the current backend) hold their transformed kernels, so that
    inference does not transform them on every call. The copy shares the arrays; ``model`` itself
    is left as it is (train it, then call this again)."""
    model = nnx.clone(model)
    model.eval()
    for _, layer in nnx.iter_modules(model):
        if isinstance(layer, Conv) and winograd_padding(layer) is not None:
            kernel = layer.kernel[...]
            if winograd.use_winograd(layer.conv_algorithm, kernel.dtype, layer.in_features, layer.out_features):
                layer.winograd_kernel = WinogradKernel(winograd.transformed_kernel(kernel))
    return model


def set_conv_algorithm(module: nnx.Module, name: str) -> nnx.Module:
    """``module`` with every :class:`Conv` in it set to run ``name`` (one of
    :data:`winograd.ALGORITHMS`): the option travels with the module, and jitting it again traces
    the new choice. Refuses an unknown name before changing anything."""
    winograd.check_algorithm(name)
    for _, layer in nnx.iter_modules(module):
        if isinstance(layer, Conv):
            layer.conv_algorithm = name
    return module


def winograd_padding(layer: nnx.Conv) -> int | None:
    """The symmetric padding of a layer :func:`winograd.conv3x3` computes, else None: a 3 x 3
    kernel, stride 1, equal dilation and padding on both axes, no groups, no mask."""
    if layer.kernel_size != (3, 3) or layer.strides not in (1, (1, 1)) or layer.mask is not None:
        return None
    if layer.input_dilation not in (1, (1, 1)) or layer.feature_group_count != 1:
        return None
    dilation = layer.kernel_dilation
    if not (isinstance(dilation, tuple) and len(set(dilation)) == 1) or isinstance(layer.padding, str):
        return None
    (top, bottom), (left, right) = layer.padding
    if not top == bottom == left == right or not 0 <= top <= 2 * dilation[0]:
        return None
    return top


def conv(
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    bias: bool = True,
    init=HE_NORMAL,
    rngs: nnx.Rngs,
) -> Conv:
    """A 2-D convolution with symmetric zero padding ``padding`` on every side (:class:`Conv`)."""
    return Conv(
        in_channels,
        out_channels,
        (kernel, kernel),
        strides=stride,
        padding=((padding, padding), (padding, padding)),
        kernel_dilation=(dilation, dilation),
        use_bias=bias,
        kernel_init=init,
        rngs=rngs,
    )


def conv_transpose(
    in_channels: int,
    out_channels: int,
    kernel: int,
    *,
    stride: int,
    padding: int,
    bias: bool = True,
    init=HE_NORMAL,
    rngs: nnx.Rngs,
) -> nnx.ConvTranspose:
    """``torch.nn.ConvTranspose2d(in, out, kernel, stride, padding)``: output ``stride`` x larger
    (nnx.ConvTranspose's parameters, computed as :mod:`colorjax.models.conv_transpose` says)."""
    lax_padding = kernel - 1 - padding  # padding of the dilated input that gives PyTorch's output
    return ConvTranspose(
        in_channels,
        out_channels,
        (kernel, kernel),
        strides=stride,
        padding=((lax_padding, lax_padding), (lax_padding, lax_padding)),
        use_bias=bias,
        kernel_init=init,
        transpose_kernel=True,
        rngs=rngs,
    )


class BatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` whose running variance follows ``torch.nn.BatchNorm2d``: training mode
    normalises with the biased batch variance (as both do) but averages the unbiased one, n / (n - 1)
    times it for n values a channel, into the running variance (flax averages the biased one). The
    difference is largest where n is small: at pix2pix's 2 x 2 levels with one image, n = 4 and the
    running variance moves 4 / 3 as far. Same variables as ``nnx.BatchNorm``, so checkpoints and
    converted weights load unchanged. With n = 1 PyTorch refuses to train; here the biased update
    (0) is kept."""

    def __call__(self, x, use_running_average: bool | None = None, *, mask: jax.Array | None = None):
        use_running_average = self.use_running_average if use_running_average is None else use_running_average
        if use_running_average is None or use_running_average:
            return super().__call__(x, use_running_average, mask=mask)
        before = self.var[...]
        y = super().__call__(x, False, mask=mask)
        x = self.promote_dtype((x,), dtype=self.dtype)[0]
        _, var = flax_normalization._compute_stats(  # the very statistics flax normalised with (one XLA computation)
            x, self._reduction_axes(x), dtype=self.dtype, axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups, use_fast_variance=self.use_fast_variance, mask=mask,
        )
        n = self._values_per_channel(x, mask)
        unbiased = var * jnp.where(n > 1, n / jnp.maximum(n - 1, 1), 1.0)
        self.var[...] = jax.lax.stop_gradient(self.momentum * before + (1 - self.momentum) * unbiased)
        return y

    def _reduction_axes(self, x: jax.Array) -> tuple[int, ...]:
        features = {a % x.ndim for a in ((self.axis,) if isinstance(self.axis, int) else self.axis)}
        return tuple(a for a in range(x.ndim) if a not in features)

    def _values_per_channel(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        """How many values each channel's batch statistics average (summed over ``axis_name``)."""
        axes = self._reduction_axes(x)
        if mask is None:
            n = jnp.asarray(math.prod(x.shape[a] for a in axes), jnp.float32)
        else:
            n = jnp.sum(jnp.broadcast_to(mask, x.shape), axis=axes, dtype=jnp.float32)
        if self.axis_name is None:
            return n
        return jax.lax.psum(n, self.axis_name, axis_index_groups=self.axis_index_groups)


def batch_norm(channels: int, *, affine: bool = True, scale_init=None, rngs: nnx.Rngs) -> BatchNorm:
    """BatchNorm over the channel axis with PyTorch's running statistics (:class:`BatchNorm`);
    ``affine=False`` drops the learned scale and shift."""
    options = {} if scale_init is None else {"scale_init": scale_init}
    return BatchNorm(
        channels,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        use_scale=affine,
        use_bias=affine,
        rngs=rngs,
        **options,
    )
