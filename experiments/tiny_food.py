"""A domain to fine-tune on: the food photos of tiny-imagenet-64, as an image folder.

    python -m experiments.tiny_food --out runs/tiny_food

tiny-imagenet-64 (``../shared/data/tiny-imagenet-64``, ``COLORJAX_TINY_IMAGENET`` overrides) has 17
classes under WordNet's food synsets (``n07...``: plate, guacamole, ice cream, ice lolly, pretzel,
mashed potato, cauliflower, bell pepper, mushroom, orange, lemon, banana, pomegranate, meat loaf,
pizza, potpie, espresso): food and produce, a studio's archive of one subject. The folder holds
symbolic links to the original files (nothing is copied):

- ``train/``: the classes' training photos (3,393 in the copy this project uses, about 200 a class);
- ``val/`` and ``test/``: the classes' photos from tiny-imagenet's ``val/`` (427: 205 / 222), halved by
  the project's path hash (:func:`colorjax.data.splits.hash_fraction` of the file name below 1/2:
  ``val/``). Nothing trained on tiny-imagenet, the CPU recipe included, has seen them.

Class labels come from the data's ``MANIFEST.csv`` (``file,wnid,...``). The folder is rebuilt only
when missing or incomplete; its ``food_classes.json`` names the classes and counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

from colorjax.data.splits import hash_fraction
from experiments.configs.scales import TINY_IMAGENET

FOOD_PREFIX = "n07"  # WordNet's food synsets (n07555863 "food, solid food" and below)
RECORD = "food_classes.json"


def food_files(source: str | os.PathLike = TINY_IMAGENET) -> dict[str, list[str]]:
    """``{split folder: [relative paths in source]}`` of the food classes' photos."""
    manifest = Path(source) / "MANIFEST.csv"
    if not manifest.is_file():
        raise SystemExit(f"tiny_food: {manifest} not found (tiny-imagenet-64 with its MANIFEST.csv; "
                         "COLORJAX_TINY_IMAGENET names another copy)")
    out = {"train": [], "val": [], "test": []}
    with manifest.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["wnid"].startswith(FOOD_PREFIX):
                continue
            top = row["file"].split("/", 1)[0]
            if top == "train":
                out["train"].append(row["file"])
            elif top == "val":
                out["val" if hash_fraction(Path(row["file"]).name) < 0.5 else "test"].append(row["file"])
    return out


def make_food_folder(target: str | os.PathLike, source: str | os.PathLike = TINY_IMAGENET) -> Path:
    """Write (or reuse) the food folder at ``target``: ``train/ val/ test/`` of links into ``source``."""
    target, source = Path(target).absolute(), Path(source).absolute()
    files = food_files(source)
    counts = {split: len(paths) for split, paths in files.items()}
    record = target / RECORD
    built = json.loads(record.read_text()) if record.is_file() else {}
    if built.get("source") == str(source) and built.get("counts") == counts:
        return target
    classes = sorted({Path(p).parts[1] for p in files["train"]})
    for split, paths in files.items():
        for relative in paths:
            link = target / split / (Path(relative).relative_to("train") if split == "train" else Path(relative).name)
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                if Path(os.readlink(link)) == source / relative:
                    continue
                link.unlink()  # a link of an earlier build from another copy of the data
            elif link.exists():
                raise SystemExit(f"tiny_food: {link} is a file, not a link this script made; choose another --out")
            link.symlink_to(source / relative)
    record.write_text(json.dumps({"source": str(source), "classes": classes, "counts": counts}, indent=1))
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/tiny_food")
    parser.add_argument("--source", default=TINY_IMAGENET)
    args = parser.parse_args(argv)
    folder = make_food_folder(args.out, args.source)
    print(json.dumps(json.loads((folder / RECORD).read_text())["counts"]), folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
