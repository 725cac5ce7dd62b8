"""The U-Net of Pappalardo and Caterini's comparison (Ronneberger et al. 2015 with their changes), in NHWC.

Each encoder level is two padded 3 x 3 convolutions with the activation (LeakyReLU by default, the
study's choice against dying ReLUs); the study puts a BatchNorm right before every down- and
up-sampling and dropout in the levels nearest the input. Downsampling is 2 x 2 max pooling,
upsampling a 2 x 2 stride-2 transposed convolution, and the skip of each level is concatenated
before its decoder convolutions. A final 1 x 1 convolution gives the head's channels at full
resolution (output stride 1). The study states neither the depth, the widths nor the dropout rate:
the defaults below are ours (Ronneberger's 64 base channels, 4 levels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from colorjax.models.backbone import Backbone
from colorjax.models.activations import Activation
from colorjax.models.layers import batch_norm, block_output, conv, conv_transpose, scaled

BASE_CHANNELS = 64  # Ronneberger et al. 2015
L_CENTRE = 50.0  # input L / 50 - 1 in [-1, 1], as pix2pix


class DoubleConv(nnx.Module):
    """Two padded 3 x 3 convolutions, each followed by the activation."""

    def __init__(self, in_channels: int, out_channels: int, kind: str, *, rngs: nnx.Rngs):
        self.conv1 = conv(in_channels, out_channels, 3, padding=1, rngs=rngs)
        self.act1 = Activation(kind, out_channels, rngs=rngs)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1, rngs=rngs)
        self.act2 = Activation(kind, out_channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.act2(self.conv2(self.act1(self.conv1(x))))


class UNet(Backbone):
    """U-Net: L in [0, 100] -> ``out_channels`` maps at the input resolution."""

    OPTIONS = ("depth", "dropout_levels", "dropout_rate")

    output_stride = 1
    border = 0

    def __init__(
        self,
        out_channels: int,
        *,
        width: float = 1.0,
        depth: int = 4,
        dropout_levels: int = 2,
        dropout_rate: float = 0.3,
        activation: str | None = None,
        batch_norm: bool = True,
        rngs: nnx.Rngs,
    ):
        if depth < 1 or not 0 <= dropout_levels <= depth:
            raise ValueError(f"U-Net needs depth >= 1 and 0 <= dropout_levels <= depth, got {depth}, {dropout_levels}")
        kind = activation or "leaky_relu"
        self.input_multiple = 2**depth
        self.dropout_levels = dropout_levels
        widths = [scaled(BASE_CHANNELS * 2**level, width) for level in range(depth + 1)]
        self.encoders, self.down_norms = nnx.List(), nnx.List()
        self.decoders, self.up_norms, self.ups = nnx.List(), nnx.List(), nnx.List()
        channels = 1
        for level in range(depth):
            self.encoders.append(DoubleConv(channels, widths[level], kind, rngs=rngs))
            self.down_norms.append(_maybe_norm(widths[level], batch_norm, rngs))
            channels = widths[level]
        self.bottleneck = DoubleConv(channels, widths[depth], kind, rngs=rngs)
        for level in range(depth):  # level 0 is the one nearest the input
            self.up_norms.append(_maybe_norm(widths[level + 1], batch_norm, rngs))
            self.ups.append(conv_transpose(widths[level + 1], widths[level], 2, stride=2, padding=0, rngs=rngs))
            self.decoders.append(DoubleConv(2 * widths[level], widths[level], kind, rngs=rngs))
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
        self.out = conv(widths[0], out_channels, 1, rngs=rngs)

    def __call__(self, L: jax.Array) -> jax.Array:
        x = L / L_CENTRE - 1.0
        skips = []
        for level, (encoder, norm) in enumerate(zip(self.encoders, self.down_norms)):
            x = block_output(self._drop(level, encoder(x)))
            skips.append(x)
            x = _max_pool(_apply(norm, x))
        x = block_output(self.bottleneck(x))
        for level in reversed(range(len(self.decoders))):
            x = self.ups[level](_apply(self.up_norms[level], x))
            x = jnp.concatenate([skips[level], x], axis=-1)
            x = block_output(self._drop(level, self.decoders[level](x)))
        return self.out(x)

    def _drop(self, level: int, x: jax.Array) -> jax.Array:
        return self.dropout(x) if level < self.dropout_levels else x


def _maybe_norm(channels: int, enabled: bool, rngs: nnx.Rngs) -> nnx.BatchNorm | None:
    return batch_norm(channels, rngs=rngs) if enabled else None


def _apply(layer, x: jax.Array) -> jax.Array:
    return x if layer is None else layer(x)


def _max_pool(x: jax.Array) -> jax.Array:
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
