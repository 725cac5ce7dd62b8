"""One interface over the three kinds of dataset ``make_loader`` reads.

A spec is ``"embedded"`` (the photos in ``embedded.py``), the path of an image folder (built once
into ``DATA_DIR`` by ``folder.py``), or the name of a TFDS dataset prepared in ``DATA_DIR``
(``imagenet2012``, ``places365_small:2.1.0``, ...), read with ``tfds.data_source`` without
TensorFlow and without any download.  Each opens as a random-access sequence of records
``{"image": encoded bytes | uint8 array, ...}`` that grain can index and pickle.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Sequence

from colorjax.data import embedded, folder
from colorjax.data.splits import normalize_split

EMBEDDED = "embedded"
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[\w.-]+)?(:[\d.*]+)?$")


@dataclasses.dataclass(frozen=True)
class Source:
    """A split of a dataset: its records and what to call it in messages."""

    description: str
    records: Sequence
    image_key: str = "image"

    def __len__(self) -> int:
        return len(self.records)


def default_data_dir() -> str:
    """TFDS's default data dir (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)."""
    from tensorflow_datasets.core import constants

    return os.fspath(constants.DATA_DIR)


def spec_kind(spec: str) -> str:
    """``"embedded"``, ``"folder"`` or ``"tfds"``; a path that does not exist is an error."""
    if spec == EMBEDDED:
        return "embedded"
    if os.path.isdir(os.path.expanduser(spec)):
        return "folder"
    if _TFDS_NAME.match(spec) and not os.path.exists(spec):
        return "tfds"
    raise FileNotFoundError(f"{spec!r} is neither an existing image folder, 'embedded', nor a TFDS dataset name")


def open_source(spec: str, split: str, *, data_dir=None, image_key: str = "image", split_ratios=None) -> Source:
    """Opens one split of a dataset spec (building a folder dataset first if needed, with
    ``split_ratios``, default: as already built, else 80 / 10 / 10)."""
    split = normalize_split(split)
    match spec_kind(spec):
        case "embedded":
            records = [{"image": image, "filename": name} for name, image in embedded.embedded_split(split)]
            return Source(f"embedded/{split}", records)
        case "folder":
            directory = folder.ensure_folder_dataset(spec, data_dir or default_data_dir(), ratios=split_ratios)
            return Source(f"{spec} ({directory}) / {split}", _folder_records(directory, split))
        case "tfds":
            return Source(f"tfds {spec} / {split}", _tfds_records(spec, split, data_dir, image_key), image_key)


def _skip_image_decoding(image_key: str) -> dict:
    import tensorflow_datasets as tfds

    return {image_key: tfds.decode.SkipDecoding()}


def _check_split(available, split: str, where: str) -> None:
    if split not in available:
        raise ValueError(f"{where} has no split {split!r}; it has {sorted(available)}")


def _folder_records(directory: pathlib.Path, split: str):
    import tensorflow_datasets as tfds

    folder.check_features(pathlib.Path(directory) / folder.FEATURES_FILE, folder.folder_features())  # before TFDS reads it
    builder = tfds.builder_from_directory(os.fspath(directory))
    _check_split(builder.info.splits.keys(), split, str(directory))
    return builder.as_data_source(split=split, decoders=_skip_image_decoding("image"))


def _tfds_records(name: str, split: str, data_dir: str | None, image_key: str):
    import tensorflow_datasets as tfds

    data_dir = data_dir or default_data_dir()
    for features_file in _features_files(data_dir, name):  # before TFDS reads them (folder.check_features)
        folder.check_features(features_file)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception as error:  # noqa: BLE001 - unknown names raise several tfds error types
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{name!r} is not an image folder, and TFDS cannot open it from {data_dir} ({first_line})"
        ) from error
    if not prepared:
        raise FileNotFoundError(
            f"TFDS dataset {name!r} is not prepared in {data_dir}; prepare it there first "
            "(colorjax never downloads datasets)"
        )
    _check_split(builder.info.splits.keys(), split, f"TFDS dataset {name!r}")
    if image_key not in builder.info.features:
        raise ValueError(f"TFDS dataset {name!r} has no feature {image_key!r}: {list(builder.info.features)}")
    _restore_alternative_formats(builder)
    try:
        return builder.as_data_source(split=split, decoders=_skip_image_decoding(image_key))
    except NotImplementedError as error:
        raise ValueError(
            f"TFDS dataset {name!r} in {data_dir} is stored as {builder.info.file_format.value}, which has "
            f"no random access; run `colorjax data convert {name} --data-dir {data_dir}` once"
        ) from error


def _features_files(data_dir: str, name: str) -> list[pathlib.Path]:
    """The features.json files TFDS may read for ``name`` (``NAME[/CONFIG][:VERSION]``) in ``data_dir``."""
    base = pathlib.Path(data_dir).expanduser() / name.split(":")[0]
    if not base.is_dir():
        return []
    return sorted(p for pattern in ("*/features.json", "*/*/features.json") for p in base.glob(pattern))


def _restore_alternative_formats(builder) -> None:
    """Make a code-defined TFDS builder (``imagenet2012``, ...) see the array_record shards that
    ``colorjax data convert`` added: tfds 4.9.10 restores ``dataset_info.json``'s
    ``alternativeFileFormats`` into the builder's proto but not into the list that
    ``as_data_source`` consults, so such a dataset stayed "tfrecord only" after conversion."""
    from tensorflow_datasets.core import dataset_info

    stored = dataset_info.read_proto_from_builder_dir(builder.data_dir)
    known = {f.value for f in builder.info.available_file_formats()}
    for value in stored.alternative_file_formats:
        if value not in known:
            builder.info.add_alternative_file_format(value)
