"""Evaluate a colorizer on a dataset split: every metric of :mod:`colorjax.metrics`, and a grid.

A *predictor* maps a batch of ground-truth Lab images [B, S, S, 3] to predicted ab [B, S, S, 2].
Models and the gray baseline read only L (channel 0); the random baseline reads the colours of
*other* images of the set (see :mod:`colorjax.evaluation.baselines`). The predicted ab is joined with
the true L and scored by :func:`colorjax.metrics.batch_metric_sums_lab`: AuC on the predicted ab
as predicted, RGB metrics after ``lab_to_rgb`` (channels clipped to [0, 1], as
``skimage.color.lab2rgb`` does), out-of-gamut pixels counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import jax.numpy as jnp
import numpy as np

from colorjax import color

Predictor = Callable[[jnp.ndarray], jnp.ndarray]
GRID_IMAGES = 8  # images shown in an evaluation's grid (rows of gray | prediction | truth)


def model_predictor(colorizer, temperature: float | None = None) -> Predictor:
    """A :class:`colorjax.inference.Colorizer`'s ab at full crop resolution, as it colorizes a
    photo (L down to its size, ab back up; at ``temperature``, else the colorizer's own)."""
    return lambda lab: colorizer.ab_at_full_resolution(lab[..., :1], temperature)


def evaluate(
    predictor: Predictor,
    batches: Iterable[dict],
    *,
    prior=None,
    max_images: int | None = None,
    grid_images: int = GRID_IMAGES,
) -> tuple[dict, list[list[np.ndarray]]]:
    """Run ``predictor`` over ``batches`` of ``{"rgb": uint8 [B, S, S, 3]}``.

    Returns ``(metrics, grid_rows)``: the metrics of :func:`colorjax.metrics.summarise` (plus
    ``wall_s``) and up to ``grid_images`` rows of uint8 images [gray, prediction, truth].
    """
    from colorjax.metrics import MetricAccumulator, batch_metric_sums_lab
    from colorjax.validation import inference_arguments

    inference_arguments(max_images=max_images)
    accumulator, rows, n_images, start = MetricAccumulator(), [], 0, time.perf_counter()
    for rgb_uint8 in first_images(batches, max_images):
        lab = color.rgb_uint8_to_lab(rgb_uint8)
        pred_ab = predictor(lab)
        if not bool(jnp.isfinite(pred_ab).all()):
            raise ValueError(
                f"the predictor's ab holds NaN or infinity (images {n_images} to {n_images + len(rgb_uint8) - 1}): "
                f"a diverged or corrupt model; no metrics were computed from it"
            )
        pred_lab = jnp.concatenate([lab[..., :1], pred_ab], axis=-1)
        accumulator.update(batch_metric_sums_lab(pred_lab, lab, prior=prior))  # jitted inside
        rows.extend(_grid_rows(lab, pred_lab, rgb_uint8, grid_images - len(rows)))
        n_images += len(rgb_uint8)
    if n_images == 0:
        raise ValueError("evaluation data yielded no images")
    metrics = {k: float(v) for k, v in accumulator.result().items()}
    metrics["wall_s"] = round(time.perf_counter() - start, 2)
    return metrics, rows


def first_images(batches: Iterable[dict], max_images: int | None = None):
    """The uint8 RGB arrays of ``batches`` (``{"rgb": [B, S, S, 3]}``) up to ``max_images`` images
    in all (None: every one), the last batch cut short; stops reading there."""
    seen = 0
    for batch in batches:
        rgb = np.asarray(batch["rgb"])
        if max_images is not None:
            rgb = rgb[: max_images - seen]
        if len(rgb) == 0:
            return
        yield rgb
        seen += len(rgb)
        if max_images is not None and seen >= max_images:
            return


def _grid_rows(lab, pred_lab, true_uint8, n: int) -> list[list[np.ndarray]]:
    """Rows [gray, prediction, truth] of the first ``n`` images; the prediction in sRGB as
    ``colorize`` writes it (out-of-gamut chroma reduced, :func:`colorjax.inference.pixels.lab_to_uint8`)."""
    from colorjax.inference.pixels import lab_to_uint8

    if n <= 0:
        return []
    lab, pred_lab = np.asarray(lab[:n]), np.asarray(pred_lab[:n])
    gray = [lab_to_uint8(L[..., :1], np.zeros_like(L[..., 1:])) for L in lab]
    pred = [lab_to_uint8(p[..., :1], p[..., 1:]) for p in pred_lab]
    return [list(r) for r in zip(gray, pred, true_uint8[:n])]
