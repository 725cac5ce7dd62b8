"""Folder datasets: the split rule, the TFDS array_record build, tfrecord conversion, the CLI."""

import hashlib
import io
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import random_photo
from colorjax.cli import main
from colorjax.data import folder, load_image, make_loader, splits, tfrecord

# Literal pins: these assignments must never change, on any machine (80 / 10 / 10).
PINNED = {
    "n01440764_tench.JPEG": (0.9011407824671744, "test"),
    "n01443537_goldfish.JPEG": (0.08105356102609992, "train"),
    "n02085620_Chihuahua.JPEG": (0.8700011789938603, "validation"),
    "holiday/2019/beach.webp": (0.8668938186122189, "validation"),
    "cats/cat_001.jpg": (0.2648965624517337, "train"),
}


def test_split_assignments_are_pinned():
    for path, (fraction, split) in PINNED.items():
        by_hand = int(hashlib.sha256(path.encode()).hexdigest()[:16], 16) / 2**64
        assert splits.hash_fraction(path) == fraction == by_hand
        assert splits.split_by_hash(path) == split
    assert splits.split_by_hash("n01440764_tench.JPEG", (0.95, 0.0, 0.05)) == "train"  # 0.901 < 0.95
    assert splits.split_by_hash("n02085620_Chihuahua.JPEG", (0.5, 0.3, 0.2)) == "test"  # 0.870 >= 0.8
    with pytest.raises(ValueError, match="sum"):
        splits.split_by_hash("a.png", (0.8, 0.1, 0.2))


def make_folder(root: pathlib.Path, n_good: int = 12) -> dict[str, np.ndarray]:
    """Good images in several formats and subfolders, plus two bad files; returns the good pixels."""
    formats = [("png", "PNG"), ("bmp", "BMP"), ("tif", "TIFF"), ("webp", "WEBP")]  # lossless ones
    good = {}
    for i in range(n_good):
        suffix, fmt = formats[i % len(formats)]
        relative = f"group{i % 3}/img_{i:02d}.{suffix}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        pixels = random_photo(24, 32, i)
        Image.fromarray(pixels).save(root / relative, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        good[relative] = pixels
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "group1" / "readme.png").write_text("a text file with an image extension")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return good


def test_build_and_read_back_with_tfds_data_source(tmp_path, caplog):
    source, data_dir = tmp_path / "My Photos", tmp_path / "tfds"
    good = make_folder(source)
    record = folder.build_folder_dataset(source, data_dir)
    assert record["name"] == "my_photos" and record["files_found"] == len(good) + 2
    assert sorted(s["file"] for s in record["skipped"]) == ["broken.jpg", "group1/readme.png"]
    assert "broken.jpg" in caplog.text and "group1/readme.png" in caplog.text
    expected = {split: sorted(p for p in good if splits.split_by_hash(p) == split) for split in splits.SPLITS}
    assert record["examples"] == {s: len(v) for s, v in expected.items() if v}
    read = {}
    for split in record["examples"]:
        ds = tfds.data_source("my_photos", split=split, data_dir=os.fspath(data_dir), download=False)
        examples = [ds[i] for i in range(len(ds))]
        assert sorted(e["filename"].decode() for e in examples) == expected[split]
        read.update({e["filename"].decode(): e["image"] for e in examples})
    assert read.keys() == good.keys()
    for relative, pixels in good.items():
        np.testing.assert_array_equal(read[relative], pixels)  # lossless formats, stored as PNG
    assert json.loads((folder.dataset_dir(data_dir, "my_photos") / "colorjax_build.json").read_text()) == record


def test_jpeg_kept_as_original_bytes_and_rotated_jpeg_converted(tmp_path):
    source = tmp_path / "jpegs"
    source.mkdir()
    Image.fromarray(random_photo(40, 60, 1)).save(source / "plain.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180
    y, x = np.mgrid[0:40, 0:60] / 60.0
    smooth = np.stack([255 * x, 255 * y, 128 + 100 * np.sin(8 * x)], -1).astype(np.uint8)
    Image.fromarray(smooth).save(source / "rotated.jpg", quality=90, exif=exif)
    folder.build_folder_dataset(source, tmp_path / "d", ratios=(1, 0, 0))
    ds = tfds.data_source("jpegs", split="train", data_dir=os.fspath(tmp_path / "d"), download=False,
                          decoders={"image": tfds.decode.SkipDecoding()})
    stored = {e["filename"].decode(): e["image"] for e in (ds[0], ds[1])}
    assert stored["plain.jpg"] == (source / "plain.jpg").read_bytes()
    rotated = Image.open(io.BytesIO(stored["rotated.jpg"]))
    assert rotated.format == "JPEG" and 0x0112 not in rotated.getexif()  # stored upright
    reference = load_image(source / "rotated.jpg").astype(int)
    assert np.abs(np.asarray(rotated).astype(int) - reference).mean() < 1.0  # quality 95 re-encode


def test_split_subfolders_decide_and_strays_are_ignored(tmp_path):
    source = tmp_path / "presplit"
    for split, count in [("train", 3), ("val", 2), ("test", 1)]:
        (source / split / "deeper").mkdir(parents=True)
        for i in range(count):
            Image.fromarray(random_photo(24, 32, i)).save(source / split / "deeper" / f"{i}.png")
    Image.fromarray(random_photo(24, 32, 9)).save(source / "stray.png")
    record = folder.build_folder_dataset(source, tmp_path / "d")
    assert record["split_rule"] == "subfolders" and record["files_outside_split_folders"] == 1
    assert record["examples"] == {"train": 3, "validation": 2, "test": 1}


def test_missing_empty_and_all_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        folder.build_folder_dataset(tmp_path / "nowhere", tmp_path / "d")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="contains no images"):
        folder.build_folder_dataset(tmp_path / "empty", tmp_path / "d")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_text("x")
    with pytest.raises(ValueError, match="no readable image"):
        folder.build_folder_dataset(tmp_path / "bad", tmp_path / "d")
    assert not (tmp_path / "d" / "bad").exists() or not any((tmp_path / "d" / "bad").glob("*/dataset_info.json"))


