"""Every ``full``-scale row config starts and trains 2 steps (NoGAN: one step of each phase), with
validation and a checkpoint at the end, on a stand-in ``imagenet2012`` in the layout that
``colorjax data convert`` leaves (tfrecord shards as TFDS prepared them, array_record shards beside
them): a user's first ImageNet run must not die on a config error. Only the width, the batch, the
worker count, the number of prior images and the run length are reduced; crop sizes, methods,
models, bins, losses and schedules are the configs' own."""

import io
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from colorjax.data import make_loader, tfrecord
from colorjax.training import apply_overrides, train
from colorjax.training.commands import load_config_module

pytestmark = pytest.mark.slow  # full-scale row configs on a stand-in imagenet2012: minutes on 2 CPU cores

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"

ROWS = [
    ("zhang_classification", {}),
    ("zhang_classification_rebalanced", {}),
    ("zhang_regression_l2", {}),
    ("comparison_unet", {}),
    ("comparison_pix2pix", {}),
    ("comparison_nogan", {}),
    ("rrelu_patchnet", {}),
    ("rrelu_patchnet", {"activation": "elu", "batch_norm": False}),
]
REDUCED = ["model.width=0.0625", "discriminator.width=0.0625", "data.batch_size=2", "data.eval_batch_size=2",
           "data.worker_count=0", "prior.images=4", "train.num_steps=2", "train.eval_images=2",
           "train.progress_bar=false", "train.tensorboard=false"]
NOGAN_PHASES = ["nogan.generator_steps=1", "nogan.critic_steps=1", "nogan.gan_steps=1", "nogan.cycles=1",
                "train.num_steps=0"]


@pytest.fixture(scope="module")
def imagenet2012(tmp_path_factory) -> pathlib.Path:
    """A TFDS data dir holding ``imagenet2012`` with TFDS's own features and version for it (train
    and validation), written as tfrecord and converted by the library's converter, as a user's
    prepared ImageNet would be after ``colorjax data convert imagenet2012``."""
    import tensorflow_datasets as tfds
    from array_record.python import array_record_data_source
    from tensorflow_datasets.core import dataset_info, file_adapters

    data_dir = tmp_path_factory.mktemp("tfds")
    reference = tfds.builder("imagenet2012", data_dir=data_dir)
    directory = data_dir / "imagenet2012" / str(reference.version)
    directory.mkdir(parents=True)
    identity = tfds.core.DatasetIdentity(name="imagenet2012", version=reference.version, data_dir=os.fspath(directory),
                                         module_name="test")
    info = tfds.core.DatasetInfo(builder=identity, features=reference.info.features)
    writer = tfds.core.SequentialWriter(info, 4, file_format="array_record")
    writer.initialize_splits(["train", "validation"])
    rng = np.random.default_rng(0)

    def example(i):
        h, w = rng.integers(48, 80, 2)
        smooth = np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((h // 4 + 1, w // 4 + 1, 1)))[:h, :w]
        encoded = io.BytesIO()
        Image.fromarray(smooth.astype(np.uint8)).save(encoded, format="JPEG", quality=95)
        return {"image": encoded.getvalue(), "label": i % 1000, "file_name": f"n{i:08d}.JPEG"}

    writer.add_examples({"train": [example(i) for i in range(8)], "validation": [example(100 + i) for i in range(4)]})
    writer.close_all()
    # As TFDS prepares ImageNet: tfrecord shards only.
    proto = dataset_info.read_proto_from_builder_dir(directory)
    as_tfrecord = dataset_info.get_split_dict_from_proto(proto, directory, file_format="tfrecord")
    for split, split_info in dataset_info.get_split_dict_from_proto(proto, directory, file_format="array_record").items():
        for old, new in zip(split_info.filepaths, as_tfrecord[split].filepaths):
            reader = array_record_data_source.ArrayRecordDataSource([os.fspath(old)])
            tfrecord.write_tfrecord(new, [reader[i] for i in range(len(reader))])
            os.remove(old)
    proto.file_format = file_adapters.FileFormat.TFRECORD.value
    dataset_info.write_dataset_info_proto(proto, directory)
    converted = tfrecord.convert_to_array_record("imagenet2012", data_dir)
    assert converted["examples"] == {"train": 8, "validation": 4}
    return data_dir


def test_converted_imagenet2012_is_read_through_the_code_builder(imagenet2012):
    """TFDS's registered imagenet2012 builder reads the array_record shards that the converter
    added (it used to see only the tfrecord ones and refuse random access)."""
    loader = make_loader("imagenet2012", "validation", crop_size=16, batch_size=2, train=False, data_dir=imagenet2012)
    assert len(loader) == 4 and next(iter(loader))["rgb"].shape == (2, 16, 16, 3)


def _full_config(name: str, kwargs: dict):
    return load_config_module(EXPERIMENTS / f"{name}.py").get_config("full", **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", ROWS, ids=[f"{n}{'-' + '-'.join(map(str, k.values())) if k else ''}" for n, k in ROWS])
def test_full_scale_config_starts_and_trains_on_imagenet2012(name, kwargs, imagenet2012, tmp_path):
    config = _full_config(name, kwargs)
    assert config.data.spec == "imagenet2012" and config.data.crop_size >= 176  # the full scale itself
    overrides = REDUCED + (NOGAN_PHASES if config.method == "nogan" else []) + [f"data.data_dir={imagenet2012}"]
    config = apply_overrides(config, overrides)
    if config.loss.perceptual_weight > 0:  # the perceptual loss needs converted VGG16 weights: here small random ones
        from flax import nnx

        from colorjax.models import VGG16Features
        from colorjax.checkpointing import save_vgg16

        with pytest.raises(ValueError, match="colorjax convert vgg16"):  # what a user without them is told
            train(config, tmp_path / "refused")
        config.loss.vgg_checkpoint = str(tmp_path / "vgg16")
        save_vgg16(tmp_path / "vgg16", VGG16Features(tuple(config.loss.vgg_layers), width=1 / 16, rngs=nnx.Rngs(0)), 1 / 16)
    summary = train(config, tmp_path / "run")
    expected_steps = 3 if config.method == "nogan" else 2
    assert summary["steps"] == expected_steps
    assert {r["phase"] for r in summary["train"]} == (
        {"supervised", "critic", "gan"} if config.method == "nogan" else {"gan" if config.method == "pix2pix" else "supervised"})
    assert all(np.isfinite(r["loss"]) for r in summary["train"])
    assert summary["validation"] and np.isfinite(summary["validation"][-1]["val_loss"])
    assert (tmp_path / "run" / "checkpoints" / str(expected_steps)).is_dir()
