"""Colorization metrics as per-image sums that add up over batches, hosts and a whole dataset.

Two entry points, both jittable, return a dict of per-image sums (leading axis B) or batch sums:

- :func:`per_image_sums_lab` / :func:`batch_metric_sums_lab` take predicted and true Lab. This is
  the path for model outputs: AuC uses the predicted ab as predicted (possibly out of the sRGB
  gamut), RGB metrics use ``lab_to_rgb`` (clipped), and out-of-gamut pixels are counted.
- :func:`per_image_sums` / :func:`batch_metric_sums` take RGB in [0, 1] (already in gamut); ab
  for AuC comes from ``rgb_to_lab`` and there is no out-of-gamut count.

:func:`summarise` turns sums (of one image, a batch or a dataset) into the metrics;
:class:`MetricAccumulator` adds batch sums in float64 on the host. Sums, not means, are kept so
that the dataset values are exact: RMSE and PSNR over the set (from the summed squared error) and
as means of per-image values. ``prior=None`` leaves out rebalanced AuC.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import color
from colorjax.bins import nearest_bin

# Pappalardo and Caterini's U-Net / Pix2Pix comparison (docs/reference.md section 4): a pixel is
# correct when both norms of its RGB error are below these.
ACCURACY_EPS_INF = 0.14
ACCURACY_EPS_2 = 0.17
# Zhang et al. 2016, section 4.1: AuC of the fraction of pixels within ab distance t, t = 0..150.
AUC_MAX_THRESHOLD = 150
# Distances this close above a threshold count as within it: float32 Lab noise (~1e-5), not error.
_AUC_TOLERANCE = 1e-3
# Hasler and Suesstrunk 2003: CF = sigma_rgyb + 0.3 mu_rgyb, on 0-255 RGB (docs/reference.md section 7).
CF_MEAN_WEIGHT = 0.3
CF_SCALE = 255.0
# SSIM (Wang et al. 2004) with scikit-image's conventions for gaussian_weights=True: a Gaussian window
# of sigma 1.5 truncated at 3.5 sigma (11 taps), K1 = 0.01, K2 = 0.03, population covariances, data
# range 1, the mean taken over pixels at least 5 from the border, then over channels.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _ssim_taps() -> np.ndarray:
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    x = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * x**2 / SSIM_SIGMA**2)
    return (taps / taps.sum()).astype(np.float32)


def _filter_valid(x: jnp.ndarray, taps: np.ndarray) -> jnp.ndarray:
    """Separable filter of ``[B, H, W, C]`` over H and W, keeping only fully covered pixels."""
    n = len(taps)
    h, w = x.shape[1] - n + 1, x.shape[2] - n + 1
    x = sum(float(t) * x[:, i : i + h] for i, t in enumerate(taps))
    return sum(float(t) * x[:, :, i : i + w] for i, t in enumerate(taps))


@jax.jit
def ssim_per_image(pred_rgb: jnp.ndarray, true_rgb: jnp.ndarray) -> jnp.ndarray:
    """Mean SSIM of each image ``[B, H, W, C]`` (values in [0, 1]), as scikit-image computes it."""
    taps = _ssim_taps()
    if min(pred_rgb.shape[1:3]) < len(taps):
        raise ValueError(f"SSIM needs images of at least {len(taps)} x {len(taps)}, got {pred_rgb.shape[1:3]}")
    x, y = jnp.asarray(pred_rgb, jnp.float32), jnp.asarray(true_rgb, jnp.float32)
    mx, my = _filter_valid(x, taps), _filter_valid(y, taps)
    vx = _filter_valid(x * x, taps) - mx * mx
    vy = _filter_valid(y * y, taps) - my * my
    vxy = _filter_valid(x * y, taps) - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = (2 * mx * my + c1) * (2 * vxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return jnp.mean(s, axis=(1, 2, 3))


@jax.jit
def colourfulness(rgb: jnp.ndarray) -> jnp.ndarray:
    """Hasler and Suesstrunk's colourfulness of each image ``[B, H, W, 3]`` in [0, 1], on the 0-255 scale."""
    rgb = jnp.asarray(rgb, jnp.float32) * CF_SCALE
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    std = jnp.sqrt(jnp.var(rg, axis=(1, 2)) + jnp.var(yb, axis=(1, 2)))
    mean = jnp.sqrt(jnp.mean(rg, axis=(1, 2)) ** 2 + jnp.mean(yb, axis=(1, 2)) ** 2)
    return std + CF_MEAN_WEIGHT * mean


