"""The colour prior over the Q ab bins and Zhang's class-rebalancing weights.

Zhang et al. 2016, section 3.2 (docs/reference.md section 2): p is the empirical distribution of the
ground-truth ab values over the bins (each pixel counted at its nearest centre), smoothed with a
Gaussian of sigma 5 in ab; the weights are ``w ~ ((1 - lambda) p + lambda / Q)^-1`` with lambda =
0.5, normalised so that ``sum_q p_q w_q = 1``. The patch-network RReLU study (docs/reference.md
section 5) skips the smoothing: ``smoothing_sigma=None``.

Smoothing acts over the bin centres themselves, so it works for any bin set (Zhang's 313 or a
data-driven grid): ``p_smooth ~ K p`` with ``K_qj = exp(-|c_q - c_j|^2 / (2 sigma^2))``,
renormalised to sum 1.

Counting is streaming: :func:`bin_counts` is jittable and gives per-batch counts that merge across
batches and hosts by addition (accumulate them in float64 on the host).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.bins import is_colourful, nearest_bin

# Zhang et al. 2016, section 3.2: Gaussian smoothing of the prior in ab (sigma 5) and the mixing
# weight of the uniform distribution (lambda = 0.5).
PRIOR_SMOOTHING_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
_FORMAT_VERSION = 1
# The context-free "lightness" baseline keys its mean ab on the integer L of CIE Lab, 0 to 100.
LIGHTNESS_LEVELS = 101


def bin_counts(ab: jnp.ndarray, centres, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """How many ab values fall nearest to each centre, float32 ``[Q]``; jittable.

    ``mask`` (broadcastable to ``ab[..., 0]``, bool or float) weights each value: pass a per-image
    mask with trailing singleton axes (``[B, 1, 1]``) to skip gray images.
    """
    index = nearest_bin(ab, centres)
    weights = jnp.ones(index.shape, jnp.float32) if mask is None else jnp.broadcast_to(mask, index.shape)
    return jnp.bincount(index.ravel(), weights.astype(jnp.float32).ravel(), length=len(centres))


def lightness_ab_sums(L: jnp.ndarray, ab: jnp.ndarray, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """Per integer lightness ``round(L)`` in 0..100: the sums of a and b and the pixel count,
    float32 ``[101, 3]``; jittable, and merges across batches and hosts by addition.

    ``L`` is ``[...]`` or ``[..., 1]`` in [0, 100], ``ab`` ``[..., 2]``; ``mask`` weights pixels as in
    :func:`bin_counts`.
    """
    L = L[..., 0] if L.ndim == ab.ndim else L
    level = jnp.clip(jnp.round(L), 0, LIGHTNESS_LEVELS - 1).astype(jnp.int32).ravel()
    weights = jnp.ones(level.shape, jnp.float32) if mask is None else jnp.broadcast_to(mask, L.shape).astype(jnp.float32).ravel()
    values = jnp.concatenate([ab.reshape(-1, 2).astype(jnp.float32), jnp.ones((level.shape[0], 1), jnp.float32)], axis=-1)
    return jax.ops.segment_sum(values * weights[:, None], level, num_segments=LIGHTNESS_LEVELS)


def mean_ab_by_lightness(sums) -> np.ndarray:
    """The mean ab of each integer L from :func:`lightness_ab_sums` totals, float32 ``[101, 2]``.

    Levels no pixel had are filled by linear interpolation between the nearest levels that had some
    (constant beyond the first and last); with no pixel at all the table is 0 (gray).
    """
    sums = np.asarray(sums, np.float64)
    seen = sums[:, 2] > 0
    if not seen.any():
        return np.zeros((LIGHTNESS_LEVELS, 2), np.float32)
    levels = np.arange(LIGHTNESS_LEVELS)
    means = sums[seen, :2] / sums[seen, 2:]
    return np.stack([np.interp(levels, levels[seen], means[:, c]) for c in range(2)], axis=-1).astype(np.float32)


def count_bins_over(ab_batches: Iterable, centres, *, skip_gray: bool = True) -> tuple[np.ndarray, int]:
    """Streams :func:`bin_counts` over batches of ab ``[B, H, W, 2]``; returns (float64 counts, images).

    With ``skip_gray`` images failing :func:`colorjax.bins.is_colourful` are neither counted nor
    included in the image total.
    """
    centres = jnp.asarray(centres, jnp.float32)

    @jax.jit
    def step(ab):
        keep = is_colourful(ab) if skip_gray else jnp.ones(ab.shape[0], bool)
        return bin_counts(ab, centres, keep[:, None, None]), jnp.sum(keep)

    total, images = np.zeros(len(centres)), 0
    for ab in ab_batches:
        counts, kept = step(jnp.asarray(ab, jnp.float32))
        total += np.asarray(counts, np.float64)
        images += int(kept)
    return total, images


def smooth_distribution(probs, centres, sigma: float) -> np.ndarray:
    """``probs`` blurred by a Gaussian of ``sigma`` over the centres in ab, renormalised to sum 1."""
    probs, centres = np.asarray(probs, np.float64), np.asarray(centres, np.float64)
    d2 = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    smoothed = np.exp(-d2 / (2.0 * sigma**2)) @ probs
    return smoothed / smoothed.sum()


def rebalancing_weights(probs, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """``w ~ ((1 - lam) p + lam / Q)^-1`` normalised so that ``sum p w = 1``.

    With ``lam = 0`` (the inverse prior, as rebalanced AuC uses) bins of zero probability get
    weight 0 instead of infinity.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must lie in [0, 1], got {lam}")
    probs = np.asarray(probs, np.float64)
    mixed = (1.0 - lam) * probs + lam / len(probs)
    weights = np.divide(1.0, mixed, out=np.zeros_like(mixed), where=mixed > 0)
    return weights / np.sum(probs * weights)