def test_built_once_and_rebuilt_when_the_folder_changes(tmp_path):
    source, data_dir = tmp_path / "photos", tmp_path / "d"
    make_folder(source, n_good=4)
    directory = folder.ensure_folder_dataset(source, data_dir)
    stamp = (directory / "colorjax_build.json").stat().st_mtime_ns
    assert folder.ensure_folder_dataset(source, data_dir) == directory
    assert (directory / "colorjax_build.json").stat().st_mtime_ns == stamp  # not rebuilt
    Image.fromarray(random_photo(24, 32, 50)).save(source / "new.png")
    folder.ensure_folder_dataset(source, data_dir)
    assert sum(folder.read_build_record(directory)["examples"].values()) == 5


def make_tfrecord_dataset(tmp_path) -> tuple[pathlib.Path, int]:
    """A TFDS dataset prepared as tfrecord, as TFDS with TensorFlow would leave it."""
    from array_record.python import array_record_data_source
    from tensorflow_datasets.core import dataset_info, file_adapters

    source, data_dir = tmp_path / "beans_like", tmp_path / "tfds"
    make_folder(source, n_good=6)
    folder.build_folder_dataset(source, data_dir, ratios=(0.5, 0.0, 0.5))
    directory = folder.dataset_dir(data_dir, "beans_like")
    proto = dataset_info.read_proto_from_builder_dir(directory)
    as_tfrecord = dataset_info.get_split_dict_from_proto(proto, directory, file_format="tfrecord")
    as_array_record = dataset_info.get_split_dict_from_proto(proto, directory, file_format="array_record")
    for split, info in as_array_record.items():
        for old, new in zip(info.filepaths, as_tfrecord[split].filepaths):
            reader = array_record_data_source.ArrayRecordDataSource([os.fspath(old)])
            tfrecord.write_tfrecord(new, [reader[i] for i in range(len(reader))])
            os.remove(old)
    proto.file_format = file_adapters.FileFormat.TFRECORD.value
    dataset_info.write_dataset_info_proto(proto, directory)
    return data_dir, 6


def test_crc32c_matches_the_standard_check_value():
    assert tfrecord.crc32c(b"123456789") == 0xE3069283  # RFC 3720 / iSCSI check value


def test_convert_tfrecord_dataset_to_array_record(tmp_path, capsys):
    data_dir, n_images = make_tfrecord_dataset(tmp_path)
    with pytest.raises(NotImplementedError):  # tfds itself: tfrecord has no random access
        tfds.data_source("beans_like", split="train", data_dir=os.fspath(data_dir), download=False)
    with pytest.raises(ValueError, match="colorjax data convert beans_like"):
        make_loader("beans_like", "train", crop_size=8, batch_size=2, train=False, data_dir=os.fspath(data_dir))
    assert main(["data", "convert", "beans_like", "--data-dir", os.fspath(data_dir), "--verify-data"]) == 0
    assert '"examples"' in capsys.readouterr().out
    total = 0
    for split in ("train", "test"):
        ds = tfds.data_source("beans_like", split=split, data_dir=os.fspath(data_dir), download=False)
        total += len(ds)
        assert ds[0]["image"].shape[-1] == 3
    assert total == n_images
    assert tfrecord.convert_to_array_record("beans_like", data_dir)["already_array_record"]


def test_corrupt_tfrecord_is_reported_with_its_file(tmp_path):
    path = tmp_path / "x.tfrecord"
    tfrecord.write_tfrecord(path, [b"abc", b"defgh"])
    assert list(tfrecord.read_tfrecord(path, verify_data=True)) == [b"abc", b"defgh"]
    data = bytearray(path.read_bytes())
    data[13] ^= 0xFF  # a byte of the first record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt record data"):
        list(tfrecord.read_tfrecord(path, verify_data=True))
    path.write_bytes(bytes(data[:-3]))
    with pytest.raises(ValueError, match=str(path)):
        list(tfrecord.read_tfrecord(path, verify_data=False))


def test_cli_build_info_and_errors(tmp_path, capsys):
    source, data_dir = tmp_path / "cli_photos", tmp_path / "d"
    make_folder(source, n_good=5)
    assert main(["data", "info", os.fspath(source), "--data-dir", os.fspath(data_dir)]) == 0
    assert "not built yet" in capsys.readouterr().out
    assert main(["data", "build", os.fspath(source), "--data-dir", os.fspath(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "skipped broken.jpg" in out and "dataset cli_photos" in out
    assert main(["data", "info", os.fspath(source), "--data-dir", os.fspath(data_dir)]) == 0
    assert "built at" in capsys.readouterr().out
    assert main(["data", "info", "cli_photos", "--data-dir", os.fspath(data_dir)]) == 0
    assert "array_record" in capsys.readouterr().out
    assert main(["data", "info", "embedded"]) == 0
    assert "chelsea" in capsys.readouterr().out
    assert main(["data", "build", os.fspath(tmp_path / "missing"), "--data-dir", os.fspath(data_dir)]) == 1
    assert "does not exist" in capsys.readouterr().err
