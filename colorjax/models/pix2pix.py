"""pix2pix (Isola et al. 2017) for colorization: the U-Net generator and the PatchGAN discriminator.

Generator ``unet_256`` (Isola et al. 2017; docs/reference.md section 3): ``num_downs`` 4 x 4 stride-2 convolutions down
(64, 128, 256, 512, 512 ...), mirrored 4 x 4 stride-2 transposed convolutions up, each level's
input concatenated with its up path; BatchNorm on every level but the outermost (and the innermost
down), LeakyReLU 0.2 before each down conv and ReLU before each up conv. Dropout 0.5 follows the up
path of the levels between the innermost one and the four outer ones whose widths grow (64, 128,
256, 512): the ``num_downs - 5`` levels of width 8 x 64 that the authors' ``unet_256`` stacks
around its innermost block with ``use_dropout`` (3 levels at ``num_downs=8``, 1 at 6, none below
6). Input
L / 50 - 1; the outermost transposed conv gives the head's channels (the head's tanh x 110 is
pix2pix's tanh output). ``num_downs=8`` needs 256 px; 6 works at 64 px.

Discriminator: the 70 x 70 PatchGAN on concat(L / 50 - 1, ab / 110). All weights from N(0, 0.02),
BatchNorm scales from N(1, 0.02), as the authors initialise them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from colorjax.color import AB_SCALE
from colorjax.models.backbone import Backbone
from colorjax.models.activations import Activation
from colorjax.models.layers import (
    PIX2PIX_INIT, batch_norm, block_output, conv, conv_transpose, scaled, set_conv_algorithm,
)
from colorjax.models.winograd import check_algorithm

BASE_CHANNELS = 64  # ngf = ndf = 64 (pix2pix)
MAX_MULTIPLIER = 8  # channels stop growing at 8 x 64 = 512
DROPOUT_RATE = 0.5  # pix2pix
# Levels of the authors' unet_256 that have no dropout: the four widening outer levels (64 ... 512
# channels) and the innermost one; the num_downs - 5 levels in between all carry dropout.
LEVELS_WITHOUT_DROPOUT = 5
L_CENTRE = 50.0  # pix2pix feeds L / 50 - 1
BN_SCALE_INIT = nnx.initializers.normal(0.02)  # shifted by +1 below: N(1, 0.02)


def _bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + BN_SCALE_INIT(key, shape, dtype)


def _norm(channels: int, enabled: bool, rngs: nnx.Rngs) -> nnx.BatchNorm | None:
    return batch_norm(channels, scale_init=_bn_scale_init, rngs=rngs) if enabled else None


def _apply(layer, x: jax.Array) -> jax.Array:
    return x if layer is None else layer(x)


class UNetLevel(nnx.Module):
    """One level of the generator: its down conv, its up (transposed) conv and their norms."""

    def __init__(self, outer: int, inner: int, up_out: int, *, outermost: bool, innermost: bool,
                 dropout: bool, kinds: tuple[str, str], batch_norm: bool, rngs: nnx.Rngs):
        bias = not batch_norm  # BatchNorm's shift makes a conv bias redundant (authors' code)
        self.down_act = None if outermost else Activation(kinds[0], outer, rngs=rngs)
        self.down = conv(outer, inner, 4, stride=2, padding=1, bias=bias, init=PIX2PIX_INIT, rngs=rngs)
        self.down_norm = _norm(inner, batch_norm and not (outermost or innermost), rngs)
        up_in = inner if innermost else 2 * inner
        self.up_act = Activation(kinds[1], up_in, rngs=rngs)
        self.up = conv_transpose(up_in, up_out, 4, stride=2, padding=1, bias=bias or outermost,
                                 init=PIX2PIX_INIT, rngs=rngs)
        self.up_norm = _norm(up_out, batch_norm and not outermost, rngs)
        self.dropout = nnx.Dropout(DROPOUT_RATE, rngs=rngs) if dropout else None

    def down_path(self, x: jax.Array) -> jax.Array:
        return _apply(self.down_norm, self.down(_apply(self.down_act, x)))

    def up_path(self, x: jax.Array) -> jax.Array:
        return _apply(self.dropout, _apply(self.up_norm, self.up(self.up_act(x))))


class Pix2PixGenerator(Backbone):
    """The pix2pix U-Net generator: L in [0, 100] -> ``out_channels`` maps at the input size."""

    OPTIONS = ("num_downs", "num_dropout")

    output_stride = 1
    border = 0

    def __init__(self, out_channels: int, *, width: float = 1.0, num_downs: int = 8, num_dropout: int | None = None,
                 activation: str | None = None, batch_norm: bool = True, rngs: nnx.Rngs):
        """``num_dropout``: how many levels just outside the innermost one have dropout; None (the
        default) is the authors' ``max(num_downs - 5, 0)``."""
        if num_dropout is None:
            num_dropout = max(num_downs - LEVELS_WITHOUT_DROPOUT, 0)
        if num_downs < 2 or not 0 <= num_dropout <= num_downs - 2:
            raise ValueError(f"pix2pix needs num_downs >= 2 and 0 <= num_dropout <= num_downs - 2, "
                             f"got {num_downs}, {num_dropout}")
        kinds = (activation, activation) if activation else ("leaky_relu", "relu")
        self.input_multiple = 2**num_downs
        inner = [scaled(BASE_CHANNELS * min(2**i, MAX_MULTIPLIER), width) for i in range(num_downs)]
        outer = [1] + inner[:-1]
        self.levels = nnx.List()
        for i in range(num_downs):  # level 0 is the outermost
            innermost = i == num_downs - 1
            self.levels.append(UNetLevel(
                outer[i], inner[i], out_channels if i == 0 else outer[i],
                outermost=i == 0, innermost=innermost,
                dropout=num_downs - 1 - num_dropout <= i < num_downs - 1,
                kinds=kinds, batch_norm=batch_norm, rngs=rngs,
            ))

    def __call__(self, L: jax.Array) -> jax.Array:
        x = L / L_CENTRE - 1.0
        inputs = []
        for level in self.levels:
            inputs.append(x)
            x = block_output(level.down_path(x))
        for i in reversed(range(len(self.levels))):
            x = block_output(self.levels[i].up_path(x))
            if i > 0:
                x = jnp.concatenate([inputs[i], x], axis=-1)
        return x