@dataclasses.dataclass(frozen=True, eq=False)
class ColourPrior:
    """Bin centres with their ground-truth counts, the (smoothed) distribution and the weights."""

    centres: np.ndarray  # float32 [Q, 2]
    counts: np.ndarray  # float64 [Q], nearest-bin pixel counts
    probs: np.ndarray  # float64 [Q], smoothed (unless smoothing_sigma is None), sums to 1
    weights: np.ndarray  # float64 [Q], rebalancing weights, sum(probs * weights) = 1
    smoothing_sigma: float | None = PRIOR_SMOOTHING_SIGMA
    lam: float = REBALANCE_LAMBDA
    num_images: int | None = None
    # float64 [101, 3] from lightness_ab_sums over the same pixels as the counts (the lightness
    # baseline's table); None for priors counted before it existed or loaded without it.
    lightness_sums: np.ndarray | None = None

    @classmethod
    def from_counts(
        cls,
        counts,
        centres,
        smoothing_sigma: float | None = PRIOR_SMOOTHING_SIGMA,
        lam: float = REBALANCE_LAMBDA,
        num_images: int | None = None,
        lightness_sums=None,
    ) -> ColourPrior:
        """The prior of nearest-bin ``counts`` over ``centres`` (``smoothing_sigma`` None or 0: no smoothing);
        ``lightness_sums`` [101, 3] (optional) are kept for the lightness baseline."""
        counts = np.asarray(counts, np.float64)
        centres = np.asarray(centres, np.float32)
        if centres.ndim != 2 or centres.shape[1] != 2 or counts.shape != (len(centres),):
            raise ValueError(f"need counts [Q] and centres [Q, 2], got {counts.shape} and {centres.shape}")
        if np.any(counts < 0) or not np.isfinite(counts).all() or counts.sum() <= 0:
            raise ValueError("counts must be finite, non-negative and not all zero")
        sigma = float(smoothing_sigma) if smoothing_sigma else None
        if sigma is not None and sigma < 0:
            raise ValueError(f"smoothing_sigma must be >= 0 or None, got {smoothing_sigma}")
        probs = counts / counts.sum()
        if sigma is not None:
            probs = smooth_distribution(probs, centres, sigma)
        weights = rebalancing_weights(probs, lam)
        if lightness_sums is not None:
            lightness_sums = np.asarray(lightness_sums, np.float64)
            if lightness_sums.shape != (LIGHTNESS_LEVELS, 3) or not np.isfinite(lightness_sums).all():
                raise ValueError(f"lightness sums must be finite with shape ({LIGHTNESS_LEVELS}, 3), got {lightness_sums.shape}")
        return cls(centres, counts, probs, weights, sigma, float(lam), num_images, lightness_sums)

    @classmethod
    def uniform(cls, centres) -> ColourPrior:
        """The flat prior (one pseudo-count per bin): every weight is 1, i.e. no rebalancing."""
        return cls.from_counts(np.ones(len(centres)), centres, smoothing_sigma=None)

    @property
    def mean_ab_by_lightness(self) -> np.ndarray:
        """The lightness baseline's table, float32 [101, 2]: mean ab of the counted pixels per integer L."""
        if self.lightness_sums is None:
            raise ValueError("this colour prior was counted without lightness sums (count it again to get the lightness baseline)")
        return mean_ab_by_lightness(self.lightness_sums)

    @property
    def num_pixels(self) -> float:
        return float(self.counts.sum())

    def metadata(self) -> dict:
        return {
            "format_version": _FORMAT_VERSION,
            "num_bins": len(self.centres),
            "smoothing_sigma": self.smoothing_sigma,
            "lam": self.lam,
            "num_pixels": self.num_pixels,
            "num_images": self.num_images,
        }

    def save(self, path: str | os.PathLike) -> None:
        """One ``.npz``: centres, counts, probs, weights, and the settings as a JSON string."""
        np.savez(
            path,
            centres=self.centres,
            counts=self.counts,
            probs=self.probs,
            weights=self.weights,
            metadata=np.array(json.dumps(self.metadata())),
            **({} if self.lightness_sums is None else {"lightness_sums": self.lightness_sums}),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> ColourPrior:
        """Reads :meth:`save`'s file, recomputes the prior from its counts and checks the two agree."""
        if os.path.isfile(path) and not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: not a colour prior file (not an .npz archive, as ColourPrior.save writes)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in ("centres", "counts", "weights", "metadata")}
                lightness_sums = data["lightness_sums"] if "lightness_sums" in data.files else None
            meta = json.loads(str(arrays["metadata"]))
        except (OSError, KeyError, ValueError) as error:
            reason = "it holds pickled objects, which a colour prior never does" if "pickle" in str(error) else error
            raise ValueError(f"{path}: not a colour prior file ({reason})") from None
        if meta.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unknown colour prior format {meta.get('format_version')}")
        prior = cls.from_counts(
            arrays["counts"], arrays["centres"], meta["smoothing_sigma"], meta["lam"], meta["num_images"], lightness_sums
        )
        if not np.allclose(prior.weights, arrays["weights"], rtol=1e-6):
            raise ValueError(f"{path}: stored weights disagree with those recomputed from its counts")
        return prior


jax.tree_util.register_dataclass(
    ColourPrior,
    data_fields=["centres", "counts", "probs", "weights", "lightness_sums"],
    meta_fields=["smoothing_sigma", "lam", "num_images"],
)
