"""The quantised ab output space: bin centres, nearest bins, soft-encoding, the non-gray test.

Two bin sets: Zhang et al.'s 313 in-gamut centres on a grid of 10 (shipped as data, in the order the
official weights expect; Zhang et al. 2016, docs/reference.md section 2), and the data-driven set of
the patch-network RReLU study (docs/reference.md section 5): the cells of a grid of 10 or 5 over ab
in [-110, 110] that occur in a dataset, counted batch by batch with :func:`grid_cell_counts` and
selected with :func:`grid_bins`. Grid cells are centred on multiples of the grid step, as Zhang's
centres are.

Every function on ab values is a pure jnp function, jittable, over any leading dimensions. Distances
to the Q centres are formed per pixel as ``[..., Q]`` and reduced at once (argmin or top-k), which
XLA fuses, so nothing larger than the ``[..., Q]`` result itself is materialised.
"""

from __future__ import annotations

import functools
import importlib.resources

import jax
import jax.numpy as jnp
import numpy as np

# Zhang et al. 2016: 313 ab centres, grid 10 (richzhang/colorization pts_in_hull.npy).
ZHANG_BINS_FILE = "zhang16_pts_in_hull.npy"
ZHANG_GRID = 10
# Soft-encoding (Zhang et al. 2016, section 3.1): k nearest centres, Gaussian of sigma 5. The paper
# uses k = 5; the released training code uses k = 10 (docs/reference.md section 2).
SOFT_ENCODE_K = 5
SOFT_ENCODE_K_RELEASED = 10
SOFT_ENCODE_SIGMA = 5.0
# The patch-network RReLU study (docs/reference.md section 5): the ab plane is taken as [-110, 110]
# on each axis, divided into cells of 10 or 5.
AB_GRID_LIMIT = 110
# Zhang's training code (NonGrayMaskLayer): an image is colourful when some |a| or |b| exceeds 5.
GRAY_THRESHOLD = 5.0


@functools.cache
def _zhang_bins() -> np.ndarray:
    path = importlib.resources.files("colorjax") / "assets" / ZHANG_BINS_FILE
    with path.open("rb") as f:
        centres = np.load(f)
    if centres.shape != (313, 2):
        raise ValueError(f"{path}: expected 313 x 2 ab centres, found shape {centres.shape}")
    return centres.astype(np.float32)


def zhang_bins() -> np.ndarray:
    """Zhang et al.'s 313 ab bin centres, float32 ``[313, 2]``, sorted by a then b."""
    return _zhang_bins().copy()


def _grid_size(grid: int) -> int:
    if grid <= 0 or AB_GRID_LIMIT % grid:
        raise ValueError(f"grid step must divide {AB_GRID_LIMIT} (e.g. 10 or 5), got {grid}")
    return 2 * AB_GRID_LIMIT // grid + 1


