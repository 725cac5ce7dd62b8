"""experiments/tiny_food.py: the food domain's folder of links, from a manifest the test writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from colorjax.data.splits import hash_fraction
from experiments.configs import finetune_food
from experiments.tiny_food import RECORD, food_files, make_food_folder


def _fake_tiny_imagenet(root, val_names):
    rows = ["file,wnid,w,h,sha1"]
    rng = np.random.default_rng(0)
    for wnid in ("n07747607", "n07749582", "n01443537"):  # orange, lemon, goldfish (not food)
        for i in range(3):
            rows.append(f"train/{wnid}/{wnid}_{i}.JPEG,{wnid},8,8,x")
    for i, name in enumerate(val_names):
        rows.append(f"val/{name},{'n07747607' if i % 2 else 'n01443537'},8,8,x")
    for row in rows[1:]:
        path = root / row.split(",")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path, format="JPEG")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")


def test_food_folder_takes_food_classes_and_halves_val_by_hash(tmp_path):
    val_names = [f"val_{i}.JPEG" for i in range(40)]
    _fake_tiny_imagenet(tmp_path / "tiny", val_names)
    files = food_files(tmp_path / "tiny")
    assert sorted(files["train"]) == sorted(f"train/{w}/{w}_{i}.JPEG" for w in ("n07747607", "n07749582")
                                            for i in range(3))
    food_val = [n for i, n in enumerate(val_names) if i % 2]  # the odd ones were labelled orange
    expected_val = [f"val/{n}" for n in food_val if hash_fraction(n) < 0.5]
    expected_test = [f"val/{n}" for n in food_val if hash_fraction(n) >= 0.5]
    assert sorted(files["val"]) == sorted(expected_val) and sorted(files["test"]) == sorted(expected_test)
    assert expected_val and expected_test  # both halves are exercised

    folder = make_food_folder(tmp_path / "food", tmp_path / "tiny")
    record = json.loads((folder / RECORD).read_text())
    assert record["classes"] == ["n07747607", "n07749582"]
    assert record["counts"] == {"train": 6, "val": len(expected_val), "test": len(expected_test)}
    link = folder / "train" / "n07749582" / "n07749582_2.JPEG"
    assert link.is_symlink() and link.resolve() == (tmp_path / "tiny/train/n07749582/n07749582_2.JPEG").resolve()
    assert sorted(p.name for p in (folder / "test").iterdir()) == sorted(n.split("/")[1] for n in expected_test)
    assert make_food_folder(tmp_path / "food", tmp_path / "tiny") == folder  # reused, no error on existing links


def test_food_folder_names_a_missing_manifest(tmp_path):
    with pytest.raises(SystemExit, match="MANIFEST.csv not found"):
        food_files(tmp_path)


def test_food_config_refuses_a_missing_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(finetune_food, "FOOD", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="no train/ folder"):
        finetune_food.get_config()
    with pytest.raises(ValueError, match="unknown start"):
        finetune_food.get_config("resume")


def test_food_folder_follows_another_copy_of_the_data(tmp_path):
    val_names = [f"val_{i}.JPEG" for i in range(8)]
    for copy in ("a", "b"):
        _fake_tiny_imagenet(tmp_path / copy, val_names)
    folder = make_food_folder(tmp_path / "food", tmp_path / "a")
    folder = make_food_folder(tmp_path / "food", tmp_path / "b")  # same counts, another source
    link = folder / "train" / "n07747607" / "n07747607_0.JPEG"
    assert link.resolve() == (tmp_path / "b/train/n07747607/n07747607_0.JPEG").resolve()
    assert json.loads((folder / RECORD).read_text())["source"] == str((tmp_path / "b").absolute())
    link.unlink()
    link.write_bytes(b"not a link")  # a file the script did not make is never replaced
    with pytest.raises(SystemExit, match="is a file, not a link"):
        make_food_folder(tmp_path / "food", tmp_path / "a")
