"""The embedded default dataset: colour photos that ship inside installed packages (no download).

scikit-image's ``astronaut``, ``chelsea``, ``coffee``, ``rocket`` and the stereo pair
``motorcycle_left`` / ``motorcycle_right``; scikit-learn's ``china`` and ``flower`` when
scikit-learn is installed.  The roles are fixed: ``chelsea`` and ``coffee`` are the held-out test
photos; the others train.  The two motorcycle views are nearly the same picture, so both train.
The set is too small for a third split: ``validation`` reads the test photos.
"""

from __future__ import annotations

import functools

import numpy as np

TEST_PHOTOS = ("chelsea", "coffee")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right")
SKLEARN_PHOTOS = ("china", "flower")


@functools.cache
def embedded_photos() -> dict[str, np.ndarray]:
    """All available embedded photos by name, uint8 RGB ``[H, W, 3]``, in a fixed order."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    photos = {
        "astronaut": data.astronaut(),
        "chelsea": data.chelsea(),
        "coffee": data.coffee(),
        "rocket": data.rocket(),
        "motorcycle_left": left,
        "motorcycle_right": right,
    }
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        pass
    else:
        samples = load_sample_images()
        for filename, image in zip(samples.filenames, samples.images):
            photos[filename.rsplit("/", 1)[-1].split(".")[0]] = image
    return {name: np.ascontiguousarray(image, dtype=np.uint8) for name, image in photos.items()}


def embedded_split(split: str) -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 RGB)`` pairs of one split: ``train``, ``test`` or ``validation`` (= test)."""
    if split not in ("train", "test", "validation"):
        raise ValueError(f"the embedded dataset has no split {split!r}; it has train, test, validation")
    held_out = split != "train"
    return [(name, image) for name, image in embedded_photos().items() if (name in TEST_PHOTOS) == held_out]
