"""Converts a TFDS dataset prepared as tfrecord into array_record, without TensorFlow.

TFDS's own ``convert_format`` reads shards through ``tf.data.TFRecordDataset``, so it needs
TensorFlow.  The records themselves are serialized ``tf.train.Example`` protos in both formats, so
no parsing is needed: this module reads the tfrecord framing (per record: uint64 length, masked
CRC-32C of the length, the bytes, masked CRC-32C of the bytes; little-endian), writes the same bytes
into array_record shards named as TFDS names them, beside the tfrecord shards, and adds
``array_record`` to the dataset's ``alternativeFileFormats`` in ``dataset_info.json``, so that
``tfds.data_source`` picks it.  The length checksums are always verified; the data checksums when
``google_crc32c`` is installed (pure-Python CRC-32C runs at a few MB/s), or when asked to.
"""

from __future__ import annotations

import functools
import os
import pathlib
import struct
from collections.abc import Iterable, Iterator

_CRC32C_POLY = 0x82F63B78  # Castagnoli polynomial, reflected (RFC 3720)
_MASK_DELTA = 0xA282EAD8  # TFRecord's checksum mask


@functools.cache
def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (``google_crc32c`` when installed, else a table-driven loop)."""
    try:
        import google_crc32c
    except ImportError:
        table, crc = _crc_table(), 0xFFFFFFFF
        for byte in data:
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    return google_crc32c.value(bytes(data))


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def fast_crc_available() -> bool:
    try:
        import google_crc32c  # noqa: F401
    except ImportError:
        return False
    return True


def write_tfrecord(path: str | os.PathLike, records: Iterable[bytes]) -> None:
    """Writes records with tfrecord framing (used by the tests to make tfrecord datasets)."""
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc32c(length)) + data)
            f.write(struct.pack("<I", masked_crc32c(data)))


def read_tfrecord(path: str | os.PathLike, *, verify_data: bool | None = None) -> Iterator[bytes]:
    """Yields the records of a tfrecord file, raising ``ValueError`` naming the file on corruption."""
    verify_data = fast_crc_available() if verify_data is None else verify_data
    with open(path, "rb") as f:
        offset = 0
        while header := f.read(12):
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header at byte {offset}")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                raise ValueError(f"{path}: corrupt record length at byte {offset}")
            data, footer = f.read(length), f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: truncated record at byte {offset}")
            if verify_data and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: corrupt record data at byte {offset}")
            offset += 16 + length
            yield data


def find_dataset_dir(data_dir: str | os.PathLike, spec: str) -> pathlib.Path:
    """The prepared dataset folder of ``name[/config][:version]`` in ``data_dir`` (latest version)."""
    name_config, _, version = spec.partition(":")
    root = pathlib.Path(data_dir).expanduser() / name_config
    found = [p.parent for p in root.glob("*/dataset_info.json")] + [p.parent for p in root.glob("*/*/dataset_info.json")]
    found = [p for p in found if not version or p.name == version]
    if not found:
        raise FileNotFoundError(f"no prepared dataset {spec!r} under {data_dir} (looked for {root}/.../dataset_info.json)")
    configs = {p.parent for p in found}
    if len(configs) > 1:
        raise ValueError(f"{spec!r} has several configs in {data_dir}; name one of {sorted(c.name for c in configs)}")
    return max(found, key=lambda p: tuple(int(x) if x.isdigit() else 0 for x in p.name.split(".")))


def convert_to_array_record(spec: str, data_dir: str | os.PathLike, *, verify_data: bool | None = None) -> dict:
    """Writes array_record shards beside a dataset's tfrecord shards; returns examples per split."""
    from array_record.python import array_record_module
    from tensorflow_datasets.core import dataset_info, file_adapters

    directory = find_dataset_dir(data_dir, spec)
    proto = dataset_info.read_proto_from_builder_dir(directory)
    array_record = file_adapters.FileFormat.ARRAY_RECORD
    if array_record.value in (proto.file_format, *proto.alternative_file_formats):
        return {"dataset_dir": str(directory), "already_array_record": True}
    sources = dataset_info.get_split_dict_from_proto(proto, directory, file_format=file_adapters.FileFormat.TFRECORD)
    targets = dataset_info.get_split_dict_from_proto(proto, directory, file_format=array_record)
    converted = {}
    for split, source in sources.items():
        shards = zip(source.shard_lengths, source.filepaths, targets[split].filepaths, strict=True)
        for expected, source_path, target_path in shards:
            partial = target_path.with_name(target_path.name + ".incomplete")
            writer = array_record_module.ArrayRecordWriter(os.fspath(partial), "group_size:1")
            count = 0
            for count, record in enumerate(read_tfrecord(source_path, verify_data=verify_data), 1):
                writer.write(record)
            writer.close()
            if count != expected:
                partial.unlink()
                raise ValueError(f"{source_path}: {count} records, dataset_info.json says {expected}")
            partial.rename(target_path)
        converted[split] = source.num_examples
    proto.alternative_file_formats.append(array_record.value)
    dataset_info.write_dataset_info_proto(proto, directory)
    return {"dataset_dir": str(directory), "examples": converted, "data_checksums_verified": fast_crc_available() if verify_data is None else verify_data}
