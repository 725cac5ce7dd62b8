"""A colorization model: a backbone and the head that interprets its output layer.

``ColorizationModel(L)`` maps L [B, H, W, 1] in [0, 100] to the head's output at the backbone's
resolution: ab in Lab units (regression) or logits [B, h, w, Q] (classification). A backbone that
takes hints (``takes_hints``, the user-guided SIGGRAPH17) also takes ``hints`` [B, H, W, 3]: the
hinted ab in Lab units and a 0 / 1 mask (:mod:`colorjax.hints` makes them from points).
Inference at any size (L resized to the net's size, ab back up, joined with the full-resolution L)
is :class:`colorjax.inference.Colorizer`'s.
"""

from __future__ import annotations

import jax
from flax import nnx

from colorjax.decode import ANNEALED_MEAN_TEMPERATURE

INFERENCE_SIZE = 256  # Zhang et al. 2016 run the net on L resized to 256 x 256


class ColorizationModel(nnx.Module):
    """A backbone whose output layer the head interprets; see :mod:`colorjax.models.heads`."""

    def __init__(self, backbone: nnx.Module, head: nnx.Module):
        self.backbone = backbone
        self.head = head

    @property
    def head_kind(self) -> str:
        return self.head.kind

    @property
    def output_stride(self) -> int:
        return self.backbone.output_stride

    @property
    def takes_hints(self) -> bool:
        """Whether the backbone takes user hints (ab and mask) beside L."""
        return self.backbone.takes_hints

    @property
    def border(self) -> int:
        """Input pixels lost on each side (valid convolutions); the output covers the rest."""
        return self.backbone.border

    def check_input(self, L: jax.Array) -> None:
        """A clear error for an input the backbone cannot take (wrong rank, channels or size)."""
        if L.ndim != 4 or L.shape[-1] != 1:
            raise ValueError(f"model input must be L of shape [B, H, W, 1], got {L.shape}")
        multiple = self.backbone.input_multiple
        height, width = L.shape[1:3]
        if height % multiple or width % multiple or min(height, width) <= 2 * self.border:
            raise ValueError(
                f"{type(self.backbone).__name__} needs H and W divisible by {multiple}"
                f" and larger than {2 * self.border}, got {height} x {width}"
            )

    def check_hints(self, L: jax.Array, hints: jax.Array | None) -> None:
        """A clear error for hints the model cannot take (no hint input, or the wrong shape)."""
        if hints is None:
            return
        if not self.takes_hints:
            raise ValueError(f"this model ({type(self.backbone).__name__} backbone) takes no hints")
        if hints.shape != (*L.shape[:-1], 3):
            raise ValueError(f"hints must have shape {(*L.shape[:-1], 3)} (a, b, mask), got {hints.shape}")

    def __call__(self, L: jax.Array, hints: jax.Array | None = None) -> jax.Array:
        self.check_input(L)
        self.check_hints(L, hints)
        return self.head(self.backbone(L, hints) if self.takes_hints else self.backbone(L))

    def with_class_logits(self, L: jax.Array, hints: jax.Array | None = None):
        """``(head output, auxiliary classification logits or None)``: the logits of a regression
        SIGGRAPH17's ``model_class`` branch (its auxiliary loss); None for other backbones."""
        self.check_input(L)
        self.check_hints(L, hints)
        out, logits = self.backbone.outputs(L, hints)
        return self.head(out), (logits if self.head_kind == "regression" else None)

    def predict_ab(
        self, L: jax.Array, temperature: float = ANNEALED_MEAN_TEMPERATURE, hints: jax.Array | None = None
    ) -> jax.Array:
        """ab [B, h, w, 2] in Lab units at the output resolution (annealed mean for classification)."""
        out = self(L, hints)
        return self.head.decode(out, temperature) if self.head_kind == "classification" else out