class PatchDiscriminator(nnx.Module):
    """PatchGAN: (L, ab) in Lab units -> one real/fake logit per 70 x 70 patch (``n_layers=3``).

    Layers: 4 x 4 conv to 64 stride 2; ``n_layers - 1`` more stride-2 convs doubling the width (to at
    most 512); one stride-1 conv; a stride-1 conv to 1 channel. All padded by 1. ``conv_algorithm``
    as for every model (:func:`colorjax.models.layers.set_conv_algorithm`), though no 4 x 4 layer
    is one that Winograd's F(2 x 2, 3 x 3) computes.
    """

    def __init__(self, *, n_layers: int = 3, width: float = 1.0, activation: str = "leaky_relu",
                 batch_norm: bool = True, conv_algorithm: str = "auto", rngs: nnx.Rngs):
        check_algorithm(conv_algorithm)
        if n_layers < 1:
            raise ValueError(f"PatchDiscriminator needs n_layers >= 1, got {n_layers}")
        widths = [scaled(BASE_CHANNELS * min(2**i, MAX_MULTIPLIER), width) for i in range(n_layers + 1)]
        strides = [2] * n_layers + [1]
        self.convs, self.norms, self.acts = nnx.List(), nnx.List(), nnx.List()
        channels = 3
        for i, (out, stride) in enumerate(zip(widths, strides)):
            norm = batch_norm and i > 0
            self.convs.append(conv(channels, out, 4, stride=stride, padding=1, bias=not norm,
                                   init=PIX2PIX_INIT, rngs=rngs))
            self.norms.append(_norm(out, norm, rngs))
            self.acts.append(Activation(activation, out, rngs=rngs))
            channels = out
        self.final = conv(channels, 1, 4, padding=1, init=PIX2PIX_INIT, rngs=rngs)
        self.layer_specs = tuple((4, s) for s in strides) + ((4, 1),)
        set_conv_algorithm(self, conv_algorithm)

    def __call__(self, L: jax.Array, ab: jax.Array) -> jax.Array:
        x = jnp.concatenate([L / L_CENTRE - 1.0, ab / AB_SCALE], axis=-1)
        for layer, norm, act in zip(self.convs, self.norms, self.acts):
            x = act(_apply(norm, layer(x)))
        return self.final(x)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.layer_specs)


def receptive_field(layer_specs) -> int:
    """Receptive field in input pixels of a stack of (kernel, stride) layers, the last one first out."""
    field = 1
    for kernel, stride in reversed(layer_specs):
        field = (field - 1) * stride + kernel
    return field
