"""benchmarks/device/prepare_device.py: the data copy (whole shards, matching dataset_info, readable by
the loader, within its size) and the offline check of the carried wheels' requirements."""

import json
import os
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from colorjax.data import folder
from benchmarks.device import prepare_device


def _source_dataset(tmp_path, monkeypatch, per_split=(("train", 14), ("val", 5))) -> Path:
    """A built tiny_imagenet_64 (train/ and val/ subfolders) in shards of 4 examples."""
    monkeypatch.setattr(folder, "EXAMPLES_PER_SHARD", 4)
    root = tmp_path / "tiny-imagenet-64"
    rng = np.random.default_rng(0)
    for split, count in per_split:
        (root / split).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), np.uint8)).save(root / split / f"{i:02d}.png")
    folder.build_folder_dataset(root, tmp_path / "source")
    return folder.dataset_dir(tmp_path / "source", "tiny_imagenet_64")


def test_data_copy_takes_whole_shards_within_the_limit_and_reads_back(tmp_path, monkeypatch):
    source = _source_dataset(tmp_path, monkeypatch)
    shard = lambda split, i: source / f"tiny_imagenet_64-{split}.array_record-{i:05d}"  # noqa: E731
    meta = sum((source / f).stat().st_size for f in ("dataset_info.json", "features.json"))
    # room for the first validation shard and exactly two train shards (of four: 4 + 4 + 4 + 2 images)
    limit = meta + shard("validation", 0).stat().st_size + shard("train", 0).stat().st_size + shard("train", 1).stat().st_size
    record = prepare_device.copy_dataset_part(source, tmp_path / "copy", limit + 100)
    assert record["examples"] == {"validation": 4, "train": 8}
    assert record["bytes"] <= limit + 100 + 4096  # the rewritten dataset_info.json is no longer than the source's + a little
    target = Path(record["dataset_dir"])
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["dataset_info.json", "features.json", "tiny_imagenet_64-train.array_record-00000",
         "tiny_imagenet_64-train.array_record-00001", "tiny_imagenet_64-validation.array_record-00000"])
    for name in ("tiny_imagenet_64-train.array_record-00001",):
        assert (target / name).read_bytes() == (source / name).read_bytes()  # copied, not re-encoded
    info = json.loads((target / "dataset_info.json").read_text())
    assert {s["name"]: s["shardLengths"] for s in info["splits"]} == {"validation": ["4"], "train": ["4", "4"]}
    # TFDS itself agrees, and the library's loader gives batches of every split
    assert len(tfds.data_source("tiny_imagenet_64", split="train", data_dir=os.fspath(tmp_path / "copy"), download=False)) == 8
    shapes = prepare_device.check_data_copy(tmp_path / "copy")
    assert shapes == {"train": {"images": 8, "batch": [4, 32, 32, 3]}, "validation": {"images": 4, "batch": [4, 32, 32, 3]}}
    with pytest.raises(ValueError, match="not one train shard"):
        prepare_device.copy_dataset_part(source, tmp_path / "too_small", meta + 10)


def _fake_wheel(folder: Path, name: str, version: str, requires: list[str]) -> None:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(lines) + "\n")


def test_unmet_requirements_follow_markers_versions_and_extras(tmp_path):
    _fake_wheel(tmp_path, "alpha", "1.0", [
        "beta>=2", "numpy", "gamma; python_version < '3.9'",  # gamma: not for 3.12
        "delta; sys_platform == 'win32'", "epsilon", "beta[fast]", "zeta>=3"])
    _fake_wheel(tmp_path, "beta", "2.1", ["eta; extra == 'fast'", "theta; extra == 'slow'"])
    _fake_wheel(tmp_path, "zeta", "2.0", [])
    problems = prepare_device.unmet_requirements(tmp_path, machine={"numpy"})
    assert problems == sorted([
        "alpha needs epsilon: neither carried nor on the machine",
        "alpha needs zeta>=3, carried zeta 2.0",
        "beta needs eta; extra == \"fast\": neither carried nor on the machine",
    ])
    _fake_wheel(tmp_path, "zeta", "3.0", [])
    assert "zeta carried 2 times (2.0, 3.0)" in prepare_device.unmet_requirements(tmp_path, machine={"numpy"})


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _pypi_reachable(), reason="no network to PyPI")
def test_downloaded_wheels_meet_every_requirement_offline(tmp_path):
    wheels = prepare_device.download_wheels(tmp_path)
    names = {prepare_device.normalise(prepare_device.wheel_metadata(w)["Name"]) for w in wheels}
    assert {"tensorflow-datasets", "grain", "array-record", "ml-collections", "tensorboardx"} <= names
    assert prepare_device.unmet_requirements(tmp_path) == []
    assert prepare_device.folder_bytes(tmp_path) < 20 * 2**20
