"""Per-image steps of the pipeline: decode, resize the shorter side, crop, flip, chroma check.

They run in grain's reader threads or worker processes, so they use numpy, Pillow and
scikit-image only (no jax); each returns a tagged record so that the main process can count what
was dropped and why (``pipeline.LoaderIterator``).
"""

from __future__ import annotations

import dataclasses
import threading

import grain
import numpy as np
from PIL import Image

from colorjax.data.images import BadImageError, decode_image

from colorjax.bins import GRAY_THRESHOLD

# Zhang et al. 2016, released training code: the non-gray test looks at ab subsampled with stride 4,
# the network's output resolution (Zhang et al. 2016; docs/reference.md section 2);
# bins.is_colourful is the same rule.
CHROMA_STRIDE = 4

OK, GRAY, BAD = 0, 1, 2


def has_chroma(rgb: np.ndarray, threshold: float = GRAY_THRESHOLD, stride: int = CHROMA_STRIDE) -> bool:
    """Zhang's non-gray rule on a uint8 RGB image: any sampled pixel with |a| or |b| > threshold."""
    from skimage.color import rgb2lab

    sample = rgb[::stride, ::stride]
    if np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2]):
        return False  # exactly gray: a = b = 0 (up to float rounding), no need for Lab
    ab = rgb2lab(sample)[..., 1:]
    return bool(np.any(np.abs(ab) > threshold))


def crop_box(width: int, height: int, resize_size: int, crop_size: int, rng: np.random.Generator | None):
    """The source-pixel box that becomes the crop after scaling the shorter side to ``resize_size``.

    Random position when ``rng`` is given (training), centred otherwise (evaluation).
    """
    scale = resize_size / min(width, height)
    resized_w = max(resize_size, round(width * scale))
    resized_h = max(resize_size, round(height * scale))
    if rng is None:
        x0, y0 = (resized_w - crop_size) // 2, (resized_h - crop_size) // 2
    else:
        x0 = int(rng.integers(0, resized_w - crop_size + 1))
        y0 = int(rng.integers(0, resized_h - crop_size + 1))
    side = crop_size / scale  # the crop's side in source pixels
    # rounding of the resized size and of floats can put the box a hair outside the image
    left = min(max(x0 / scale, 0.0), max(width - side, 0.0))
    top = min(max(y0 / scale, 0.0), max(height - side, 0.0))
    return (left, top, left + side, top + side)


@dataclasses.dataclass(frozen=True)
class TagRecord(grain.transforms.MapWithIndex):
    """Keeps the image, a name for messages (the record's file name, else its index) and the
    record's index. grain hands a map under a shuffle or repeat the running index (epoch x
    records + record), so the record is that modulo ``record_count``."""

    description: str
    image_key: str = "image"
    record_count: int | None = None

    def map_with_index(self, index: int, record: dict) -> dict:
        if self.record_count:
            index %= self.record_count
        name = record.get("filename", record.get("file_name", b""))
        name = name.decode() if isinstance(name, bytes) else str(name)
        return {"image": record[self.image_key], "name": f"{self.description}: {name or f'record {index}'}",
                "index": index}


class DecodedImageCache:
    """Decoded images (uint8 sRGB at the decoder's reduced scale) by record index, up to
    ``max_bytes``, so that later epochs crop without decoding: on two cores JPEG decoding took
    1.4 ms of the 1.6 ms an image cost the input pipeline at 64 px (``benchmarks/bench_stall.py``).
    First come, first kept. grain copies its transforms: a copy in the same process shares this
    cache, a pickled one (a worker process) starts empty; the images are freed with the loader.
    Pixels are the ones a fresh decode gives, so a run with the cache yields the same batches."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._images: dict[int, np.ndarray] = {}
        self.nbytes = 0
        self._lock = threading.Lock()

    def get(self, index: int) -> np.ndarray | None:
        return self._images.get(index)

    def put(self, index: int, image: np.ndarray) -> None:
        with self._lock:
            if index not in self._images and self.nbytes + image.nbytes <= self.max_bytes:
                self._images[index] = image
                self.nbytes += image.nbytes

    def __len__(self) -> int:
        return len(self._images)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):  # into a worker process: the limit only
        return DecodedImageCache, (self.max_bytes,)


@dataclasses.dataclass(frozen=True)
class CropImage(grain.transforms.RandomMap):
    """Decoded, resized, cropped (and, training, flipped) uint8 RGB with a status tag."""

    crop_size: int
    resize_size: int
    train: bool
    drop_gray: bool = True
    cache: DecodedImageCache | None = None

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        try:
            image = self._cached_decode(element)
        except BadImageError as error:
            blank = np.zeros((self.crop_size, self.crop_size, 3), np.uint8)
            return {"rgb": blank, "status": np.int8(BAD), "error": str(error)}
        box = crop_box(*image.size, self.resize_size, self.crop_size, rng if self.train else None)
        size = (self.crop_size, self.crop_size)
        rgb = np.asarray(image.resize(size, Image.Resampling.BILINEAR, box=box))
        if self.train and rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        status = GRAY if self.drop_gray and not has_chroma(rgb) else OK
        return {"rgb": np.ascontiguousarray(rgb), "status": np.int8(status), "error": ""}

    def _cached_decode(self, element: dict) -> Image.Image:
        if self.cache is None:
            return self._decode(element["image"], element["name"])
        pixels = self.cache.get(element["index"])
        if pixels is None:
            pixels = np.asarray(self._decode(element["image"], element["name"]))
            self.cache.put(element["index"], pixels)
        return Image.fromarray(pixels)

    def _decode(self, image, name: str) -> Image.Image:
        if isinstance(image, np.ndarray):
            return Image.fromarray(image)
        return decode_image(bytes(image), name, min_side=self.resize_size).image
