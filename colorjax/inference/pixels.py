"""Full-resolution pixel work of the inference path: sRGB -> L, and L + ab -> uint8 sRGB with the
chroma of out-of-gamut colours reduced (hue and L kept) rather than their channels clipped.

Everything runs in fixed-size chunks of flattened pixels, so one compiled program serves images of
every size (jit per image shape would recompile for each new size).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import color

# Bisection steps of the chroma reduction: 2^-10 of the predicted chroma is well below 8-bit rounding.
GAMUT_BISECTION_STEPS = 10


def fit_chroma_to_gamut(lab: jnp.ndarray, steps: int = GAMUT_BISECTION_STEPS) -> jnp.ndarray:
    """Scale each out-of-gamut pixel's ab towards 0 until it is (just) inside sRGB; L and hue kept.

    Bisection on the scale s in [0, 1]: (L, 0, 0) is in gamut for every L in [0, 100]. Each step
    tests linear RGB against the limits that :func:`colorjax.color.out_of_gamut` puts on encoded
    sRGB: the transfer curve is increasing, so the test is the same without its power function.
    """
    L, ab = lab[..., :1], lab[..., 1:]
    inside = lambda s: _inside_gamut(jnp.concatenate([L, ab * s[..., None]], axis=-1))  # noqa: E731
    lo = jnp.where(inside(jnp.ones(lab.shape[:-1])), 1.0, 0.0)
    hi = jnp.ones(lab.shape[:-1])
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = inside(mid)
        lo, hi = jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
    return jnp.concatenate([L, ab * lo[..., None]], axis=-1)


# color.out_of_gamut's bounds on sRGB-encoded values, moved through the monotonic sRGB curve to
# linear RGB: the same test without a power function per channel and bisection step.
_LINEAR_LOW = -color.GAMUT_TOLERANCE / 12.92
_LINEAR_HIGH = ((1.0 + color.GAMUT_TOLERANCE + 0.055) / 1.055) ** 2.4


def _inside_gamut(lab: jnp.ndarray) -> jnp.ndarray:
    """``~color.out_of_gamut(lab)``, decided in linear RGB."""
    linear = color.lab_to_linear_rgb(lab)
    return jnp.all((linear >= _LINEAR_LOW) & (linear <= _LINEAR_HIGH), axis=-1)


# Full-resolution pixel work runs in fixed-size chunks of flattened pixels: one compiled shape serves
# images of every size (jit per image shape would recompile for each new size).
PIXEL_CHUNK = 1 << 16  # a 500 x 375 photo: 3 chunks, 5 % padding
# The chroma bisection runs only on the pixels whose predicted colour is outside the gamut, gathered
# into chunks of this many (usually a small share of a photo: a large chunk would be mostly padding).
GAMUT_CHUNK = 1 << 14


def _map_chunks(fn, flat: Sequence[np.ndarray], chunk: int) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` to rows [N, C_i] of ``flat`` in chunks of ``chunk`` (the last one zero-padded);
    returns each of its outputs [N, ...] concatenated over the chunks."""
    n = flat[0].shape[0]
    padded = -(-n // chunk) * chunk
    flat = [np.pad(a, ((0, padded - n), (0, 0))) for a in flat]
    parts = []
    for i in range(0, padded, chunk):
        out = fn(*(a[i : i + chunk] for a in flat))
        parts.append(tuple(np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(np.concatenate(outs)[:n] for outs in zip(*parts))


def map_pixels(fn, *arrays: np.ndarray) -> np.ndarray:
    """Apply the jitted per-pixel ``fn`` to arrays [H, W, C_i] chunk by chunk; returns [H, W, C_out]."""
    H, W = arrays[0].shape[:2]
    (out,) = _map_chunks(fn, [np.asarray(a).reshape(H * W, -1) for a in arrays], PIXEL_CHUNK)
    return out.reshape(H, W, -1)


@jax.jit
def _lightness_pixels(rgb_uint8):
    return color.rgb_uint8_to_lab(rgb_uint8)[..., :1]


def _lab_pixels_to_uint8(L, ab):
    """uint8 sRGB of Lab pixels, the chroma of those outside the gamut reduced first."""
    rgb = color.lab_to_rgb(fit_chroma_to_gamut(jnp.concatenate([L, ab], axis=-1)))
    return jnp.round(rgb * 255.0).astype(jnp.uint8)


def _lab_pixels_to_uint8_if_inside(L, ab):
    """``(uint8 sRGB, inside)``: the conversion of :func:`_lab_pixels_to_uint8` for the pixels
    inside the gamut (where the bisection keeps the scale at exactly 1), and which pixels those are."""
    lab = jnp.concatenate([L, ab], axis=-1)
    return jnp.round(color.lab_to_rgb(lab) * 255.0).astype(jnp.uint8), _inside_gamut(lab)


_PROGRAMS_LOCK = threading.Lock()
_PIXEL_PROGRAMS: list = []  # (convert, fit) once compiled


def _compiled_pixel_programs():
    """Both full-resolution programs, compiled together on first use: which photos come first
    (some with colours outside the gamut, some without) never changes what a later run compiles."""
    f32 = lambda n, c: jax.ShapeDtypeStruct((n, c), jnp.float32)  # noqa: E731
    with _PROGRAMS_LOCK:  # writer threads: the first one compiles, the others wait for it
        if not _PIXEL_PROGRAMS:
            _PIXEL_PROGRAMS.extend([
                jax.jit(_lab_pixels_to_uint8_if_inside).lower(f32(PIXEL_CHUNK, 1), f32(PIXEL_CHUNK, 2)).compile(),
                jax.jit(_lab_pixels_to_uint8).lower(f32(GAMUT_CHUNK, 1), f32(GAMUT_CHUNK, 2)).compile(),
            ])
    return _PIXEL_PROGRAMS


def lab_to_uint8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution L [H, W, 1] and ab [H, W, 2] -> uint8 sRGB [H, W, 3], out-of-gamut chroma
    reduced by :func:`fit_chroma_to_gamut`; the bisection runs on the out-of-gamut pixels only."""
    H, W = L.shape[:2]
    convert, fit = _compiled_pixel_programs()
    L = np.asarray(L, np.float32).reshape(H * W, 1)
    ab = np.asarray(ab, np.float32).reshape(H * W, 2)
    rgb, inside = _map_chunks(convert, [L, ab], PIXEL_CHUNK)
    outside = np.flatnonzero(~inside)
    if outside.size:
        (rgb[outside],) = _map_chunks(fit, [L[outside], ab[outside]], GAMUT_CHUNK)
    return rgb.reshape(H, W, 3)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
    """L [H, W, 1] of a uint8 RGB image (gray images are stored with R = G = B)."""
    return map_pixels(_lightness_pixels, rgb_uint8)
