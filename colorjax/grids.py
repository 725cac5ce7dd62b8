"""Picture grids: equal-size images tiled into one, as training's validation grids and the
evaluation reports write them (gray | prediction | truth rows)."""

from __future__ import annotations

import numpy as np


def image_grid(rows: list[list[np.ndarray]], pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile rows of equal-size uint8 RGB images into one image, ``pad`` pixels apart."""
    if not rows:
        raise ValueError("image_grid: no images")
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = image
    return grid


def float_rgb_to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] (NaN read as 0, values clipped) -> uint8."""
    return np.round(np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)


def comparison_grid(gray: np.ndarray, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Rows of (gray | prediction | truth) from float RGB ``[N, H, W, 3]`` in [0, 1], edge to edge."""
    return image_grid([[float_rgb_to_uint8(g), float_rgb_to_uint8(p), float_rgb_to_uint8(t)]
                       for g, p, t in zip(gray, pred, true, strict=True)], pad=0)
