"""The grain input pipeline: ``make_loader`` and its checkpointable, counting iterator.

source -> shard (``[shard_index::shard_count]``) -> name each record -> (training) seeded shuffle,
reshuffled each epoch -> repeat -> decode, resize the shorter side, random crop + flip (training)
or centre crop (evaluation), chroma check -> reader threads / worker processes -> drop and count
gray and bad images, batch.  Batches are ``{"rgb": uint8 [B, S, S, 3]}``; the Lab conversion and
soft-encoding run on the device in the jitted step (``colorjax.color.rgb_uint8_to_lab``), which
keeps host work and host-to-device bytes (3 bytes a pixel) at their minimum.

Every random choice is a function of ``seed``, the shard and the element's position, so a run is
reproducible, each shard (each host, in training) draws its own crops and flips, and ``iterator.get_state()`` / ``set_state()`` resume it exactly, counters included.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import grain
import numpy as np

from colorjax.data.sources import open_source
from colorjax.data.transforms import BAD, GRAY, OK, CropImage, DecodedImageCache, TagRecord

log = logging.getLogger(__name__)

# Reader threads per process: decoding in Pillow releases the GIL, but threads beyond the cores
# only add switching (2 cores, 64 px: 2 threads gave 532 / 1122-1232 images/s uncached / cached,
# 8 threads 407 / 911).
READ_THREADS = max(1, min(8, os.cpu_count() or 1))


class NoUsableImagesError(ValueError):
    """A repeating loader went through a whole pass of its images without one it could yield."""


class LoaderIterator(grain.DatasetIterator):
    """Batches the kept images and counts what it saw, dropped and skipped (part of its state).

    A stream that repeats and has gone a whole pass (``epoch_length`` images) without an image to
    keep, every one gray or bad, would never fill a batch: it raises :class:`NoUsableImagesError`
    instead of spinning.
    """

    def __init__(self, parent: grain.DatasetIterator, batch_size: int, drop_remainder: bool, epoch_length: int,
                 description: str = "dataset"):
        super().__init__(parent)
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder
        self._epoch_length = epoch_length
        self._description = description
        self._since_kept = 0  # images seen since the last kept one
        self._counts = {"images_seen": 0, "images_yielded": 0, "gray_dropped": 0, "bad_skipped": 0}
        self._warned: set[str] = set()

    @property
    def counters(self) -> dict[str, int]:
        """Images seen (all, this shard), yielded, dropped as gray, skipped as bad; epochs completed."""
        return {**self._counts, "epoch": self.epoch}

    @property
    def epoch(self) -> int:
        """Completed passes over this shard's images."""
        return self._counts["images_seen"] // self._epoch_length

    def __next__(self) -> dict[str, np.ndarray]:
        images = []
        while len(images) < self._batch_size:
            try:
                element = next(self._parent)
            except StopIteration:
                break
            self._counts["images_seen"] += 1
            if self._since_kept >= self._epoch_length:  # a whole pass without a kept image, and it repeats
                raise NoUsableImagesError(
                    f"{self._description}: a whole pass over its {self._epoch_length} images gave no usable image "
                    f"({self._counts['gray_dropped']} gray dropped, {self._counts['bad_skipped']} bad skipped so "
                    f"far): it needs colour images"
                )
            status = int(element["status"])
            self._since_kept = 0 if status == OK else self._since_kept + 1
            if status == OK:
                images.append(element["rgb"])
            elif status == GRAY:
                self._counts["gray_dropped"] += 1
            elif status == BAD:
                self._counts["bad_skipped"] += 1
                if element["error"] not in self._warned:  # once per file, not once per epoch
                    self._warned.add(element["error"])
                    log.warning("skipping bad image %s", element["error"])
        if not images or (self._drop_remainder and len(images) < self._batch_size):
            raise StopIteration
        self._counts["images_yielded"] += len(images)
        return {"rgb": np.stack(images)}

    def get_state(self) -> dict[str, Any]:
        return {"parent": self._parent.get_state(), "counts": dict(self._counts)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state["parent"])
        self._counts = {key: int(value) for key, value in state["counts"].items()}
        self._since_kept = 0


class Loader(grain.IterDataset):
    """What ``make_loader`` returns: iterate it for batches; ``len(loader)`` is images per epoch."""

    def __init__(self, parent: grain.IterDataset, *, batch_size: int, drop_remainder: bool, epoch_length: int, description: str):
        super().__init__(parent)
        self.batch_size = batch_size
        self.drop_remainder = drop_remainder
        self.epoch_length = epoch_length
        self.description = description

    def __len__(self) -> int:
        return self.epoch_length

    def __iter__(self) -> LoaderIterator:
        return LoaderIterator(self._parent.__iter__(), self.batch_size, self.drop_remainder, self.epoch_length,
                              self.description)

    def __str__(self) -> str:
        return f"Loader({self.description}, {self.epoch_length} images per epoch)"


