"""A colorization model (backbone + head) and full-resolution colorization with it.

``ColorizationModel(L)`` maps L [B, H, W, 1] in [0, 100] to the head's output at the backbone's
resolution: ab in Lab units (regression) or logits [B, h, w, Q] (classification). A backbone that
takes hints (``takes_hints``, the user-guided SIGGRAPH17) also takes ``hints`` [B, H, W, 3]: the
hinted ab in Lab units and a 0 / 1 mask (:mod:`colorjax.hints` makes them from points).
:func:`colorize_lab` is Zhang's any-size inference (docs/reference.md section 2): run the net on L resized
to ``size`` x ``size``, upsample the ab map bilinearly to the original size and join it with the
original-resolution L.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
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
        return bool(getattr(self.backbone, "takes_hints", False))

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
        if not hasattr(self.backbone, "outputs"):
            return self(L, hints), None
        out, logits = self.backbone.outputs(L, hints)
        return self.head(out), (logits if self.head_kind == "regression" else None)

    def predict_ab(
        self, L: jax.Array, temperature: float = ANNEALED_MEAN_TEMPERATURE, hints: jax.Array | None = None
    ) -> jax.Array:
        """ab [B, h, w, 2] in Lab units at the output resolution (annealed mean for classification)."""
        out = self(L, hints)
        return self.head.decode(out, temperature) if self.head_kind == "classification" else out


def colorize_lab(
    model: ColorizationModel,
    L_full: jax.Array,
    *,
    size: int = INFERENCE_SIZE,
    temperature: float = ANNEALED_MEAN_TEMPERATURE,
) -> jax.Array:
    """Lab [..., H, W, 3] from L [..., H, W, 1] (or [H, W]) in [0, 100], in evaluation mode.

    The net sees L resized to ``size`` x ``size`` (edge-padded by the backbone's border so valid
    convolutions still cover the whole image); its ab is resized bilinearly to H x W.
    """
    L_full = jnp.asarray(L_full, jnp.float32)
    if L_full.ndim == 2:
        L_full = L_full[..., None]
    single = L_full.ndim == 3
    batch = L_full[None] if single else L_full
    if batch.ndim != 4 or batch.shape[-1] != 1:
        raise ValueError(f"colorize_lab needs L of shape [H, W], [H, W, 1] or [B, H, W, 1], got {L_full.shape}")
    b, height, width, _ = batch.shape
    L_small = jax.image.resize(batch, (b, size, size, 1), "linear")
    pad = model.border
    if pad:
        L_small = jnp.pad(L_small, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    evaluating = nnx.with_attributes(
        model, deterministic=True, use_running_average=True, raise_if_not_found=False
    )
    ab = evaluating.predict_ab(L_small, temperature)
    ab = jax.image.resize(ab, (b, height, width, 2), "linear")
    lab = jnp.concatenate([batch, ab], axis=-1)
    return lab[0] if single else lab
