"""The grain pipeline: crops, flips, sharding, exact resume, gray / bad counting, sources."""

import hashlib
from collections import Counter
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from skimage.color import rgb2lab

from conftest import random_photo
from colorjax.bins import is_colourful
from colorjax.data import embedded, folder, make_loader, pipeline
from colorjax.data.transforms import has_chroma

SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"


def save_folder(root: pathlib.Path, images: dict[str, np.ndarray]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(root / name)
    return os.fspath(root)


def digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def batches(loader, count=None, iterator=None):
    iterator = iterator or iter(loader)
    return [batch["rgb"] for _, batch in zip(range(count) if count else iter(int, 1), iterator)]


def test_embedded_default_roles_and_batches():
    assert [name for name, _ in embedded.embedded_split("test")] == ["chelsea", "coffee"]
    train_names = [name for name, _ in embedded.embedded_split("train")]
    assert {"astronaut", "rocket", "motorcycle_left", "motorcycle_right"} <= set(train_names)
    assert not set(train_names) & set(embedded.TEST_PHOTOS)
    (batch,) = batches(make_loader("embedded", "test", crop_size=48, batch_size=4, train=False))
    assert batch.shape == (2, 48, 48, 3) and batch.dtype == np.uint8  # one epoch, short last batch
    train = batches(make_loader("embedded", "train", crop_size=32, batch_size=4, train=True), 3)
    assert all(b.shape == (4, 32, 32, 3) for b in train)


def smooth(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    return np.stack([255 * x, 255 * y, 127 + 120 * np.sin(6 * x + 3 * y)], -1).astype(np.uint8)


def test_centre_crop_and_upscaling_match_a_full_resize(tmp_path):
    large, small = random_photo(40, 60, 0), smooth(10, 14)  # 40 x 60 -> 32 x 48 exactly; 10 x 14 does not
    for pixels, name in [(large, "large.png"), (small, "small.png")]:
        spec = save_folder(tmp_path / name.split(".")[0], {name: pixels})
        loader = make_loader(spec, "train", crop_size=32, batch_size=1, train=False, data_dir=tmp_path / "d", split_ratios=(1, 0, 0))
        (out,) = batches(loader)
        height, width = pixels.shape[:2]
        scale = 32 / min(height, width)
        size = (round(width * scale), round(height * scale))
        full = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)).astype(int)
        top, left = (size[1] - 32) // 2, (size[0] - 32) // 2
        reference = full[top : top + 32, left : left + 32]
        assert np.abs(out[0].astype(int) - reference).mean() < 1.0
        assert np.abs(out[0].astype(int) - reference).max() <= 3


def test_random_crops_are_windows_and_flips_happen(tmp_path):
    pixels = random_photo(32, 64, 2)  # shorter side = crop size: crops are exact windows
    spec = save_folder(tmp_path / "wide" / "train", {"wide.png": pixels})  # a train/ subfolder
    windows = {digest(pixels[:, x : x + 32]): ("plain", x) for x in range(33)}
    windows |= {digest(pixels[:, x : x + 32][:, ::-1]): ("flipped", x) for x in range(33)}
    loader = make_loader(spec, "train", crop_size=32, batch_size=1, train=True, data_dir=tmp_path / "d")
    seen = [windows[digest(b[0])] for b in batches(loader, 24)]  # KeyError if not a window
    assert {kind for kind, _ in seen} == {"plain", "flipped"}
    assert len({x for _, x in seen}) > 5


def test_shards_are_disjoint_and_cover_the_split(tmp_path):
    images = {f"{i}.png": random_photo(20, 20, 10 + i) for i in range(10)}
    spec = save_folder(tmp_path / "ten", images)
    common = dict(crop_size=20, batch_size=3, train=False, data_dir=tmp_path / "d")
    whole = {digest(im) for b in batches(make_loader(spec, "train", **common)) for im in b}
    # the 80/10/10 rule puts some of the ten in other splits; shards partition whatever train has
    shards = [{digest(im) for b in batches(make_loader(spec, "train", shard_index=i, shard_count=3, **common)) for im in b}
              for i in range(3)]
    assert set().union(*shards) == whole and sum(map(len, shards)) == len(whole)