def make_loader(
    spec: str,
    split: str,
    *,
    crop_size: int,
    batch_size: int,
    train: bool,
    seed: int = 0,
    data_dir: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    worker_count: int = 0,
    drop_gray: bool = True,
    num_epochs: int | None = None,
    resize_size: int | None = None,
    image_key: str = "image",
    split_ratios: tuple[float, float, float] | None = None,
    cache_mb: float = 0,
) -> Loader:
    """Batches ``{"rgb": uint8 [B, crop_size, crop_size, 3]}`` from a dataset spec.

    ``spec``: ``"embedded"``, an image folder, or a TFDS name prepared in ``data_dir``
    (``sources.py``).  ``split``: ``train``, ``val`` / ``validation`` or ``test``; a folder
    without split subfolders is split by ``split_ratios`` (default 80 / 10 / 10, or as built).
    ``resize_size``: the shorter side is scaled to this before cropping (default ``crop_size``;
    smaller images are upscaled).  ``num_epochs``: ``None`` repeats forever when training and
    reads one epoch when evaluating.  Training shuffles (reshuffled each epoch), crops at random,
    flips half the images and drops an incomplete last batch; evaluation keeps the order,
    centre-crops and yields the last batch even if it is short.  ``drop_gray`` drops images
    without chroma (``transforms.has_chroma``).  ``worker_count`` > 0 decodes in that many worker
    processes.  ``cache_mb`` > 0 keeps up to that many MB of decoded images per process
    (``transforms.DecodedImageCache``), so that later epochs skip decoding.  Every argument is
    checked before any data is read.
    """
    resize_size = crop_size if resize_size is None else resize_size
    _check_arguments(crop_size, batch_size, resize_size, shard_index, shard_count, worker_count, num_epochs, seed)
    if not cache_mb >= 0:
        raise ValueError(f"cache_mb must be >= 0, got {cache_mb}")
    source = open_source(spec, split, data_dir=data_dir, image_key=image_key, split_ratios=split_ratios)
    dataset = grain.MapDataset.source(source.records)[shard_index::shard_count]
    epoch_length = len(dataset)
    if epoch_length == 0:
        raise ValueError(f"{source.description}: shard {shard_index} of {shard_count} has no images")
    dataset = dataset.map_with_index(TagRecord(source.description, source.image_key, epoch_length))
    seed = shard_seed(seed, shard_index)
    if train:
        dataset = dataset.shuffle(seed=seed)
    dataset = dataset.repeat(num_epochs if num_epochs is not None else (None if train else 1))
    cache = DecodedImageCache(cache_mb * 2**20) if cache_mb > 0 else None
    dataset = dataset.random_map(CropImage(crop_size, resize_size, train, drop_gray, cache), seed=seed)
    read_options = grain.ReadOptions(num_threads=READ_THREADS, prefetch_buffer_size=max(64, 2 * batch_size))
    stream = dataset.to_iter_dataset(read_options)
    if worker_count > 0:
        _parse_absl_flags()
        stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return Loader(stream, batch_size=batch_size, drop_remainder=train, epoch_length=epoch_length, description=source.description)


def shard_seed(seed: int, shard_index: int) -> int:
    """The seed of shard ``shard_index``'s shuffle, crops and flips: ``seed`` with the shard index
    (the process index, in training) folded in, so that no two hosts give their j-th images the
    same crop and flip. Shard 0 keeps ``seed`` itself, so single-host runs draw what they drew
    before the index was folded in."""
    if shard_index == 0:
        return seed
    return int(np.random.SeedSequence((seed, shard_index)).generate_state(1, np.uint32)[0])


def _parse_absl_flags() -> None:
    """grain's worker processes read absl flags (at their defaults); a non-absl program has not
    parsed any, and grain 0.2.18 then fails with UnparsedFlagAccessError."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _check_arguments(crop_size, batch_size, resize_size, shard_index, shard_count, worker_count, num_epochs, seed):
    problems = []
    if crop_size < 1 or batch_size < 1:
        problems.append(f"crop_size ({crop_size}) and batch_size ({batch_size}) must be positive")
    if resize_size < crop_size:
        problems.append(f"resize_size ({resize_size}) must be at least crop_size ({crop_size})")
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        problems.append(f"shard_index must be in [0, shard_count): got {shard_index} of {shard_count}")
    if worker_count < 0:
        problems.append(f"worker_count must be >= 0, got {worker_count}")
    if num_epochs is not None and num_epochs < 1:
        problems.append(f"num_epochs must be None or >= 1, got {num_epochs}")
    if not 0 <= seed < 2**32:
        problems.append(f"seed must be in [0, 2**32), got {seed}")
    if problems:
        raise ValueError("make_loader: " + "; ".join(problems))
