"""The one inference path of colorjax: full-resolution L -> model -> ab -> full-resolution sRGB.

``colorjax colorize`` (files and arrays), ``colorjax evaluate``, the demo, the hint path and the
experiment scripts all run through a :class:`Colorizer`, so the files ``colorize`` writes, the
predictions ``evaluate`` scores and the images the demo shows cannot drift apart.

The path of one image (Zhang et al. 2016, "inference at any size"; docs/reference.md section 2):
full-resolution RGB -> L (colour inputs are thereby desaturated: only L is used) -> L resized to
``size`` x ``size`` (antialiased bilinear, in Pillow: no program compiled per image size) ->
edge-padded by the backbone's border (valid convolutions then still cover the whole image) -> the
model, in fixed batches of ``batch_size`` (the last one padded: one compiled shape) -> its output
decoded to ab (Q-bin heads: annealed mean at temperature T after the rebalancing correction, or the
ECCV16 release's projection for a converted release) -> ab resized back to the full resolution ->
joined with the full-resolution L -> sRGB, the chroma of colours outside the gamut reduced (hue and
L kept) rather than their channels clipped (:mod:`colorjax.inference.pixels`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax import validation
from colorjax.decode import ANNEALED_MEAN_TEMPERATURE
from colorjax.inference.host_work import enlarge_ab, shrink_lightness
from colorjax.inference.pixels import lab_to_uint8, lightness
from colorjax.models.heads import rebalancing_logit_bias
from colorjax.models.layers import for_inference
from colorjax.models.model import INFERENCE_SIZE

# Zhang et al. 2016 decode with T = 0.38 and run the net at 256 x 256 (docs/reference.md section 2).
DEFAULT_TEMPERATURE = ANNEALED_MEAN_TEMPERATURE
DEFAULT_SIZE = INFERENCE_SIZE
DEFAULT_BATCH = 8  # images per device call of ``colorjax colorize``


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite colours: its parameters are diverged or corrupt."""


def check_finite_output(ab) -> None:
    """A :class:`NonFiniteOutputError` when predicted ab holds NaN or infinity (a diverged model
    would otherwise give black or gray images that look like a result)."""
    ab = np.asarray(ab)
    if not np.isfinite(ab).all():
        raise NonFiniteOutputError(
            f"the model's output holds NaN or infinity in {int(np.sum(~np.isfinite(ab)))} of {ab.size} ab values: "
            f"its parameters are diverged or corrupt; use an earlier checkpoint"
        )


def check_size(model: nnx.Module, size: int) -> None:
    """A ValueError, before any work, when the model cannot run at ``size`` x ``size``."""
    side = size + 2 * model.border
    model.check_input(jax.ShapeDtypeStruct((1, side, side, 1), jnp.float32))