def test_resume_from_state_gives_the_same_batches(tmp_path):
    images = {f"{i}.png": random_photo(24, 30, 30 + i) for i in range(9)}
    spec = save_folder(tmp_path / "nine", images)
    loader = make_loader(spec, "train", crop_size=16, batch_size=3, train=True, seed=7, data_dir=tmp_path / "d")
    iterator = iter(loader)
    batches(loader, 4, iterator)
    state = json.loads(json.dumps(iterator.get_state()))  # what a checkpoint stores
    expected, counters = batches(loader, 5, iterator), iterator.counters
    resumed = iter(loader)
    resumed.set_state(state)
    for a, b in zip(expected, batches(loader, 5, resumed)):
        np.testing.assert_array_equal(a, b)
    assert resumed.counters == counters and counters["epoch"] == 27 // len(loader)
    other_seed = make_loader(spec, "train", crop_size=16, batch_size=3, train=True, seed=8, data_dir=tmp_path / "d")
    assert not all(np.array_equal(a, b) for a, b in zip(batches(loader, 3), batches(other_seed, 3)))


def test_gray_images_are_dropped_and_counted(tmp_path):
    gray = np.repeat(random_photo(24, 24, 3)[..., :1], 3, axis=-1)
    near_gray = np.clip(gray.astype(int) + [0, 1, 0], 0, 255).astype(np.uint8)  # |a|, |b| < 5
    sepia = np.stack([gray[..., 0], (gray[..., 0] * 0.8).astype(np.uint8), (gray[..., 0] * 0.6).astype(np.uint8)], -1)
    images = {"gray.png": gray, "near_gray.png": near_gray, "sepia.png": sepia, "colour.png": random_photo(24, 24, 4)}
    spec = save_folder(tmp_path / "mixed", images)
    for pixels in images.values():  # the numpy rule agrees with bins.is_colourful on skimage Lab
        assert has_chroma(pixels) == bool(is_colourful(rgb2lab(pixels[::4, ::4])[..., 1:]))
    assert [has_chroma(p) for p in images.values()] == [False, False, True, True]
    folder.build_folder_dataset(spec, tmp_path / "d", ratios=(1, 0, 0))
    loader = make_loader(spec, "train", crop_size=24, batch_size=8, train=False, data_dir=tmp_path / "d")
    iterator = iter(loader)
    (batch,) = batches(loader, iterator=iterator)
    assert batch.shape[0] == 2
    assert iterator.counters == {"images_seen": 4, "images_yielded": 2, "gray_dropped": 2, "bad_skipped": 0, "epoch": 1}
    kept = batches(make_loader(spec, "train", crop_size=24, batch_size=8, train=False, drop_gray=False, data_dir=tmp_path / "d"))
    assert kept[0].shape[0] == 4


def write_tfds_dataset(data_dir: pathlib.Path, name: str, images: list[bytes]) -> None:
    directory = data_dir / name / "1.0.0"
    directory.mkdir(parents=True)
    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 3)), "label": tfds.features.ClassLabel(num_classes=2)})
    identity = tfds.core.DatasetIdentity(name=name, version=tfds.core.Version("1.0.0"), data_dir=os.fspath(directory), module_name="test")
    writer = tfds.core.SequentialWriter(tfds.core.DatasetInfo(builder=identity, features=features), 100, file_format="array_record")
    writer.initialize_splits(["train"])
    writer.add_examples({"train": [{"image": data, "label": 0} for data in images]})
    writer.close_all()


def test_prepared_tfds_dataset_with_a_corrupt_record(tmp_path, caplog):
    good = []
    for seed in range(3):
        path = tmp_path / f"{seed}.png"
        Image.fromarray(random_photo(20, 28, seed)).save(path)
        good.append(path.read_bytes())
    write_tfds_dataset(tmp_path / "tfds", "tiny_prepared", good[:2] + [b"\x89PNG garbage"] + good[2:])
    loader = make_loader("tiny_prepared", "train", crop_size=16, batch_size=2, train=False, data_dir=tmp_path / "tfds")
    iterator = iter(loader)
    assert [b.shape[0] for b in batches(loader, iterator=iterator)] == [2, 1]
    assert iterator.counters["bad_skipped"] == 1 and iterator.counters["images_seen"] == 4
    assert "tiny_prepared" in caplog.text and "record 2" in caplog.text


def test_worker_processes_give_the_same_batches():
    common = dict(crop_size=24, batch_size=3, train=True, seed=3)
    in_process = batches(make_loader("embedded", "train", **common), 4)
    iterator = iter(make_loader("embedded", "train", worker_count=1, cache_mb=16, **common))  # the cache pickles
    with_worker = batches(None, 4, iterator)
    iterator.close()
    for a, b in zip(in_process, with_worker):
        np.testing.assert_array_equal(a, b)