def accurate_pixels(pred_rgb: jnp.ndarray, true_rgb: jnp.ndarray) -> jnp.ndarray:
    """Pappalardo and Caterini's custom accuracy per pixel: ``|err|_inf < 0.14`` and ``|err|_2 < 0.17``, bool ``[...]``."""
    err = jnp.asarray(pred_rgb, jnp.float32) - jnp.asarray(true_rgb, jnp.float32)
    return (jnp.max(jnp.abs(err), axis=-1) < ACCURACY_EPS_INF) & (jnp.sum(err * err, axis=-1) < ACCURACY_EPS_2**2)


def auc_hits(pred_ab: jnp.ndarray, true_ab: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
    """Per image ``[B, H, W, 2]``: (weighted) pixels with ab distance <= t, for t = 0..150, ``[B, 151]``.

    Distances within 1e-3 above an integer threshold count as within it (float32 noise).
    """
    diff = jnp.asarray(pred_ab, jnp.float32) - jnp.asarray(true_ab, jnp.float32)
    distance = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    # d <= t for integer t exactly when ceil(d) <= t: histogram ceil(d), then a cumulative sum.
    n = AUC_MAX_THRESHOLD + 2
    step = jnp.clip(jnp.ceil(distance - _AUC_TOLERANCE), 0, n - 1).astype(jnp.int32)
    b = step.shape[0]
    index = step + n * jnp.arange(b, dtype=jnp.int32)[:, None, None]
    w = jnp.ones(step.shape, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    histogram = jnp.bincount(index.ravel(), w.ravel(), length=b * n).reshape(b, n)
    return jnp.cumsum(histogram, axis=-1)[:, : AUC_MAX_THRESHOLD + 1]


def auc_from_hits(hits, total) -> np.ndarray:
    """Area under the curve of ``hits / total`` over t = 0..150 (trapezoids), on a 0..100 scale."""
    fraction = np.asarray(hits, np.float64) / np.asarray(total, np.float64)[..., None]
    area = 0.5 * np.sum(fraction[..., 1:] + fraction[..., :-1], axis=-1)  # unit steps in t
    return 100.0 * area / AUC_MAX_THRESHOLD


def rebalanced_auc_weights(prior):
    """Rebalanced AuC's weight of each bin: proportional to ``1 / p`` (``p = prior.probs``, smoothed
    when the prior was; the rebalancing of lambda = 0), scaled so that the largest weight is 1.

    Policy for empty and near-empty bins: a bin the prior's data never hit (count 0) has weight 0,
    so that pixels whose ground truth falls there are left out, as Zhang et al. (2016) leave out the
    classes unseen in training; any bin that was hit has ``p`` bounded below by its own count (the
    smoothing keeps a bin's own mass), so its weight is finite. Computed in float64 on the host
    (the table is then scaled into (0, 1], where float32 holds it without overflow); the AuC is a
    ratio of weighted sums, so the scale does not change it. A prior traced under ``jit`` gets the
    same policy in float32.
    """
    counts, probs = prior.counts, prior.probs
    if isinstance(probs, jax.core.Tracer) or isinstance(counts, jax.core.Tracer):
        probs, counts = jnp.asarray(probs, jnp.float32), jnp.asarray(counts, jnp.float32)
        seen = (counts > 0) & (probs > 0)
        inverse = jnp.where(seen, jnp.min(jnp.where(seen, probs, jnp.inf)) / jnp.where(seen, probs, 1.0), 0.0)
        return inverse
    probs, counts = np.asarray(probs, np.float64), np.asarray(counts, np.float64)
    seen = (counts > 0) & (probs > 0)
    if not seen.any():
        raise ValueError("rebalanced AuC: the prior has no bin with a count")
    inverse = np.zeros_like(probs)
    inverse[seen] = 1.0 / probs[seen]
    return inverse / inverse.max()


def inverse_prior_weights(true_ab: jnp.ndarray, prior) -> jnp.ndarray:
    """Rebalanced AuC's pixel weights: :func:`rebalanced_auc_weights` at the ground truth's nearest
    bin (0 for a bin the prior never saw)."""
    return jnp.asarray(rebalanced_auc_weights(prior), jnp.float32)[nearest_bin(true_ab, prior.centres)]


def _auc_weight_table(prior):
    """``(weights [Q] float32, centres)`` for the jitted sums, or None without a prior."""
    if prior is None:
        return None
    return jnp.asarray(rebalanced_auc_weights(prior), jnp.float32), jnp.asarray(prior.centres, jnp.float32)


def _per_image_sums(pred_rgb, true_rgb, pred_ab, true_ab, table) -> dict:
    pred_rgb, true_rgb = jnp.asarray(pred_rgb, jnp.float32), jnp.asarray(true_rgb, jnp.float32)
    if pred_rgb.ndim != 4 or pred_rgb.shape != true_rgb.shape or pred_rgb.shape[-1] != 3:
        raise ValueError(f"need RGB batches [B, H, W, 3] of one shape, got {pred_rgb.shape} and {true_rgb.shape}")
    b, h, w, _ = pred_rgb.shape
    err = pred_rgb - true_rgb
    sq_err = jnp.sum(err * err, axis=(1, 2, 3))
    mse = sq_err / (h * w * 3)
    cf_pred, cf_true = colourfulness(pred_rgb), colourfulness(true_rgb)
    ssim = ssim_per_image(pred_rgb, true_rgb) if min(h, w) >= len(_ssim_taps()) else jnp.full(b, jnp.nan)
    sums = {
        "images": jnp.ones(b, jnp.float32),
        "pixels": jnp.full(b, h * w, jnp.float32),
        "sq_err": sq_err,
        "rmse": jnp.sqrt(mse),
        "psnr": -10.0 * jnp.log10(mse),  # data range 1; +inf for identical images, as scikit-image
        "ssim": ssim,
        "accurate": jnp.sum(accurate_pixels(pred_rgb, true_rgb), axis=(1, 2), dtype=jnp.float32),
        "auc_hits": auc_hits(pred_ab, true_ab),
        "cf_pred": cf_pred,
        "cf_true": cf_true,
        "abs_delta_cf": jnp.abs(cf_pred - cf_true),
    }
    if table is not None:
        bin_weights, centres = table
        weights = bin_weights[nearest_bin(true_ab, centres)]
        sums["auc_weighted_hits"] = auc_hits(pred_ab, true_ab, weights)
        sums["auc_weight"] = jnp.sum(weights, axis=(1, 2))
        sums["auc_weight_sq"] = jnp.sum(weights * weights, axis=(1, 2))
        sums["auc_left_out"] = jnp.sum(weights == 0, axis=(1, 2), dtype=jnp.float32)
    return sums


@jax.jit
def _per_image_sums_rgb(pred_rgb, true_rgb, table) -> dict:
    pred_ab, true_ab = color.rgb_to_lab(pred_rgb)[..., 1:], color.rgb_to_lab(true_rgb)[..., 1:]
    return _per_image_sums(pred_rgb, true_rgb, pred_ab, true_ab, table)


@jax.jit
def _per_image_sums_lab(pred_lab, true_lab, table) -> dict:
    pred_rgb, true_rgb = color.lab_to_rgb(pred_lab), color.lab_to_rgb(true_lab)
    sums = _per_image_sums(pred_rgb, true_rgb, pred_lab[..., 1:], true_lab[..., 1:], table)
    sums["out_of_gamut"] = jnp.sum(color.out_of_gamut(pred_lab), axis=(1, 2), dtype=jnp.float32)
    return sums


def per_image_sums(pred_rgb: jnp.ndarray, true_rgb: jnp.ndarray, *, prior=None) -> dict:
    """Each image's sums (leading axis B) from RGB in [0, 1], ``[B, H, W, 3]`` (jitted inside)."""
    return _per_image_sums_rgb(pred_rgb, true_rgb, _auc_weight_table(prior))


def per_image_sums_lab(pred_lab: jnp.ndarray, true_lab: jnp.ndarray, *, prior=None) -> dict:
    """Each image's sums from Lab ``[B, H, W, 3]``; the prediction may leave the sRGB gamut (jitted inside)."""
    return _per_image_sums_lab(pred_lab, true_lab, _auc_weight_table(prior))


def _sum_images(sums: dict) -> dict:
    return {key: jnp.sum(value, axis=0) for key, value in sums.items()}


def batch_metric_sums(pred_rgb: jnp.ndarray, true_rgb: jnp.ndarray, *, prior=None) -> dict:
    """The batch's metric sums from RGB in [0, 1]; add them over batches and pass to :func:`summarise`."""
    return _sum_images(per_image_sums(pred_rgb, true_rgb, prior=prior))


def batch_metric_sums_lab(pred_lab: jnp.ndarray, true_lab: jnp.ndarray, *, prior=None) -> dict:
    """The batch's metric sums from Lab (see :func:`per_image_sums_lab`)."""
    return _sum_images(per_image_sums_lab(pred_lab, true_lab, prior=prior))


def summarise(sums: dict) -> dict:
    """Metrics from sums of a dataset, a batch, or per image (arrays with a leading axis B).

    ``rmse`` / ``psnr`` are over all pixels of the set; ``*_per_image`` are means of per-image
    values; ``ssim`` is NaN for images smaller than the 11 x 11 window. ``delta_cf`` is DDColor's
    |mean CF of predictions - mean CF of ground truth| (in DDColor's Table 1, CF + delta-CF is the
    same 38.21 for every method); ``delta_cf_per_image`` is the mean of per-image |CF_pred - CF_true|.
    """
    s = {key: np.asarray(value, np.float64) for key, value in sums.items()}
    images, pixels = s["images"], s["pixels"]
    with np.errstate(divide="ignore"):
        out = {
            "num_images": images,
            "num_pixels": pixels,
            "rmse": np.sqrt(s["sq_err"] / (3 * pixels)),
            "psnr": 10.0 * np.log10(3 * pixels / s["sq_err"]),
            "rmse_per_image": s["rmse"] / images,
            "psnr_per_image": s["psnr"] / images,
            "ssim": s["ssim"] / images,
            "custom_accuracy": s["accurate"] / pixels,
            "auc_raw": auc_from_hits(s["auc_hits"], pixels),
            "colourfulness": s["cf_pred"] / images,
            "colourfulness_true": s["cf_true"] / images,
            "delta_cf": np.abs(s["cf_pred"] - s["cf_true"]) / images,
            "delta_cf_per_image": s["abs_delta_cf"] / images,
        }
    if "auc_weighted_hits" in s:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["auc_rebalanced"] = auc_from_hits(s["auc_weighted_hits"], s["auc_weight"])
            # Kish's effective sample size (sum w)^2 / sum w^2: how many equally weighted pixels the
            # rebalanced AuC is worth; a few rare-colour pixels with large weights make it small.
            out["auc_rebalanced_effective_pixels"] = s["auc_weight"] ** 2 / s["auc_weight_sq"]
        out["auc_rebalanced_left_out_pixels"] = s["auc_left_out"]
    if "out_of_gamut" in s:
        out["out_of_gamut_pixels"] = s["out_of_gamut"]
        out["out_of_gamut_fraction"] = s["out_of_gamut"] / pixels
    return out


class MetricAccumulator:
    """Adds batch sums (from any host or batch) in float64; :meth:`result` gives the dataset metrics.

    :meth:`update_images` takes per-image sums instead, adds them and keeps each image's metrics
    for :meth:`per_image`.
    """

    def __init__(self):
        self.totals: dict[str, np.ndarray] = {}
        self._images: list[dict] = []

    def update(self, sums: dict) -> None:
        for key, value in sums.items():
            self.totals[key] = self.totals.get(key, 0.0) + np.asarray(value, np.float64)

    def update_images(self, per_image: dict) -> None:
        per_image = {key: np.asarray(value, np.float64) for key, value in per_image.items()}
        self.update({key: value.sum(axis=0) for key, value in per_image.items()})
        self._images.append(per_image)

    def result(self) -> dict:
        if not self.totals:
            raise ValueError("MetricAccumulator.result: no batch was added")
        return {key: float(value) for key, value in summarise(self.totals).items()}

    def per_image(self) -> dict:
        """Each image's metrics, arrays ``[N]`` in the order added by :meth:`update_images`."""
        if not self._images:
            return {}
        return summarise({key: np.concatenate([b[key] for b in self._images]) for key in self._images[0]})
