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

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax import color
from colorjax.grids import image_grid  # noqa: F401 - the reports' grids, importable from here as before
from colorjax.inference.colorize import predict_ab_covering
from colorjax.models.layers import for_inference

Predictor = Callable[[jnp.ndarray], jnp.ndarray]
GRID_IMAGES = 8  # images shown in an evaluation's grid (rows of gray | prediction | truth)


def upsample_ab(ab: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
    """Bilinear resize of ab [B, h, w, 2] to [B, height, width, 2] (identity when sizes agree)."""
    if ab.shape[1:3] == (height, width):
        return ab
    return jax.image.resize(ab, (ab.shape[0], height, width, ab.shape[-1]), method="bilinear")


@nnx.jit(static_argnames="model_size")
def _predict_full_size(model: nnx.Module, lab: jnp.ndarray, temperature: jnp.ndarray, model_size=None) -> jnp.ndarray:
    L = lab[..., :1]
    if model_size is not None and model_size != L.shape[1]:  # colorize's path: L down, ab back up
        L = jax.image.resize(L, (L.shape[0], model_size, model_size, 1), method="linear", antialias=True)
    ab = predict_ab_covering(model, L, temperature)
    return upsample_ab(ab, lab.shape[1], lab.shape[2])


def model_predictor(model: nnx.Module, temperature: float, *, model_size: int | None = None) -> Predictor:
    """A model's ab at full crop resolution (annealed mean at ``temperature`` for Q-bin heads).

    With ``model_size`` the model sees L resized to ``model_size`` x ``model_size`` (square crops)
    and its ab is upsampled back, as :mod:`colorjax.inference.colorize` does for photos of any size.
    The temperature is a traced argument: one compiled function serves every T of a sweep.
    """
    t = jnp.float32(temperature)
    model = for_inference(model)  # evaluation mode, Winograd kernels transformed once
    return lambda lab: _predict_full_size(model, lab, t, model_size=model_size)


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
    for batch in batches:
        rgb_uint8 = np.asarray(batch["rgb"])
        if max_images is not None:
            rgb_uint8 = rgb_uint8[: max_images - n_images]
        if len(rgb_uint8) == 0:
            break
        lab = color.rgb_uint8_to_lab(rgb_uint8)
        pred_ab = predictor(lab)
        if not bool(jnp.isfinite(pred_ab).all()):
            raise ValueError(
                f"the predictor's ab holds NaN or infinity (images {n_images} to {n_images + len(rgb_uint8) - 1}): "
                f"a diverged or corrupt model; no metrics were computed from it"
            )
        pred_lab = jnp.concatenate([lab[..., :1], pred_ab], axis=-1)
        accumulator.update(batch_metric_sums_lab(pred_lab, lab, prior=prior))  # jitted inside
        rows.extend(_grid_rows(lab, color.lab_to_rgb(pred_lab), rgb_uint8, grid_images - len(rows)))
        n_images += len(rgb_uint8)
        if max_images is not None and n_images >= max_images:
            break
    if n_images == 0:
        raise ValueError("evaluation data yielded no images")
    metrics = {k: float(v) for k, v in accumulator.result().items()}
    metrics["wall_s"] = round(time.perf_counter() - start, 2)
    return metrics, rows


def _grid_rows(lab, pred_rgb, true_uint8, n: int) -> list[list[np.ndarray]]:
    if n <= 0:
        return []
    gray = color.lab_to_rgb(jnp.concatenate([lab[:n, ..., :1], jnp.zeros_like(lab[:n, ..., 1:])], axis=-1))
    to_uint8 = lambda x: np.asarray(jnp.round(x * 255.0)).astype(np.uint8)  # noqa: E731
    return [list(r) for r in zip(to_uint8(gray), to_uint8(pred_rgb[:n]), true_uint8[:n])]

