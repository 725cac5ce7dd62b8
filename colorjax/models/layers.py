"""Convolution and normalisation layers with PyTorch's padding and BatchNorm conventions.

Padding is explicit (symmetric, as PyTorch's ``padding=p``) rather than ``'SAME'``, which pads a
stride-2 convolution asymmetrically and would break weight compatibility with the reference
implementations. Transposed convolutions use ``transpose_kernel=True``, so a layer computes exactly
what ``torch.nn.ConvTranspose2d`` computes with the kernel ``weight.transpose(2, 3, 1, 0)``.
"""

from __future__ import annotations

from flax import nnx

from colorjax.models.conv_transpose import ConvTranspose

# PyTorch BatchNorm2d defaults (momentum 0.1 of the new batch = flax momentum 0.9; eps 1e-5), which
# the reference implementations of ECCV16 and pix2pix use.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

HE_NORMAL = nnx.initializers.he_normal()
# pix2pix (Isola et al. 2017) and seed 000: weights drawn from N(0, 0.02).
PIX2PIX_INIT = nnx.initializers.normal(0.02)


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


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
) -> nnx.Conv:
    """A 2-D convolution with symmetric zero padding ``padding`` on every side."""
    return nnx.Conv(
        in_channels,
        out_channels,
        (kernel, kernel),
        strides=stride,
        padding=((padding, padding), (padding, padding)),
        kernel_dilation=dilation,
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


def batch_norm(channels: int, *, affine: bool = True, scale_init=None, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm over the channel axis; ``affine=False`` drops the learned scale and shift."""
    options = {} if scale_init is None else {"scale_init": scale_init}
    return nnx.BatchNorm(
        channels,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        use_scale=affine,
        use_bias=affine,
        rngs=rngs,
        **options,
    )
