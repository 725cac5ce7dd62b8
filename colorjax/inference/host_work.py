"""The host side of colorizing files, shaped so that a folder of mixed-size photos runs at the
model's rate: per-image work at each photo's own size happens in numpy / Pillow (no XLA program is
traced per image size) and in thread pools beside the device calls.

- :func:`shrink_lightness` and :func:`enlarge_ab`: the two resizes of the colorization path, in
  Pillow and NumPy (:func:`resize_linear`): the triangle (bilinear) filter with half-pixel centres
  and, when shrinking, a support widened by the scale (antialiasing) that ``jax.image.resize``
  uses, equal to it within 1e-5 of the values' scale, but without compiling one program per image
  size (about 160 ms each on a CPU).
- :func:`pipelined`: loads the next batches in reader threads while the device runs the current
  one, and finishes (full-resolution Lab to sRGB, encoding, writing) in writer threads.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

# Reader and writer threads: decoding, encoding and XLA's CPU computations release the GIL.
HOST_THREADS = max(2, min(8, os.cpu_count() or 2))


def linear_resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """[in_size, out_size] weights of a 1-D linear (triangle) resize with half-pixel centres.

    Downsampling widens the triangle by the factor (antialiasing); weights that would fall
    outside the input are dropped and each column renormalised. This is the resampling of
    ``jax.image.resize(..., "linear", antialias=True)`` (and of Pillow's ``BILINEAR``), written out
    as a matrix: the reference the faster paths below are tested against.
    """
    inv_scale = in_size / out_size
    kernel_scale = max(inv_scale, 1.0)
    sample = (np.arange(out_size, dtype=np.float64) + 0.5) * inv_scale - 0.5
    distance = np.abs(sample[None, :] - np.arange(in_size, dtype=np.float64)[:, None]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - distance)
    return (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32)


def resize_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, C] resized to [height, width, C] linearly (antialiased when shrinking).

    Each channel goes through Pillow's separable ``BILINEAR`` resampling of 32-bit float images:
    the filter of :func:`linear_resize_weights` applied over its support only (a 500 x 375 photo
    to 64 x 64: about 1 ms, against 15-40 ms for the dense matrix products), with the GIL released.
    """
    image = np.asarray(image, np.float32)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), Image.BILINEAR))
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def shrink_lightness(L: np.ndarray, size: int) -> np.ndarray:
    """L [H, W, 1] -> [size, size, 1], antialiased bilinear (as ``jax.image.resize(..., "linear",
    antialias=True)``)."""
    return resize_linear(L, size, size)


def enlarge_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    """ab [h, w, 2] -> [height, width, 2], bilinear (as ``jax.image.resize(..., "bilinear")``)."""
    return resize_linear(ab, height, width)


def pipelined(
    items: Sequence[Any],
    load: Callable[[Any], Any],
    run_batch: Callable[[list[Any]], Sequence[Any]],
    finish: Callable[[Any, Any, Any], Any],
    *,
    batch_size: int,
    threads: int = HOST_THREADS,
    batches_ahead: int = 2,
) -> Iterator[tuple[Any, Any, BaseException | None]]:
    """Yield ``(item, finish result, load error)`` for every item, batch by batch.

    ``load(item)`` runs in reader threads up to ``batches_ahead`` batches ahead; ``run_batch`` (the
    device call, in the calling thread) gets the values of the items that loaded; ``finish(item,
    loaded, output)`` runs in writer threads. An exception from ``load`` is that item's error (its
    finish result is None); one from ``run_batch`` or ``finish`` propagates.
    """
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="colorize-read") as readers, \
            concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="colorize-write") as writers:
        batches = [list(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]
        loading: collections.deque = collections.deque()
        finishing: collections.deque = collections.deque()
        next_batch = 0

        def top_up():
            nonlocal next_batch
            while next_batch < len(batches) and len(loading) < batches_ahead:
                loading.append([(item, readers.submit(load, item)) for item in batches[next_batch]])
                next_batch += 1

        top_up()
        while loading:
            batch = loading.popleft()
            top_up()
            loaded, failed = [], []
            for item, future in batch:
                try:
                    loaded.append((item, future.result()))
                except Exception as error:  # noqa: BLE001 - a bad input is reported, not fatal
                    failed.append((item, error))
            outputs = run_batch([value for _, value in loaded]) if loaded else []
            for (item, value), output in zip(loaded, outputs):
                finishing.append((item, writers.submit(finish, item, value, output)))
            for item, error in failed:
                finishing.append((item, error))
            while len(finishing) > batches_ahead * batch_size:
                yield _settle(*finishing.popleft())
        while finishing:
            yield _settle(*finishing.popleft())


def _settle(item, pending) -> tuple[Any, Any, BaseException | None]:
    if isinstance(pending, BaseException):
        return item, None, pending
    return item, pending.result(), None
