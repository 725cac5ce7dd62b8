"""The deterministic train / validation / test assignment of a folder's images.

A file's split depends only on its path relative to the folder, written with ``/`` separators:
the first 8 bytes of the SHA-256 of that UTF-8 string, read as a big-endian integer and divided
by 2**64, give a number ``u`` in [0, 1); with ratios (r_train, r_val, r_test) the file is in train
when ``u < r_train``, in validation when ``u < r_train + r_val``, else in test.  The rule is the same
on every machine and run, and adding or removing other files never moves a file between splits.
If the folder has ``train/``, ``val/`` (or ``validation/``) or ``test/`` subfolders, they decide
instead, and files outside them are ignored.
"""

from __future__ import annotations

import hashlib
import pathlib

SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
SPLIT_ALIASES = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}


def normalize_split(split: str) -> str:
    """``val`` -> ``validation``; other names pass through (a TFDS dataset may have its own)."""
    return SPLIT_ALIASES.get(split, split)


def check_ratios(ratios) -> tuple[float, float, float]:
    """Three finite ratios >= 0 summing to 1 (:func:`colorjax.validation.split_ratios`)."""
    from colorjax.validation import split_ratios

    return split_ratios(ratios)


def hash_fraction(relative_path: str) -> float:
    """The stable number in [0, 1) that places a file; ``relative_path`` uses ``/``."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_hash(relative_path: str, ratios=DEFAULT_RATIOS) -> str:
    """The split of one file under the hash rule."""
    r_train, r_val, _ = check_ratios(ratios)
    u = hash_fraction(relative_path)
    if u < r_train:
        return "train"
    return "validation" if u < r_train + r_val else "test"


def split_folders(root: pathlib.Path) -> dict[str, str]:
    """The folder's own split subfolders, ``{subfolder name: split}``; empty when it has none."""
    return {
        child.name: SPLIT_ALIASES[child.name]
        for child in sorted(root.iterdir())
        if child.is_dir() and child.name in SPLIT_ALIASES
    }


def assign_splits(root: pathlib.Path, relative_paths: list[str], ratios=DEFAULT_RATIOS) -> dict[str, list[str]]:
    """``{split: sorted relative paths}`` for the files of a folder, by subfolders or by hash."""
    ratios = check_ratios(ratios)
    by_folder = split_folders(root)
    assigned: dict[str, list[str]] = {split: [] for split in SPLITS}
    for path in sorted(relative_paths):
        if by_folder:
            top = path.split("/", 1)[0]
            if top in by_folder and "/" in path:
                assigned[by_folder[top]].append(path)
        else:
            assigned[split_by_hash(path, ratios)].append(path)
    return assigned
