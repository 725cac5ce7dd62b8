"""The small classifier of the patch-network RReLU study (docs/reference.md section 5): eight valid (unpadded) 3 x 3 convolutions.

A 32 x 32 L window becomes a 16 x 16 map (each conv trims one pixel per side, 8 in all); the
filters grow in steps of Q / 8 (Q / 8, 2Q / 8, ..., Q), the last conv giving the head's Q logits.
A regression head has no Q, so its hidden filters follow Zhang's Q = 313 schedule
(``schedule_q``), which keeps the two heads at the same size for comparison. BatchNorm (optional,
the study compares both) follows every conv but the last. Input (L - 50) / 100 as in ECCV16.
"""

from __future__ import annotations

import jax
from flax import nnx

from colorjax.models.backbone import Backbone
from colorjax.models.activations import Activation
from colorjax.models.layers import batch_norm, block_output, conv, scaled

NUM_CONVS = 8  # the RReLU study's patch net
REGRESSION_SCHEDULE_Q = 313  # Zhang et al. 2016's Q, used when the head has no bins
L_CENTRE, L_RANGE = 50.0, 100.0


class PatchNet(Backbone):
    """The RReLU study's net: L in [0, 100] of size S -> ``out_channels`` maps of size S - 16."""

    OPTIONS = ("schedule_q",)

    output_stride = 1
    border = NUM_CONVS  # valid convs: 8 pixels lost on each side
    input_multiple = 1

    def __init__(self, out_channels: int, *, width: float = 1.0, schedule_q: int | None = None,
                 activation: str | None = None, batch_norm: bool = True, rngs: nnx.Rngs):
        kind = activation or "relu"
        q = schedule_q or (out_channels if out_channels > 2 else REGRESSION_SCHEDULE_Q)
        hidden = [scaled(q * k / NUM_CONVS, width) for k in range(1, NUM_CONVS)]
        self.convs, self.norms, self.acts = nnx.List(), nnx.List(), nnx.List()
        channels = 1
        for out in hidden:
            self.convs.append(conv(channels, out, 3, rngs=rngs))
            self.norms.append(batch_norm_or_none(out, batch_norm, rngs))
            self.acts.append(Activation(kind, out, rngs=rngs))
            channels = out
        self.out = conv(channels, out_channels, 3, rngs=rngs)

    def __call__(self, L: jax.Array) -> jax.Array:
        x = (L - L_CENTRE) / L_RANGE
        for layer, norm, act in zip(self.convs, self.norms, self.acts):
            x = layer(x)
            x = block_output(act(x if norm is None else norm(x)))
        return self.out(x)


def batch_norm_or_none(channels: int, enabled: bool, rngs: nnx.Rngs) -> nnx.BatchNorm | None:
    return batch_norm(channels, rngs=rngs) if enabled else None