def grid_cell_counts(ab: jnp.ndarray, grid: int = 10, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """Pixel counts per grid cell, float32 ``[n, n]`` indexed by (a cell, b cell), n = 220 / grid + 1.

    Cell ``(i, j)`` is centred on ``(g * i - 110, g * j - 110)``; values beyond +-110 go to the edge
    cells. ``mask`` (broadcastable to ``ab[..., 0]``) selects the pixels counted. Counts of several
    batches or hosts merge by addition; sum them in float64 over a whole dataset.
    """
    n = _grid_size(grid)
    ab = jnp.asarray(ab, jnp.float32)
    cells = jnp.clip(jnp.round(ab / grid).astype(jnp.int32) + AB_GRID_LIMIT // grid, 0, n - 1)
    flat = cells[..., 0] * n + cells[..., 1]
    weights = jnp.ones(flat.shape, jnp.float32) if mask is None else jnp.broadcast_to(mask, flat.shape)
    counts = jnp.bincount(flat.ravel(), weights.astype(jnp.float32).ravel(), length=n * n)
    return counts.reshape(n, n)


def grid_bins(cell_counts, grid: int = 10, min_count: float = 1) -> np.ndarray:
    """Centres of the grid cells with at least ``min_count`` pixels, float32 ``[Q, 2]``, by a then b."""
    n = _grid_size(grid)
    cell_counts = np.asarray(cell_counts)
    if cell_counts.shape != (n, n):
        raise ValueError(f"grid {grid} needs cell counts of shape {(n, n)}, got {cell_counts.shape}")
    i, j = np.nonzero(cell_counts >= min_count)
    centres = np.stack([i, j], axis=-1) * grid - AB_GRID_LIMIT
    if len(centres) == 0:
        raise ValueError(f"no grid cell has {min_count} or more pixels: no bins")
    return centres.astype(np.float32)


def squared_distances(ab: jnp.ndarray, centres) -> jnp.ndarray:
    """Squared ab distance from each value to each centre, float32 ``[..., Q]``."""
    ab = jnp.asarray(ab, jnp.float32)
    centres = jnp.asarray(centres, jnp.float32)
    # Written per component, not as a matmul, so that no backend lowers it to reduced precision.
    da = ab[..., 0:1] - centres[:, 0]
    db = ab[..., 1:2] - centres[:, 1]
    return da * da + db * db


def nearest_bin(ab: jnp.ndarray, centres) -> jnp.ndarray:
    """Index of the nearest centre of each ab value, int32 ``[...]`` (ties: the lowest index)."""
    return jnp.argmin(squared_distances(ab, centres), axis=-1).astype(jnp.int32)


def soft_encode(ab: jnp.ndarray, centres, k: int = SOFT_ENCODE_K, sigma: float = SOFT_ENCODE_SIGMA) -> jnp.ndarray:
    """Zhang's soft-encoding: a distribution over the Q centres per ab value, float32 ``[..., Q]``.

    The ``k`` nearest centres get weights ``exp(-d^2 / (2 sigma^2))``, normalised to sum 1; all
    other centres get 0. Ties at the k-th distance go to the lowest centre index (``lax.top_k``).
    Pass ``k=SOFT_ENCODE_K_RELEASED`` (10) for the released training code's encoding.
    """
    d2 = squared_distances(ab, centres)
    q = d2.shape[-1]
    if not 1 <= k <= q:
        raise ValueError(f"k must be in [1, {q}] for {q} centres, got {k}")
    neg_d2, index = jax.lax.top_k(-d2, k)
    # Shifted by the nearest distance so that values far from every centre cannot underflow to 0/0.
    # (A max over the k values, not a slice of them: slicing top_k's output makes XLA:CPU ~20x slower.)
    weights = jnp.exp((neg_d2 - jnp.max(neg_d2, axis=-1, keepdims=True)) / (2.0 * sigma**2))
    weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
    rows = jnp.arange(index.size // k)[:, None]
    encoded = jnp.zeros((index.size // k, q), jnp.float32)
    encoded = encoded.at[rows, index.reshape(-1, k)].set(weights.reshape(-1, k), unique_indices=True)
    return encoded.reshape(d2.shape)

def is_colourful(ab: jnp.ndarray, threshold: float = GRAY_THRESHOLD, rule: str = "channel") -> jnp.ndarray:
    """Zhang's non-gray test of images ``ab[..., H, W, 2]`` -> bool ``[...]``.

    ``rule="channel"`` (default, Zhang's training code): some pixel has ``|a| > threshold`` or
    ``|b| > threshold``. ``rule="chroma"``: some pixel has ``sqrt(a^2 + b^2) > threshold``.
    """
    ab = jnp.asarray(ab, jnp.float32)
    match rule:
        case "channel":
            strong = jnp.max(jnp.abs(ab), axis=-1) > threshold
        case "chroma":
            strong = jnp.sum(ab * ab, axis=-1) > threshold**2
        case _:
            raise ValueError(f"rule must be 'channel' or 'chroma', got {rule!r}")
    return jnp.any(strong, axis=(-2, -1))
