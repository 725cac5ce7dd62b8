"""Simulated user hints for training the user-guided network (Zhang, Zhu et al. 2017, section 3.2).

For each image the number of hinted points is drawn from a geometric distribution, P(n) =
(1 - p)^n p for n = 0, 1, 2 ... (p = 1/8: zero hints for 1 image in 8, 7 on average, so the net
also learns to colorize without any); each point is placed uniformly at random or from a Gaussian
centred on the image (mean (H/2, W/2), standard deviation (H/4, W/4)), half the points each way;
its square patch has a side drawn uniformly from 1-9 px, and the hint is the patch's mean ab of the
ground truth. Everything runs on device inside the training step (static shapes: at most
``max_points`` points, of which the first n are used).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

# Zhang, Zhu et al. 2017: geometric number of points with p = 1/8, patch sides 1 to 9 px.
GEOMETRIC_P = 1.0 / 8.0
PATCH_MIN, PATCH_MAX = 1, 9
GAUSSIAN_SPREAD = 0.25  # standard deviation of the centred positions, as a fraction of H and W
MAX_POINTS = 64  # (7/8)^64 = 0.02 %: the geometric draws this truncates
PLACEMENTS = ("mixed", "uniform", "gaussian")


@dataclasses.dataclass(frozen=True)
class HintSampling:
    """How training hints are drawn (see the module docstring)."""

    p: float = GEOMETRIC_P
    max_points: int = MAX_POINTS
    placement: str = "mixed"  # mixed (half uniform, half Gaussian) | uniform | gaussian
    patch_min: int = PATCH_MIN
    patch_max: int = PATCH_MAX

    def __post_init__(self):
        if not 0 < self.p <= 1:
            raise ValueError(f"hints.p must be in (0, 1], got {self.p}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"hints.placement must be one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        if not 1 <= self.patch_min <= self.patch_max:
            raise ValueError(f"hints patch sides must satisfy 1 <= min <= max, got {self.patch_min}, {self.patch_max}")
        if self.max_points < 1:
            raise ValueError(f"hints.max_points must be >= 1, got {self.max_points}")


def geometric_counts(key: jax.Array, batch: int, p: float, max_points: int) -> jax.Array:
    """Numbers of points [B] from P(n) = (1 - p)^n p, n >= 0, capped at ``max_points``."""
    u = jax.random.uniform(key, (batch,), minval=1e-12, maxval=1.0)
    if p >= 1:
        return jnp.zeros((batch,), jnp.int32)
    n = jnp.floor(jnp.log(u) / jnp.log1p(-p)).astype(jnp.int32)  # inverse CDF of the geometric law
    return jnp.minimum(n, max_points)


def patch_means(ab: jax.Array, top: jax.Array, left: jax.Array, side: jax.Array) -> jax.Array:
    """Mean ab [B, K, 2] of the patches [top, top + side) x [left, left + side) of ab [B, H, W, 2]
    (clipped to the image), from a summed-area table."""
    B, H, W, _ = ab.shape
    table = jnp.pad(jnp.cumsum(jnp.cumsum(ab, axis=1), axis=2), ((0, 0), (1, 0), (1, 0), (0, 0)))
    y0, x0 = jnp.clip(top, 0, H), jnp.clip(left, 0, W)
    y1, x1 = jnp.clip(top + side, 0, H), jnp.clip(left + side, 0, W)
    rows = jnp.arange(B)[:, None]
    total = table[rows, y1, x1] - table[rows, y0, x1] - table[rows, y1, x0] + table[rows, y0, x0]
    area = jnp.maximum((y1 - y0) * (x1 - x0), 1)[..., None]
    return total / area


def sample_positions(key: jax.Array, shape: tuple[int, int], hw: tuple[int, int], placement: str):
    """Patch centres (rows, cols) [B, K]: uniform, Gaussian around the centre, or half each."""
    H, W = hw
    k_uniform, k_gauss, k_choice = jax.random.split(key, 3)
    uniform = jax.random.uniform(k_uniform, (*shape, 2)) * jnp.array([H, W])
    gauss = (0.5 + GAUSSIAN_SPREAD * jax.random.normal(k_gauss, (*shape, 2))) * jnp.array([H, W])
    if placement == "uniform":
        chosen = uniform
    elif placement == "gaussian":
        chosen = gauss
    else:
        chosen = jnp.where(jax.random.bernoulli(k_choice, 0.5, (*shape, 1)), uniform, gauss)
    rc = jnp.clip(jnp.floor(chosen), 0, jnp.array([H - 1, W - 1])).astype(jnp.int32)
    return rc[..., 0], rc[..., 1]


def draw_hints(key: jax.Array, ab: jax.Array, counts: jax.Array, sampling: HintSampling, side=None) -> jax.Array:
    """Hints [B, H, W, 3] = (patch mean ab, mask) of the first ``counts[b]`` of ``max_points``
    random patches of each image's true ab [B, H, W, 2]; later patches overwrite earlier ones.
    ``side`` fixes the patch side (else drawn from ``sampling``'s range)."""
    return draw_hint_points(key, ab, counts, sampling, side)[0]


def draw_hint_points(key: jax.Array, ab: jax.Array, counts: jax.Array, sampling: HintSampling, side=None):
    """``(hints, rows, cols, active)``: :func:`draw_hints`'s map and its patches' centre pixels
    (rows, cols) [B, K] with ``active`` [B, K] marking the first ``counts[b]`` of them."""
    B, H, W, _ = ab.shape
    K = sampling.max_points
    k_pos, k_side = jax.random.split(key)
    rows, cols = sample_positions(k_pos, (B, K), (H, W), sampling.placement)
    if side is None:
        side = jax.random.randint(k_side, (B, K), sampling.patch_min, sampling.patch_max + 1)
    else:
        side = jnp.full((B, K), side, jnp.int32)
    top, left = rows - side // 2, cols - side // 2
    means = patch_means(ab, top, left, side)
    active = jnp.arange(K)[None, :] < counts[:, None]  # [B, K]
    ys, xs = jnp.arange(H)[None, :, None], jnp.arange(W)[None, None, :]

    def paint(hints, k):
        inside = ((ys >= top[:, k, None, None]) & (ys < (top + side)[:, k, None, None])
                  & (xs >= left[:, k, None, None]) & (xs < (left + side)[:, k, None, None]))
        inside = (inside & active[:, k, None, None])[..., None]
        value = jnp.concatenate([means[:, k], jnp.ones((B, 1), ab.dtype)], axis=-1)[:, None, None, :]
        return jnp.where(inside, value, hints), None

    hints, _ = jax.lax.scan(paint, jnp.zeros((B, H, W, 3), ab.dtype), jnp.arange(K))
    return hints, rows, cols, active


def simulate_hints(key: jax.Array, ab: jax.Array, sampling: HintSampling) -> jax.Array:
    """Training hints [B, H, W, 3] for true ab [B, H, W, 2]: geometric counts, random patches."""
    k_count, k_draw = jax.random.split(key)
    counts = geometric_counts(k_count, ab.shape[0], sampling.p, sampling.max_points)
    return draw_hints(k_draw, ab, counts, sampling)


def batch_key(seed: int, rgb_uint8: jax.Array) -> jax.Array:
    """A PRNG key for one batch's hints: the run's seed folded with a checksum of the batch's
    pixels, so each batch (crop, flip) gets its own hints and a rerun draws the same ones."""
    flat = rgb_uint8.reshape(-1).astype(jnp.uint32)
    position = jnp.arange(flat.size, dtype=jnp.uint32) % jnp.uint32(65521) + jnp.uint32(1)
    checksum = jnp.sum(flat * position, dtype=jnp.uint32)  # wraps mod 2^32; sensitive to order
    return jax.random.fold_in(jax.random.key(seed), checksum)
