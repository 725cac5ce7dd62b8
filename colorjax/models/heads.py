"""What turns a backbone's output layer into ab: the regression and the Q-bin classification heads.

Every backbone ends in its own output layer (ECCV16's 1 x 1 ``model8.6``, pix2pix's outermost
transposed conv, ...) whose width the head sets: 2 for regression, Q for classification. The head
then interprets that layer's output:

- regression: ab = 110 * tanh(x) (``output="tanh"``, pix2pix's output) or ab = x (``"linear"``);
- classification: x are logits over the Q bin centres, which the head carries as a
  :class:`BinCentres` variable (saved in checkpoints, never trained) and decodes by annealed mean.

The 2.606 question (Zhang et al. 2016; docs/reference.md section 2): Caffe's deploy net multiplies
the conv8_313 logits by 2.606 = 1 / 0.38 before the softmax; the PyTorch port has no such factor.
Our logits are always the raw output of the last conv (model8.6 for ECCV16), and
:meth:`ClassificationHead.decode` applies the temperature explicitly, T = 0.38 by default, which
reproduces Caffe's softmax(2.606 x logits).
The release's ``model_out`` (softmax at T = 1, then a 1 x 1 conv 313 -> 2 without bias, x 110) can
be kept as a fixed :class:`ReleaseProjection` and used through :meth:`release_ab`, for comparison.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from colorjax.color import AB_SCALE
from colorjax.decode import annealed_mean

HEADS = ("regression", "classification")
REGRESSION_OUTPUTS = ("tanh", "linear")


class BinCentres(nnx.Variable):
    """The ab centres [Q, 2] of a classification head: part of the model's state, not trained."""


class ReleaseProjection(nnx.Variable):
    """The ECCV16 release's ``model_out`` weight as [Q, 2] (ab / 110 per bin; initially centres / 110)."""


class RegressionHead(nnx.Module):
    """ab in Lab units from the backbone's 2 output channels."""

    kind = "regression"
    channels = 2

    def __init__(self, output: str = "tanh"):
        if output not in REGRESSION_OUTPUTS:
            raise ValueError(f"unknown regression output {output!r}; choose one of {', '.join(REGRESSION_OUTPUTS)}")
        self.output = output

    def __call__(self, x: jax.Array) -> jax.Array:
        return AB_SCALE * jnp.tanh(x) if self.output == "tanh" else x


class ClassificationHead(nnx.Module):
    """Logits over Q ab bins; decodes them to ab with the annealed mean."""

    kind = "classification"

    def __init__(self, centres, *, release_projection: bool = False):
        centres = jnp.asarray(centres, jnp.float32)
        if centres.ndim != 2 or centres.shape[1] != 2 or centres.shape[0] < 2:
            raise ValueError(f"bin centres must have shape [Q, 2] with Q >= 2, got {centres.shape}")
        self.channels = int(centres.shape[0])
        self.centres = BinCentres(centres)
        self.release_projection = (
            ReleaseProjection(centres / AB_SCALE) if release_projection else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return x

    def decode(self, logits: jax.Array, temperature: float, *, logit_bias: jax.Array | None = None,
               release: bool = False) -> jax.Array:
        """ab [..., 2] of ``logits`` [..., Q] at ``temperature``: the annealed mean over the bin
        centres, or with ``release`` the ECCV16 release's projection (:meth:`release_ab`).

        ``logit_bias`` [Q] (:func:`rebalancing_logit_bias`) is added to the logits first. The head
        keeps no decoding state: the settings come from the caller (the inference layer's
        :class:`colorjax.inference.Colorizer` fixes them once, from the checkpoint and overrides).
        """
        logits = logits if logit_bias is None else logits + logit_bias
        if release:
            return self.release_ab(logits, temperature)
        return annealed_mean(logits, self.centres[...], temperature)

    def release_ab(self, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
        """The ECCV16 release's decoding: 110 * (softmax(logits / T) @ model_out); the release itself
        is T = 1, and a lower T anneals relative to it (its logits carry whatever scale it has)."""
        if self.release_projection is None:
            raise ValueError("this model carries no release projection (build it with release_projection=True)")
        t = jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
        return AB_SCALE * jax.nn.softmax(logits / t, axis=-1) @ self.release_projection[...]


def rebalancing_logit_bias(class_weights, strength: float) -> jax.Array:
    """The per-bin logit offset ``-strength * log w`` that makes a head decode ``p(q) / w_q ** strength``.

    A classifier trained with Zhang's per-pixel weights ``w`` learns (near) ``w_q p(q | x)``
    normalised, not ``p(q | x)``: the weighted cross-entropy is minimised by the weighted
    distribution. Dividing by ``w_q`` (``strength`` 1) recovers the unweighted conditional
    distribution, whose annealed mean keeps the colours the rebalanced training learnt without its
    bias towards rare (saturated) bins; 0 decodes as trained (Zhang et al.'s choice); values between
    trade the two.
    """
    weights = jnp.asarray(class_weights, jnp.float32)
    if weights.ndim != 1 or not bool(jnp.all(weights > 0)):
        raise ValueError(f"need positive class weights [Q], got shape {weights.shape}")
    return -float(strength) * jnp.log(weights)
