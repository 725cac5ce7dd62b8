"""sRGB <-> CIE L*a*b* (D65 white, 2 degree observer) in jax.numpy.

The formulas, thresholds and matrices are those of ``skimage.color.rgb2lab`` / ``lab2rgb``
(docs/reference.md section 1), which the tests use as the reference.  Every function is elementwise over
the last axis (3 channels), so any leading batch dimensions work, and jit- and grad-safe: branches
are written with ``jnp.where`` on clamped arguments so that neither side produces an infinite
gradient at the thresholds.  The 3 x 3 products are written out as sums so that no backend lowers
them to reduced-precision matrix units (TF32 / bf16 on GPU and TPU).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# Linear sRGB -> XYZ, IEC 61966-2-1 primaries (the matrix scikit-image uses).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
# CIE D65 reference white for the 2 degree observer, as in scikit-image.
D65_WHITE = np.array([0.95047, 1.0, 1.08883])

# sRGB transfer curve (IEC 61966-2-1).
_SRGB_LINEAR_THRESHOLD = 0.04045  # on the encoded value
_SRGB_ENCODED_THRESHOLD = 0.0031308  # on the linear value
# CIE Lab companding: the cube root above (6/29)^3, the linear segment below (scikit-image's values).
_LAB_EPSILON = 0.008856
_LAB_KAPPA = 7.787
_LAB_F_THRESHOLD = 0.2068966  # = 6 / 29, the inverse-companding threshold
# How far outside [0, 1] an sRGB channel may fall before the colour counts as out of gamut: the
# reference white L = 100, a = b = 0 itself decodes to 1.0000357 with these matrices.
GAMUT_TOLERANCE = 1e-4

# Lightness range and the ab scale factor both papers use to normalise the network's output
# (Zhang et al. 2016 and Isola et al. 2017; docs/reference.md sections 1-3).
L_MAX = 100.0
AB_SCALE = 110.0


def _matmul3(x: jnp.ndarray, matrix: np.ndarray) -> jnp.ndarray:
    """``x @ matrix.T`` over the last axis, in full float32 precision on every backend."""
    c0, c1, c2 = x[..., 0], x[..., 1], x[..., 2]
    rows = [matrix[i, 0] * c0 + matrix[i, 1] * c1 + matrix[i, 2] * c2 for i in range(3)]
    return jnp.stack(rows, axis=-1)


def _srgb_to_linear(rgb: jnp.ndarray) -> jnp.ndarray:
    curve = ((jnp.maximum(rgb, _SRGB_LINEAR_THRESHOLD) + 0.055) / 1.055) ** 2.4
    return jnp.where(rgb > _SRGB_LINEAR_THRESHOLD, curve, rgb / 12.92)


def _linear_to_srgb(linear: jnp.ndarray) -> jnp.ndarray:
    curve = 1.055 * jnp.maximum(linear, _SRGB_ENCODED_THRESHOLD) ** (1 / 2.4) - 0.055
    return jnp.where(linear > _SRGB_ENCODED_THRESHOLD, curve, linear * 12.92)


def rgb_to_lab(rgb: jnp.ndarray) -> jnp.ndarray:
    """sRGB in [0, 1], shape ``[..., 3]`` -> Lab (L in [0, 100]), float32."""
    rgb = jnp.asarray(rgb, jnp.float32)
    xyz = _matmul3(_srgb_to_linear(rgb), XYZ_FROM_RGB) / D65_WHITE.astype(np.float32)
    cube_root = jnp.cbrt(jnp.maximum(xyz, _LAB_EPSILON))
    f = jnp.where(xyz > _LAB_EPSILON, cube_root, _LAB_KAPPA * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_linear_rgb(lab: jnp.ndarray) -> jnp.ndarray:
    """Lab -> linear sRGB, not clipped (values outside [0, 1] are out of the sRGB gamut)."""
    lab = jnp.asarray(lab, jnp.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = jnp.maximum(fy - lab[..., 2] / 200.0, 0.0)  # scikit-image clamps negative z to 0
    f = jnp.stack([fx, fy, fz], axis=-1)
    cubed = jnp.maximum(f, _LAB_F_THRESHOLD) ** 3
    xyz = jnp.where(f > _LAB_F_THRESHOLD, cubed, (f - 16.0 / 116.0) / _LAB_KAPPA)
    return _matmul3(xyz * D65_WHITE.astype(np.float32), RGB_FROM_XYZ)


def lab_to_rgb_unclipped(lab: jnp.ndarray) -> jnp.ndarray:
    """Lab -> sRGB-encoded values before clipping (may leave [0, 1] for out-of-gamut colours)."""
    return _linear_to_srgb(lab_to_linear_rgb(lab))


def out_of_gamut(lab: jnp.ndarray, tolerance: float = GAMUT_TOLERANCE) -> jnp.ndarray:
    """Boolean ``[...]``: True where the Lab colour has an sRGB channel outside [0, 1]."""
    rgb = lab_to_rgb_unclipped(lab)
    return jnp.any((rgb < -tolerance) | (rgb > 1.0 + tolerance), axis=-1)


def lab_to_rgb(lab: jnp.ndarray, return_clipped: bool = False):
    """Lab ``[..., 3]`` -> sRGB in [0, 1], float32.

    Out-of-gamut colours are clipped channel-wise to [0, 1], as ``skimage.color.lab2rgb`` does.
    With ``return_clipped=True`` the result is ``(rgb, n_clipped)``, where ``n_clipped`` is the
    number of pixels (over all leading dimensions) that had a channel more than
    ``GAMUT_TOLERANCE`` outside [0, 1].
    """
    unclipped = lab_to_rgb_unclipped(lab)
    rgb = jnp.clip(unclipped, 0.0, 1.0)
    if not return_clipped:
        return rgb
    clipped = jnp.any((unclipped < -GAMUT_TOLERANCE) | (unclipped > 1.0 + GAMUT_TOLERANCE), axis=-1)
    return rgb, jnp.sum(clipped, dtype=jnp.int32)


def uint8_to_float(rgb_uint8: jnp.ndarray) -> jnp.ndarray:
    """uint8 RGB (what the input pipeline yields) -> float32 in [0, 1]."""
    return jnp.asarray(rgb_uint8, jnp.float32) / 255.0


def rgb_uint8_to_lab(rgb_uint8: jnp.ndarray) -> jnp.ndarray:
    """uint8 RGB batch -> Lab; the conversion the jitted training step runs on device."""
    return rgb_to_lab(uint8_to_float(rgb_uint8))