def test_decoded_image_cache_gives_the_same_batches_and_skips_decoding(tmp_path, monkeypatch):
    root = tmp_path / "jpegs"
    root.mkdir()
    for i in range(7):  # JPEGs, so the decoder's reduced DCT scale is used and cached
        Image.fromarray(random_photo(60, 80, 50 + i)).save(root / f"{i}.jpg", quality=90)
    common = dict(crop_size=16, batch_size=4, train=True, seed=5, data_dir=tmp_path / "d", split_ratios=(1, 0, 0))
    plain_iterator = iter(make_loader(os.fspath(root), "train", **common))
    plain = batches(None, 12, plain_iterator)  # about seven epochs of 7 records
    from colorjax.data import transforms

    decodes = []
    decode = transforms.CropImage._decode
    # the uncached loader's reader threads may still be prefetching: count the cached loader's decodes
    monkeypatch.setattr(transforms.CropImage, "_decode", lambda self, image, name: (
        self.cache is not None and decodes.append(name)) or decode(self, image, name))
    cached_loader = make_loader(os.fspath(root), "train", cache_mb=64, **common)
    iterator = iter(cached_loader)
    cached = batches(None, 12, iterator)
    # A reader thread that misses an image decodes and keeps it, so each thread decodes each image at
    # most once, however many epochs go by (threads may race on the same image early on).
    assert len(set(decodes)) == 7 and max(Counter(decodes).values()) <= pipeline.READ_THREADS
    assert len(decodes) < iterator.counters["images_seen"] / 2
    for a, b in zip(plain, cached, strict=True):
        np.testing.assert_array_equal(a, b)
    assert iterator.counters == plain_iterator.counters and iterator.counters["epoch"] >= 6
    small = transforms.DecodedImageCache(max_bytes=3 * 40 * 30 * 3)  # room for 3 images at half scale
    for index in range(5):
        small.put(index, np.zeros((30, 40, 3), np.uint8))
    assert len(small) == 3 and small.nbytes == 3 * 40 * 30 * 3 and small.get(4) is None
    with pytest.raises(ValueError, match="cache_mb"):
        make_loader(os.fspath(root), "train", cache_mb=-1, **common)


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="shard_index"):
        make_loader(os.fspath(tmp_path / "nowhere"), "train", crop_size=8, batch_size=2, train=True, shard_index=2, shard_count=2)
    with pytest.raises(ValueError, match="resize_size"):
        make_loader("embedded", "train", crop_size=64, resize_size=32, batch_size=2, train=True)
    with pytest.raises(FileNotFoundError, match="neither"):
        make_loader(os.fspath(tmp_path / "nowhere"), "train", crop_size=8, batch_size=2, train=True)
    with pytest.raises(ValueError, match="no split"):
        make_loader("embedded", "holdout", crop_size=8, batch_size=2, train=True)


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/data/imagenet-samples is not present")
def test_imagenet_samples_folder_builds_and_reads(tmp_path):
    record = folder.build_folder_dataset(SAMPLES, tmp_path / "d")
    assert sum(record["examples"].values()) + len(record["skipped"]) == record["files_found"] == 974
    assert record["examples"]["train"] == 779  # the pinned hash rule, 80 / 10 / 10
    loader = make_loader(os.fspath(SAMPLES), "validation", crop_size=32, batch_size=16, train=False,
                         data_dir=tmp_path / "d", shard_index=0, shard_count=4)
    iterator = iter(loader)
    sizes = [b.shape[0] for b in batches(loader, iterator=iterator)]
    assert sum(sizes) + iterator.counters["gray_dropped"] == len(loader) == 25


def test_each_shard_draws_its_own_crops_and_flips(tmp_path):
    """Two shards (two hosts) of eight copies of one image: the j-th image of each shard is the same
    picture, so only the seed tells their crops and flips apart."""
    pixels = random_photo(32, 64, 3)  # shorter side = crop size: crops are exact windows
    spec = save_folder(tmp_path / "copies" / "train", {f"{i}.png": pixels for i in range(8)})
    windows = {digest(pixels[:, x : x + 32]): ("plain", x) for x in range(33)}
    windows |= {digest(pixels[:, x : x + 32][:, ::-1]): ("flipped", x) for x in range(33)}
    common = dict(crop_size=32, batch_size=1, train=True, seed=5, shard_count=2, data_dir=tmp_path / "d")
    draws = [[windows[digest(b[0])] for b in batches(make_loader(spec, "train", shard_index=i, **common), 16)]
             for i in range(2)]
    assert draws[0] != draws[1]
    assert sum(a != b for a, b in zip(*draws)) >= 8  # not one coincidence: most of the 16 differ
    again = [windows[digest(b[0])] for b in batches(make_loader(spec, "train", shard_index=1, **common), 16)]
    assert again == draws[1]  # still a function of the seed and the shard
    assert pipeline.shard_seed(5, 0) == 5 and len({pipeline.shard_seed(5, i) for i in range(64)}) == 64
