"""Baselines that need no checkpoint: the rows "Gray" and "Random" of Zhang et al.'s Table 1, and a
context-free lookup that any colorizer worth training must beat.

- ``gray``: ab = 0 everywhere, i.e. the input itself (the L channel shown as a gray image).
- ``lightness``: every pixel gets the mean ab of the training pixels with the same integer L
  (0-100), a table counted with the colour prior (:attr:`colorjax.prior.ColourPrior.lightness_sums`)
  and stored with it. It knows how colour goes with lightness in the training photos (dark pixels
  are warm, bright ones neutral) and nothing about objects: a model that does not beat it has learnt
  no more than a per-lightness tint.
- ``random``: every image takes the colours (the full ab map) of the image before it in the
  evaluation order; the first image of the run takes those of the last image of the first batch.
  Zhang et al. colour each image with the colours of a random training image (recalled from the
  paper); a fixed donor order makes ours deterministic, needs no extra data and
  keeps the realistic colour statistics and spatial structure of real photos, which a per-pixel
  random draw would not.
"""

from __future__ import annotations

import jax.numpy as jnp

BASELINES = ("gray", "random", "lightness")


def gray_predictor():
    """ab = 0: the grayscale image."""
    return lambda lab: jnp.zeros(lab.shape[:-1] + (2,), lab.dtype)


class DonorColours:
    """The random baseline: image i gets the ab of image i - 1 (carried across batches)."""

    def __init__(self):
        self.previous = None

    def __call__(self, lab: jnp.ndarray) -> jnp.ndarray:
        ab = lab[..., 1:]
        if self.previous is None and ab.shape[0] < 2:
            raise ValueError("the random baseline needs an evaluation batch size of at least 2")
        first = ab[-1:] if self.previous is None else self.previous
        donors = jnp.concatenate([first, ab[:-1]], axis=0)
        self.previous = ab[-1:]
        return donors


def lightness_predictor(table):
    """ab = ``table[round(L)]`` for a [101, 2] table of mean ab per integer L."""
    table = jnp.asarray(table, jnp.float32)

    def predict(lab: jnp.ndarray) -> jnp.ndarray:
        level = jnp.clip(jnp.round(lab[..., 0]), 0, table.shape[0] - 1).astype(jnp.int32)
        return table[level].astype(lab.dtype)

    return predict


def baseline_predictor(name: str, prior=None):
    """The predictor of baseline ``name`` (one of :data:`BASELINES`); ``lightness`` reads its table
    from ``prior`` (a :class:`colorjax.prior.ColourPrior` counted on the training split)."""
    match name:
        case "gray":
            return gray_predictor()
        case "random":
            return DonorColours()
        case "lightness":
            if prior is None:
                raise ValueError("the lightness baseline needs a colour prior counted on the training split")
            return lightness_predictor(prior.mean_ab_by_lightness)
        case _:
            raise ValueError(f"unknown baseline {name!r}: expected one of {BASELINES}")
