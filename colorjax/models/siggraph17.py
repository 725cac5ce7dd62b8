"""Zhang, Zhu, Isola, Geng, Lin, Yu and Efros's user-guided colorization network (SIGGRAPH 2017,
"Real-Time User-Guided Image Colorization with Learned Deep Priors", local hints network), in NHWC.

Input: L in [0, 100] and optional hints [B, H, W, 3] = (a, b, mask): the ab colour of each hinted
pixel in Lab units (0 elsewhere) and a mask that is 1 at hinted pixels, 0 elsewhere. The first conv
sees 4 channels: (L - 50) / 100, ab / 110 and the mask, as the official PyTorch release's forward
feeds them (no hints = zero ab and zero mask).

Encoder conv1-conv7: the ECCV16 stages (3 x 3 convs with bias, ReLU, BatchNorm after the last conv
of each block; conv5 and conv6 dilated by 2), except that the blocks end in stride-1 convs and the
next block takes every second pixel (``x[:, ::2, ::2]``) of the previous block's output, so that
conv1_2, conv2_2 and conv3_3 exist at 1, 1/2 and 1/4 resolution for the decoder's shortcuts.
Decoder: conv8 (x2 up by a 4 x 4 transposed conv, plus a 3 x 3 conv shortcut from conv3_3, then
ReLU and two 3 x 3 convs), conv9 (up, shortcut from conv2_2, one conv) and conv10 (up, shortcut from
conv1_2, one conv, LeakyReLU 0.2). Outputs: ``model_out`` (1 x 1, 2 channels; the regression head
applies 110 tanh) at full resolution, and ``model_class`` (1 x 1 on conv8_3, 529 logits over the
ab grid of 10 on [-110, 110]^2) at 1/4 resolution.

With a regression head the net runs to conv10 (output stride 1); ``class_bins`` > 0 also keeps the
``model_class`` branch, whose logits :meth:`SIGGRAPH17.outputs` returns beside the regression
output (the release carries both; training uses it for the auxiliary classification loss). With a
classification head the net stops at conv8 (output stride 4) and ``model_class`` is its output.

Attribute names follow the release's state-dict keys (``model1.0`` -> ``model1[0]``, ``model1.4``
-> ``norm1``, ``model8up.0`` -> ``model8up``, ``model3short8.0`` -> ``model3short8`` ...), which the
converter relies on. ``bn_affine=False`` (the default, as ECCV16's: the original Caffe BatchNorm has
no affine part) drops BatchNorm's learned scale and shift; the converter keeps them when they are
not the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.color import AB_SCALE
from colorjax.models.backbone import Backbone
from colorjax.models.activations import Activation
from colorjax.models.eccv16 import L_CENTRE, L_RANGE
from colorjax.models.layers import batch_norm, block_output, conv, conv_transpose, scaled

# (output channels of each 3 x 3 conv, dilation) of encoder blocks 1-7 (all stride 1).
ENCODER = (
    ((64, 64), 1),
    ((128, 128), 1),
    ((256, 256, 256), 1),
    ((512, 512, 512), 1),
    ((512, 512, 512), 2),
    ((512, 512, 512), 2),
    ((512, 512, 512), 1),
)
SUBSAMPLED = (1, 2, 3)  # blocks 2, 3 and 4 take every second pixel of blocks 1, 2 and 3
# Decoder blocks 8-10: (channels, number of 3 x 3 convs, encoder block its shortcut comes from).
DECODER = ((256, 2, 3), (128, 1, 2), (128, 1, 1))
HINT_CHANNELS = 3  # a, b, mask
# Zhang, Zhu et al. 2017: the classification output covers the ab grid of 10 on [-110, 110]^2.
CLASS_GRID, CLASS_LIMIT = 10, 110


def siggraph17_bins() -> np.ndarray:
    """The 529 ab centres [529, 2] of the classification output: a, then b, from -110 to 110 by 10."""
    axis = np.arange(-CLASS_LIMIT, CLASS_LIMIT + 1, CLASS_GRID, dtype=np.float32)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def no_hints(L: jax.Array) -> jax.Array:
    """Hints [B, H, W, 3] that hint nothing (zero ab, zero mask) for L [B, H, W, 1]."""
    return jnp.zeros((*L.shape[:-1], HINT_CHANNELS), L.dtype)


class SIGGRAPH17(Backbone):
    """The user-guided backbone: (L, hints) -> ab maps at full resolution or logits at 1/4."""

    OPTIONS = ("class_bins", "bn_affine")
    TAKES_HEAD_KIND = True

    takes_hints = True
    border = 0
    input_multiple = 8  # three subsamplings by 2

    def __init__(
        self,
        out_channels: int,
        *,
        head_kind: str = "regression",
        class_bins: int = 0,
        width: float = 1.0,
        activation: str | None = None,
        batch_norm: bool = True,
        bn_affine: bool = False,
        rngs: nnx.Rngs,
    ):
        if head_kind == "regression" and out_channels != 2:
            raise ValueError(f"a regression SIGGRAPH17 has 2 output channels, got {out_channels}")
        if head_kind == "classification" and class_bins:
            raise ValueError("class_bins adds a classification branch to a regression SIGGRAPH17; "
                             "a classification head already is that branch")
        kind = activation or "relu"
        self.regression = head_kind == "regression"
        self.output_stride = 1 if self.regression else 4
        norm = lambda c: batch_norm_or_none(c, batch_norm, bn_affine, rngs)  # noqa: E731
        widths = [1 + HINT_CHANNELS]  # widths[b]: output channels of encoder block b
        for b, (outs, dilation) in enumerate(ENCODER, start=1):
            convs, acts, channels = nnx.List(), nnx.List(), widths[-1]
            for out in outs:
                out = scaled(out, width)
                convs.append(conv(channels, out, 3, padding=dilation, dilation=dilation, rngs=rngs))
                acts.append(Activation(kind, out, rngs=rngs))
                channels = out
            setattr(self, f"model{b}", convs)
            setattr(self, f"acts{b}", acts)
            setattr(self, f"norm{b}", norm(channels))
            widths.append(channels)
        decoder_blocks = DECODER if self.regression else DECODER[:1]
        channels = widths[-1]
        for b, (out, n, source) in enumerate(decoder_blocks, start=8):
            out = scaled(out, width)
            setattr(self, f"model{b}up", conv_transpose(channels, out, 4, stride=2, padding=1, rngs=rngs))
            setattr(self, f"model{source}short{b}", conv(widths[source], out, 3, padding=1, rngs=rngs))
            setattr(self, f"model{b}", nnx.List([conv(out, out, 3, padding=1, rngs=rngs) for _ in range(n)]))
            last_kind = "leaky_relu" if b == 10 and activation is None else kind
            acts = [Activation(kind, out, rngs=rngs) for _ in range(n)] + [Activation(last_kind, out, rngs=rngs)]
            setattr(self, f"acts{b}", nnx.List(acts))
            setattr(self, f"norm{b}", norm(out) if b < 10 else None)
            channels = out
        conv8_channels = scaled(DECODER[0][0], width)
        class_out = out_channels if not self.regression else class_bins
        self.model_class = conv(conv8_channels, class_out, 1, rngs=rngs) if class_out else None
        self.model_out = conv(channels, 2, 1, rngs=rngs) if self.regression else None

    def __call__(self, L: jax.Array, hints: jax.Array | None = None) -> jax.Array:
        return self.outputs(L, hints)[0]

    def outputs(self, L: jax.Array, hints: jax.Array | None = None) -> tuple[jax.Array, jax.Array | None]:
        """``(main output, classification logits or None)``: the regression output at full
        resolution and ``model_class``'s logits at 1/4 (if kept), or the logits twice."""
        if hints is None:
            hints = no_hints(L)
        x = jnp.concatenate([(L - L_CENTRE) / L_RANGE, hints[..., :2] / AB_SCALE, hints[..., 2:]], axis=-1)
        features = {}
        for b in range(1, len(ENCODER) + 1):
            if b - 1 in SUBSAMPLED:
                x = x[:, ::2, ::2, :]
            x = self._block(b, x)
            features[b] = x
        x = self._decoder_block(8, x, features[3])
        logits = None if self.model_class is None else self.model_class(x)
        if not self.regression:
            return logits, logits
        x = self._decoder_block(9, x, features[2])
        x = self._decoder_block(10, x, features[1])
        return self.model_out(x), logits

    def _block(self, b: int, x: jax.Array, start: int = 0) -> jax.Array:
        acts = getattr(self, f"acts{b}")
        for layer, act in zip(getattr(self, f"model{b}"), acts[start:]):
            x = act(layer(x))
        norm = getattr(self, f"norm{b}")
        return block_output(norm(x) if norm is not None else x)

    def _decoder_block(self, b: int, x: jax.Array, skip: jax.Array) -> jax.Array:
        source = {8: 3, 9: 2, 10: 1}[b]
        x = getattr(self, f"model{b}up")(x) + getattr(self, f"model{source}short{b}")(skip)
        return self._block(b, getattr(self, f"acts{b}")[0](x), start=1)


def batch_norm_or_none(channels: int, enabled: bool, affine: bool, rngs: nnx.Rngs) -> nnx.BatchNorm | None:
    return batch_norm(channels, affine=affine, rngs=rngs) if enabled else None
