"""``colorjax data build | convert | info``: build a folder into a dataset, convert a tfrecord
TFDS dataset to array_record, describe any dataset spec."""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys

from colorjax.data import embedded, folder, sources, tfrecord
from colorjax.data.splits import DEFAULT_RATIOS, assign_splits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="build an image folder into a TFDS array_record dataset")
    build.add_argument("folder", help="folder of images (searched recursively)")
    build.add_argument("--data-dir", help="TFDS data dir to write to (default: TFDS's)")
    build.add_argument("--name", help="dataset name (default: from the folder's name)")
    build.add_argument("--ratios", nargs=3, type=float, default=DEFAULT_RATIOS, metavar=("TRAIN", "VAL", "TEST"),
                       help="split ratios when the folder has no train/ val/ test/ subfolders (default 0.8 0.1 0.1)")
    build.add_argument("--overwrite", action="store_true",
                       help="replace DATA_DIR/NAME/1.0.0 even when it is not an earlier build of this folder")
    convert = sub.add_parser("convert", help="add array_record shards to a TFDS dataset prepared as tfrecord")
    convert.add_argument("name", help="TFDS name, e.g. imagenet2012 or places365_small/config:2.1.0")
    convert.add_argument("--data-dir", required=True, help="the TFDS data dir that holds the dataset")
    convert.add_argument("--verify-data", action="store_true",
                         help="check every record's CRC even without google_crc32c (slow)")
    info = sub.add_parser("info", help="describe a dataset spec: embedded, a folder, or a TFDS name")
    info.add_argument("spec")
    info.add_argument("--data-dir", help="TFDS data dir (default: TFDS's)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        match args.data_command:
            case "build":
                record = folder.build_folder_dataset(
                    args.folder, args.data_dir or sources.default_data_dir(), name=args.name, ratios=args.ratios,
                    overwrite=args.overwrite,
                )
                _print_build_record(record)
            case "convert":
                print(json.dumps(tfrecord.convert_to_array_record(
                    args.name, args.data_dir, verify_data=True if args.verify_data else None), indent=1))
            case "info":
                _print_info(args.spec, args.data_dir or sources.default_data_dir())
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a read-only or full data dir, a folder that cannot be listed
        print(f"error: {error.filename or args.data_command}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def _print_build_record(record: dict) -> None:
    print(f"dataset {record['name']} from {record['source_folder']} ({record['split_rule']})")
    print(f"examples: {record['examples']}; conversions: {record['conversions']}; "
          f"skipped: {len(record['skipped'])}; built in {record.get('build_seconds', '?')} s")
    for skipped in record["skipped"]:
        print(f"  skipped {skipped['file']}: {skipped['reason']}")


def _print_info(spec: str, data_dir: str) -> None:
    match sources.spec_kind(spec):
        case "embedded":
            for name, image in embedded.embedded_photos().items():
                role = "test" if name in embedded.TEST_PHOTOS else "train"
                print(f"{name:18s} {role:5s} {image.shape[1]} x {image.shape[0]}")
        case "folder":
            root = pathlib.Path(spec).expanduser().resolve()
            paths = folder.list_images(root)
            directory = folder.dataset_dir(data_dir, folder.dataset_name_for(root))
            record = folder.read_build_record(directory)
            if record and record["fingerprint"] == folder.fingerprint(root, paths):
                print(f"built at {directory}")
                _print_build_record(record)
            else:
                counts = {split: len(files) for split, files in assign_splits(root, paths).items()}
                state = "out of date" if record else "not built yet"
                print(f"{root}: {len(paths)} image files, {state} (build target {directory}); splits {counts}")
        case "tfds":
            import tensorflow_datasets as tfds

            builder = tfds.builder(spec, data_dir=data_dir)
            if not builder.is_prepared():
                raise FileNotFoundError(f"TFDS dataset {spec!r} is not prepared in {data_dir}")
            formats = sorted(f.value for f in builder.info.available_file_formats())
            print(f"{builder.info.full_name} at {builder.data_dir}; file formats {formats}")
            for name, split in builder.info.splits.items():
                print(f"  {name}: {split.num_examples} examples in {split.num_shards} shards")
            print(f"  features: {builder.info.features}")