def _covering_output(model: nnx.Module, L: jax.Array, hints: jax.Array | None) -> jax.Array:
    """The head's output covering all of L [B, S, S, 1]: L edge-padded by the backbone's border
    first (the hint map zero-padded: no hint in the padding)."""
    pad = model.border
    if pad:
        L = jnp.pad(L, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        if hints is not None:
            hints = jnp.pad(hints, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return model(L) if hints is None else model(L, hints)


def _decoded(model: nnx.Module, output: jax.Array, temperature, logit_bias, release: bool) -> jax.Array:
    """ab of the head's output: decoded for a Q-bin head, as is for a regression head."""
    if model.head_kind != "classification":
        return output
    return model.head.decode(output, temperature, logit_bias=logit_bias, release=release)


@nnx.jit
def _forward(model, L, hints):
    return _covering_output(model, L, hints)


@nnx.jit(static_argnames="release")
def _decode(model, output, temperature, logit_bias, release=False):
    return _decoded(model, output, temperature, logit_bias, release)


@nnx.jit(static_argnames="release")
def _predict(model, L, temperature, hints, logit_bias, release=False):
    return _decoded(model, _covering_output(model, L, hints), temperature, logit_bias, release)


class Colorizer:
    """A model ready for inference, with its size, batch and decoding settled once.

    Build it from a checkpoint with :meth:`from_checkpoint` (a saved model, a training workdir or
    its ``checkpoints/``; the step; each of size, temperature and prior correction as given, else
    as the checkpoint saved it, else the paper's), or from a model in memory with the constructor.
    The decoding is fixed here and passed to the head explicitly: nothing is patched onto the model.

    Attributes: ``model`` (evaluation mode, inference kernels), ``size`` (the side the net sees),
    ``batch_size`` (images per device call; one compiled shape), ``temperature``,
    ``prior_correction``, ``release_decoding``, ``prior``, ``classification``, ``takes_hints``;
    from a checkpoint also ``directory`` (its steps' folder), ``step`` and ``model_config``.

    Whole images (any sizes; each output matches its input):

    - :meth:`colorize_arrays` (uint8 RGB or gray [H, W] images, optional user hints) -> uint8 sRGB;
    - :meth:`colorize_frames` (a batch of frames: uint8 RGB [N, H, W, 3] or L [N, H, W, 1]) ->
      uint8 sRGB [N, H, W, 3], e.g. a video's frames;
    - :meth:`colorize_lightness` (full-resolution L images) -> uint8 sRGB;
    - :meth:`ab_at_full_resolution` (L [B, H, W, 1]) -> ab [B, H, W, 2] (what ``evaluate`` scores).

    The steps, for callers that keep intermediate results (the demo caches a model output and
    re-decodes it at another temperature; ``colorize_files`` runs them in its reader, device and
    writer threads): :meth:`shrink` (L to the net's size), :meth:`hint_map`, :meth:`output` (the
    head's raw output, jitted), :meth:`decode` (output -> ab, jitted), :meth:`predict_ab` (both in
    one device call), :meth:`predict_batch` (a padded batch, checked finite), :meth:`to_srgb` (ab at
    the net's resolution + full-resolution L -> uint8 sRGB).
    """

    def __init__(
        self,
        model: nnx.Module,
        *,
        size: int = DEFAULT_SIZE,
        temperature: float = DEFAULT_TEMPERATURE,
        prior_correction: float = 0.0,
        prior=None,
        release_decoding: bool = False,
        batch_size: int = DEFAULT_BATCH,
    ):
        validation.inference_arguments(size=size, batch_size=batch_size, temperature=temperature)
        validation.prior_correction(prior_correction, "prior_correction")
        check_size(model, size)
        self.classification = model.head_kind == "classification"
        self.takes_hints = model.takes_hints
        self.size, self.batch_size, self.temperature = int(size), int(batch_size), float(temperature)
        self.prior_correction, self.prior = float(prior_correction), prior
        self.release_decoding = bool(release_decoding) and self.classification
        self._logit_bias = None
        if self.classification and self.prior_correction:
            if prior is None:
                raise ValueError("a rebalancing correction needs the colour prior saved with the checkpoint")
            if len(prior.weights) != model.head.channels:
                raise ValueError(f"the prior has {len(prior.weights)} bins, the model's head {model.head.channels}")
            self._logit_bias = rebalancing_logit_bias(prior.weights, self.prior_correction)
        if self.release_decoding and model.head.release_projection is None:
            raise ValueError("release decoding needs a model built with release_projection=True")
        self.model = for_inference(model)  # evaluation mode, Winograd kernels transformed once
        self.directory, self.step, self.model_config = None, None, None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        *,
        step: int | None = None,
        size: int | None = None,
        temperature: float | None = None,
        prior_correction: float | None = None,
        batch_size: int = DEFAULT_BATCH,
        default_size: int = DEFAULT_SIZE,
    ) -> Colorizer:
        """Load a checkpoint and settle each setting once: as given (not None), else as the
        checkpoint saved it (:func:`colorjax.checkpointing.inference_defaults`), else the default
        (``default_size``, T = 0.38, no correction). An override replaces the saved value, 0 included."""
        from colorjax.checkpointing import build_model_from_config, checkpoint_folder, inference_defaults, restore_module

        directory = checkpoint_folder(path)
        model, model_config, prior, step = restore_module(directory, build_model_from_config, step)
        saved = inference_defaults(model_config, str(directory))

        def settled(given, name, default):
            return given if given is not None else saved[name] if saved[name] is not None else default

        colorizer = cls(
            model,
            size=settled(size, "size", default_size),
            temperature=settled(temperature, "temperature", DEFAULT_TEMPERATURE),
            prior_correction=settled(prior_correction, "prior_correction", 0.0),
            prior=prior,
            release_decoding=saved["decoding"] == "release" and model.head_kind == "classification"
            and model.head.release_projection is not None,  # a converted release decodes as the release does
            batch_size=batch_size,
        )
        colorizer.directory, colorizer.step, colorizer.model_config = directory, step, model_config
        return colorizer

    # --- the steps -------------------------------------------------------------------------------

    def shrink(self, L_full: np.ndarray) -> np.ndarray:
        """L [H, W, 1] -> [size, size, 1], antialiased bilinear (Pillow: no program per image size)."""
        return shrink_lightness(L_full, self.size)

    def hint_map(self, hints, image_hw: tuple[int, int]) -> np.ndarray:
        """The net's hint input [size, size, 3] of user hints on an image of ``image_hw``."""
        from colorjax.hints import hint_map

        return hint_map(hints, image_hw, self.size)

    def output(self, L_small, hints=None) -> jax.Array:
        """The head's output (Q-bin logits or ab) at the output resolution for L [B, size, size, 1]
        (and hint maps [B, size, size, 3]); the border pad included, jitted."""
        return _forward(self.model, jnp.asarray(L_small), None if hints is None else jnp.asarray(hints))

    def decode(self, output, temperature: float | None = None) -> jax.Array:
        """ab of a head output from :meth:`output` (T: this colorizer's unless given); jitted."""
        if not self.classification:
            return output
        return _decode(self.model, output, self._temperature(temperature), self._logit_bias,
                       release=self.release_decoding)

    def predict_ab(self, L_small, hints=None, temperature: float | None = None) -> jax.Array:
        """:meth:`decode` of :meth:`output` in one device call: ab [B, h, w, 2]."""
        return _predict(self.model, jnp.asarray(L_small), self._temperature(temperature),
                        None if hints is None else jnp.asarray(hints), self._logit_bias,
                        release=self.release_decoding)

    def predict_batch(self, L_small: Sequence[np.ndarray], maps: Sequence[np.ndarray] | None = None,
                      temperature: float | None = None, *, check_finite: bool = True) -> np.ndarray:
        """ab [n, h, w, 2] for up to ``batch_size`` images L [size, size, 1] (and hint maps),
        padded to ``batch_size`` so that every batch runs one compiled shape; by default a
        :class:`NonFiniteOutputError` when the model's ab is not finite."""
        n = len(L_small)
        if not 0 < n <= self.batch_size:
            raise ValueError(f"a batch holds 1 to {self.batch_size} images, got {n}")
        L_small = list(L_small) + [L_small[-1]] * (self.batch_size - n)
        if maps is not None:
            maps = list(maps) + [np.zeros_like(maps[0])] * (self.batch_size - n)
            maps = np.stack(maps)
        ab = np.asarray(self.predict_ab(np.stack(L_small), maps, temperature))[:n]
        if check_finite:
            check_finite_output(ab)
        return ab

    def to_srgb(self, L_full: np.ndarray, ab_small) -> np.ndarray:
        """uint8 sRGB [H, W, 3]: ab [h, w, 2] resized bilinearly to L's [H, W], joined with L
        [H, W, 1], out-of-gamut chroma reduced."""
        H, W = L_full.shape[:2]
        return lab_to_uint8(L_full, enlarge_ab(np.asarray(ab_small), H, W))

    # --- whole images ----------------------------------------------------------------------------

    def colorize_lightness(self, L_full: Sequence[np.ndarray], hints=None,
                           temperature: float | None = None) -> list[np.ndarray]:
        """uint8 sRGB of full-resolution L images [H, W, 1] of any sizes; ``hints`` None or one
        list of :class:`colorjax.hints.Hint` (or None) per image."""
        out: list[np.ndarray] = []
        for start in range(0, len(L_full), self.batch_size):
            batch = L_full[start : start + self.batch_size]
            maps = None
            if hints is not None:
                maps = [self.hint_map(h or [], L.shape[:2]) for h, L in zip(hints[start : start + self.batch_size], batch)]
            ab = self.predict_batch([self.shrink(L) for L in batch], maps, temperature)
            out.extend(self.to_srgb(L, ab[i]) for i, L in enumerate(batch))
        return out

    def colorize_arrays(self, images: Sequence[np.ndarray], hints=None,
                        temperature: float | None = None) -> list[np.ndarray]:
        """Colorize uint8 RGB (or gray [H, W]) images of any sizes; each output matches its input's size.

        ``hints`` (models that take them): one list of hints (:class:`colorjax.hints.Hint` or dicts
        as in the hints file) for every image, or one such list (or None) per image.
        """
        from colorjax.hints import hints_per_image

        per_image = hints_per_image(self.model, hints, len(images))
        rgbs = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3] for im in images]
        return self.colorize_lightness([lightness(rgb) for rgb in rgbs], per_image, temperature)

    def colorize_frames(self, frames: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """uint8 sRGB frames [N, H, W, 3] of a batch of frames: uint8 RGB [N, H, W, 3] (only their
        L is used) or float L [N, H, W, 1] in [0, 100]. Frames of a new size compile nothing."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] not in (1, 3):
            raise ValueError(f"frames must be uint8 RGB [N, H, W, 3] or L [N, H, W, 1], got shape {frames.shape}")
        L_full = list(frames.astype(np.float32)) if frames.shape[-1] == 1 else [lightness(f) for f in frames]
        return np.stack(self.colorize_lightness(L_full, temperature=temperature))

    def ab_at_full_resolution(self, L, temperature: float | None = None) -> np.ndarray:
        """ab [B, H, W, 2] predicted for L [B, H, W, 1]: L down to the net's size, ab back up (as
        for a photo); not checked for finiteness (``evaluate`` reports that itself)."""
        L = np.asarray(L, np.float32)
        H, W = L.shape[1:3]
        ab = []
        for start in range(0, len(L), self.batch_size):
            small = [self.shrink(x) for x in L[start : start + self.batch_size]]
            ab.extend(enlarge_ab(a, H, W) for a in self.predict_batch(small, None, temperature, check_finite=False))
        return np.stack(ab)

    def _temperature(self, temperature: float | None) -> jax.Array:
        return jnp.float32(self.temperature if temperature is None else temperature)
