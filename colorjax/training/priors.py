"""Bin centres and the colour prior of a classification run, streamed from the training data.

Counting runs on device over global batches (each host reads its own shard; XLA sums across hosts),
at the output resolution the loss sees (every ``output_stride``-th pixel, Zhang's subsampling) and
only over colourful images (Zhang's non-gray rule), before training starts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import bins, memory
from colorjax import prior as prior_lib
from colorjax.training import parallel
from colorjax.training.steps import lab_batch


def _stream_counts(count_fn, loader_factory, num_batches: int, mesh, *, num_counts: int | None = None) -> np.ndarray:
    """Sum ``count_fn(rgb)`` over ``num_batches`` global batches, in float64 on the host.

    The first ``num_counts`` entries of the sum (default: all) are pixel counts; only they decide
    whether any colour was counted. Entries after them (the lightness table's signed a and b sums)
    may be negative and must not: a dataset of blue skies and green grass has negative mean a and b.
    """
    count = jax.jit(count_fn, out_shardings=parallel.replicated(mesh))
    total, compiled = None, None
    for _, local in zip(range(num_batches), loader_factory()):
        batch = parallel.global_batch(local, mesh)
        if compiled is None:  # refused with XLA's estimate before the first count, not part way through
            shape = batch["rgb"].shape
            compiled = memory.compile_within_memory(
                count, (batch["rgb"],), what=f"counting the colour prior over batches of {shape[0]} crops of "
                f"{shape[1]} x {shape[2]}", advice="lower data.batch_size or data.crop_size, or give prior.path "
                "(a saved colour prior)")
        counts = np.asarray(parallel.to_host((compiled if batch["rgb"].shape == shape else count)(batch["rgb"])),
                            np.float64)
        total = counts if total is None else total + counts
    if total is None:
        raise ValueError("the training data yielded no batch to count colours from")
    if not total[:num_counts].sum() > 0:
        raise ValueError(
            f"the training split yields no colour image in {num_batches} batches: every image is gray "
            f"(no chroma), so there are no colours to count a prior from"
        )
    return total


def bins_and_prior(loader_factory, mesh, output_stride: int, *, images: int, batch_size: int, kind: str, grid: int,
                   smoothing_sigma: float, lam: float, path: str | None = None, centres=None):
    """``(centres [Q, 2], ColourPrior)``: loaded from ``path`` when given, else counted over
    ``images`` training images in global batches of ``batch_size``.

    ``loader_factory()`` returns a fresh training iterator (local batches of uint8 RGB); ``kind`` is
    ``"zhang"`` (Zhang's 313 in-gamut centres) or ``"grid"`` (the cells of side ``grid`` the data
    occupies), unless ``centres`` gives the bins (a fine-tuned run keeps its checkpoint's);
    ``smoothing_sigma`` and ``lam`` shape the rebalancing weights.
    """
    if path:
        prior = prior_lib.ColourPrior.load(path)
        return np.asarray(prior.centres, np.float32), prior
    num_batches = max(1, -(-images // batch_size))

    def pixels(rgb):
        _, ab, colourful = lab_batch(rgb)
        return ab[:, ::output_stride, ::output_stride], colourful[:, None, None]

    match kind:
        case _ if centres is not None:
            centres = np.asarray(centres, np.float32)
        case "zhang":
            centres = bins.zhang_bins()
        case "grid":

            def cell_counts(rgb):
                ab, colourful = pixels(rgb)
                return bins.grid_cell_counts(ab, grid=grid, mask=colourful)

            cells = _stream_counts(cell_counts, loader_factory, num_batches, mesh)
            centres = bins.grid_bins(cells, grid=grid)
        case _:
            raise ValueError(f"unknown bins kind {kind!r}")
    centres_device = jnp.asarray(centres)

    def bin_and_lightness_counts(rgb):
        # One pass gives both the bin counts [Q] and the lightness baseline's sums [101, 3], flat.
        L, ab, colourful = lab_batch(rgb)
        L, ab = L[:, ::output_stride, ::output_stride], ab[:, ::output_stride, ::output_stride]
        mask = jnp.broadcast_to(colourful[:, None, None], ab.shape[:-1])
        counts = prior_lib.bin_counts(ab, centres_device, mask=mask)
        return jnp.concatenate([counts, prior_lib.lightness_ab_sums(L, ab, mask).ravel()])

    totals = _stream_counts(bin_and_lightness_counts, loader_factory, num_batches, mesh, num_counts=len(centres))
    counts, lightness_sums = totals[: len(centres)], totals[len(centres) :].reshape(prior_lib.LIGHTNESS_LEVELS, 3)
    prior = prior_lib.ColourPrior.from_counts(
        counts.astype(np.float32), centres, smoothing_sigma=smoothing_sigma, lam=lam,
        lightness_sums=lightness_sums,
    )
    return centres, prior

