"""Zhang, Isola and Efros's ECCV16 colorization network (ECCV 2016; docs/reference.md section 2), in NHWC.

Blocks 1-7 are 3 x 3 convolutions with bias, each followed by the activation, and a BatchNorm after
the last convolution of the block; block 8 upsamples x2 with a 4 x 4 transposed convolution and ends
in a 1 x 1 convolution whose width the head sets (313 logits for the release's ``model8.6``).
Input 256 -> output 64: output stride 4. Attribute names follow the official PyTorch state-dict
keys (``model1.0`` -> ``model1[0]``, ``model1.4`` -> ``norm1`` ...), which the converter relies on.

The original BatchNorm (Caffe) has no learned scale or shift, so ``bn_affine=False`` is the default;
``bn_affine=True`` keeps PyTorch's ``weight`` / ``bias`` for state dicts whose values are not 1 / 0.
"""

from __future__ import annotations

import jax
from flax import nnx

from colorjax.models.backbone import Backbone
from colorjax.models.activations import Activation
from colorjax.models.layers import batch_norm, block_output, conv, conv_transpose, scaled

L_CENTRE, L_RANGE = 50.0, 100.0  # Zhang feeds (L - 50) / 100 (docs/reference.md section 1)

# (output channels of each 3 x 3 conv, stride of the last conv, dilation) for blocks 1-7.
BLOCKS = (
    ((64, 64), 2, 1),
    ((128, 128), 2, 1),
    ((256, 256, 256), 2, 1),
    ((512, 512, 512), 1, 1),
    ((512, 512, 512), 1, 2),
    ((512, 512, 512), 1, 2),
    ((512, 512, 512), 1, 1),
)
UP_CHANNELS = 256  # block 8: transposed conv 512 -> 256, then two 3 x 3 convs at 256


class ECCV16(Backbone):
    """The ECCV16 backbone: L in [0, 100] -> ``out_channels`` maps at 1/4 of the input size."""

    OPTIONS = ("bn_affine",)

    output_stride = 4
    border = 0  # every conv is padded: no pixels lost at the edges
    input_multiple = 8  # three stride-2 convs

    def __init__(
        self,
        out_channels: int,
        *,
        width: float = 1.0,
        activation: str | None = None,
        batch_norm: bool = True,
        bn_affine: bool = False,
        rngs: nnx.Rngs,
    ):
        kind = activation or "relu"
        self.blocks, self.block_acts, self.norms = nnx.List(), nnx.List(), nnx.List()
        channels = 1
        for outs, stride, dilation in BLOCKS:
            convs, acts = nnx.List(), nnx.List()
            for i, out in enumerate(outs):
                out = scaled(out, width)
                last = i == len(outs) - 1
                convs.append(
                    conv(channels, out, 3, stride=stride if last else 1, padding=dilation, dilation=dilation, rngs=rngs)
                )
                acts.append(Activation(kind, out, rngs=rngs))
                channels = out
            self.blocks.append(convs)
            self.block_acts.append(acts)
            self.norms.append(_norm(channels, batch_norm, bn_affine, rngs))
        up = scaled(UP_CHANNELS, width)
        self.up = conv_transpose(channels, up, 4, stride=2, padding=1, rngs=rngs)
        self.up_convs = nnx.List([conv(up, up, 3, padding=1, rngs=rngs) for _ in range(2)])
        self.up_acts = nnx.List([Activation(kind, up, rngs=rngs) for _ in range(3)])
        self.out = conv(up, out_channels, 1, rngs=rngs)

    def __call__(self, L: jax.Array) -> jax.Array:
        x = (L - L_CENTRE) / L_RANGE
        for convs, acts, norm in zip(self.blocks, self.block_acts, self.norms):
            for layer, act in zip(convs, acts):
                x = act(layer(x))
            if norm is not None:
                x = norm(x)
            x = block_output(x)
        x = self.up_acts[0](self.up(x))
        for layer, act in zip(self.up_convs, self.up_acts[1:]):
            x = act(layer(x))
        return self.out(block_output(x))


def _norm(channels: int, enabled: bool, affine: bool, rngs: nnx.Rngs) -> nnx.BatchNorm | None:
    return batch_norm(channels, affine=affine, rngs=rngs) if enabled else None
