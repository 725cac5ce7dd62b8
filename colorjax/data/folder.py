"""Builds a folder of images, once, into a TFDS array_record dataset in a data dir.

Layout: ``DATA_DIR/NAME/1.0.0/`` holds TFDS's ``dataset_info.json`` and ``features.json``, the
array_record shards, and ``colorjax_build.json`` (source folder, fingerprint, split rule, counts
and every skipped file with its reason).  It is written with ``tfds.core.SequentialWriter``, which
needs no TensorFlow (``tfds.dataset_builders.store_as_tfds_dataset`` would go through
``download_and_prepare``, which in tfds 4.9.10 imports ``importlib_resources``, a package tfds
only declares for Python < 3.9), and read back with ``tfds.data_source`` / ``as_data_source``.

Each example is ``{"image": encoded bytes, "filename": path relative to the folder}``.  Every file
is fully decoded once (``images.decode_image``); a plain upright sRGB JPEG is stored as its
original bytes; a file that needed a conversion (EXIF rotation, gray, alpha, palette, 16-bit, CMYK,
a non-sRGB profile) is stored converted: as a quality-95 JPEG when it was a JPEG (so the pipeline
can keep decoding it at reduced DCT scale), else as a lossless PNG.  Every stored image is thus
upright 8-bit sRGB, whoever reads it.  Files that fail are skipped, logged
with their reason and listed in the build record: one bad file never stops a build.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import logging
import os
import pathlib
import re
import shutil
import time

from colorjax.data import splits as splits_lib
from colorjax.data.images import BadImageError, decode_image, read_image_file
from colorjax.safe_files import read_regular_file

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
DATASET_VERSION = "1.0.0"
BUILD_RECORD = "colorjax_build.json"
EXAMPLES_PER_SHARD = 1024
JPEG_QUALITY = 95  # re-encoding a JPEG source after a conversion (4:4:4 chroma)


def dataset_name_for(folder: str | os.PathLike) -> str:
    """A valid TFDS name from the folder's name: ``imagenet-samples`` -> ``imagenet_samples``."""
    name = re.sub(r"[^a-z0-9]+", "_", pathlib.Path(folder).resolve().name.lower()).strip("_")
    return name if name[:1].isalpha() else f"folder_{name}"


# What a dataset name may be: one path component that TFDS accepts, never a separator or "..".
_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_dataset_name(name: str) -> str:
    """``name``, or a ValueError when it is not a plain dataset name (path separators, ``..``)."""
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise ValueError(f"dataset name {name!r}: use lower-case letters, digits and underscores, starting with a "
                         f"letter (it names a folder in the data dir: no path separators, no '..')")
    return name


def dataset_dir(data_dir: str | os.PathLike, name: str) -> pathlib.Path:
    return pathlib.Path(data_dir).expanduser() / check_dataset_name(name) / DATASET_VERSION


def _is_built_file(file_name: str, name: str) -> bool:
    """Whether a build of dataset ``name`` writes a file called ``file_name``."""
    if file_name in (BUILD_RECORD, "dataset_info.json", "features.json"):
        return True
    splits = "|".join(splits_lib.SPLITS)
    return re.fullmatch(rf"{re.escape(name)}-({splits})\.array_record-\d{{5}}(-of-\d{{5}})?", file_name) is not None


def why_not_replaceable(directory: pathlib.Path, name: str, root: pathlib.Path) -> str | None:
    """Why the existing ``directory`` is not a build of ``root`` by colorjax (which a build may
    replace), or None when it is one or does not exist: its build record must be present and
    name the dataset and the folder, and it must hold only the files a build writes."""
    if not os.path.lexists(directory):
        return None
    if directory.is_symlink() or not directory.is_dir():
        return "is not a folder colorjax built"
    try:
        record = json.loads((directory / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("name") != name:
        return f"has no build record ({BUILD_RECORD}) of dataset {name!r}: colorjax did not build it"
    if record.get("source_folder") != str(root):
        return f"holds the build of another folder, {record.get('source_folder')}"
    foreign = sorted(p.name for p in directory.iterdir() if not _is_built_file(p.name, name))
    if foreign:
        return f"holds files a build does not write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})"
    return None


def _check_replaceable(directory: pathlib.Path, name: str, root: pathlib.Path, overwrite: bool) -> None:
    if not overwrite and (reason := why_not_replaceable(directory, name, root)):
        raise FileExistsError(f"{directory} {reason}; nothing was changed (--overwrite replaces it, or choose "
                              f"another --name or --data-dir)")


def list_images(folder: pathlib.Path) -> list[str]:
    """Relative ``/`` paths of the image files under ``folder`` (recursive, hidden files skipped)."""
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_SUFFIXES):
                relative = (pathlib.Path(directory) / file).relative_to(folder).as_posix()
                try:
                    relative.encode("utf-8")  # the split hash and the stored file name need UTF-8
                except UnicodeEncodeError:
                    log.warning("skipped %s: the file name is not valid UTF-8; rename it to include it",
                                os.fsencode(pathlib.Path(directory) / file))
                    continue
                found.append(relative)
    return sorted(found)


def fingerprint(folder: pathlib.Path, relative_paths: list[str]) -> str:
    """Changes when a file is added, removed, resized or touched."""
    digest = hashlib.sha256()
    for path in relative_paths:
        try:
            stat = (folder / path).stat()
        except OSError:  # a dangling or looping symlink: its own entry (the build skips and names it)
            stat = (folder / path).lstat()
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def folder_features():
    """The feature spec of every folder dataset: the encoded image and its path in the folder."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {"image": tfds.features.Image(shape=(None, None, 3)), "filename": tfds.features.Text()}
    )


# TFDS's own feature classes: the only ones a dataset's features.json may name (see check_features).
TFDS_FEATURES_PACKAGE = "tensorflow_datasets.core.features."
FEATURES_FILE = "features.json"
_FEATURES_FILE_CAP = 1 << 20


def check_features(features_file: str | os.PathLike, expected=None) -> None:
    """A ValueError unless ``features_file`` is ``expected`` (a FeaturesDict) exactly, or, with no
    ``expected``, names only TFDS's own feature classes.

    TFDS imports the module that each ``pythonClassName`` of a dataset's ``features.json`` names
    before it checks anything: a hand-edited file could make reading a dataset import any installed
    module. This check runs before TFDS reads the file.
    """
    from google.protobuf import json_format

    path = pathlib.Path(features_file)
    try:
        stored = json.loads(read_regular_file(path, _FEATURES_FILE_CAP))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable feature spec ({error})") from None
    if expected is not None:
        if stored != json.loads(json_format.MessageToJson(expected.to_proto())):
            raise ValueError(f"{path}: not the feature spec colorjax builds (an image and its file name); not read, as "
                             f"TFDS would import the classes it names (rebuild it with `colorjax data build --overwrite`)")
        return
    foreign = sorted({name for name in _class_names(stored) if not name.startswith(TFDS_FEATURES_PACKAGE)})
    if foreign:
        raise ValueError(f"{path}: names feature classes outside TFDS ({', '.join(map(repr, foreign[:3]))}); not read, "
                         f"as TFDS would import them")


def _class_names(value):
    """Every ``pythonClassName`` value in a parsed features.json (any nesting)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "pythonClassName":
                yield item if isinstance(item, str) else repr(item)
            else:
                yield from _class_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _class_names(item)


def read_build_record(directory: str | os.PathLike) -> dict | None:
    path = pathlib.Path(directory) / BUILD_RECORD
    return json.loads(path.read_text()) if path.exists() else None


def _check_folder(folder: str | os.PathLike) -> tuple[pathlib.Path, list[str]]:
    root = pathlib.Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist (or is not a folder)")
    paths = list_images(root)
    if not paths:
        raise ValueError(f"image folder {root} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return root, paths


def ensure_folder_dataset(folder, data_dir, *, name=None, ratios=None) -> pathlib.Path:
    """The dataset directory of ``folder``, built first if missing or built from other files.

    ``ratios=None`` accepts the existing build's ratios (and uses the default for a new build);
    other ratios than the existing build's rebuild it. A directory that is not a build of
    ``folder`` is never replaced (``FileExistsError``).
    """
    root, paths = _check_folder(folder)
    directory = dataset_dir(data_dir, name or dataset_name_for(root))
    record = read_build_record(directory)
    current = isinstance(record, dict) and record.get("fingerprint") == fingerprint(root, paths)
    if not current or (ratios is not None and record.get("ratios") != list(splits_lib.check_ratios(ratios))):
        build_folder_dataset(root, data_dir, name=name, ratios=ratios or splits_lib.DEFAULT_RATIOS)
    return directory


def build_folder_dataset(folder, data_dir, *, name=None, ratios=splits_lib.DEFAULT_RATIOS, threads=2,
                         overwrite=False) -> dict:
    """Builds (or rebuilds) the dataset; returns the build record written beside it.

    An existing ``DATA_DIR/NAME/1.0.0`` is replaced only when it is an earlier build of the same
    folder (:func:`why_not_replaceable`), else refused before any work unless ``overwrite``.
    """
    import tensorflow_datasets as tfds

    started = time.perf_counter()
    root, paths = _check_folder(folder)
    ratios = splits_lib.check_ratios(ratios)
    name = check_dataset_name(name) if name is not None else dataset_name_for(root)
    final_dir = dataset_dir(data_dir, name)
    _check_replaceable(final_dir, name, root, overwrite)
    work_dir = final_dir.with_name(f"{DATASET_VERSION}.incomplete-{os.getpid()}")
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    assigned = splits_lib.assign_splits(root, paths, ratios)
    record = {
        "name": name,
        "source_folder": str(root),
        "fingerprint": fingerprint(root, paths),
        "ratios": list(ratios),
        "split_rule": "subfolders" if splits_lib.split_folders(root) else "sha256 of relative path",
        "files_found": len(paths),
        "files_outside_split_folders": len(paths) - sum(map(len, assigned.values())),
        "examples": {},
        "conversions": {},
        "skipped": [],
    }
    features = folder_features()
    identity = tfds.core.DatasetIdentity(
        name=name, version=tfds.core.Version(DATASET_VERSION), data_dir=str(work_dir), module_name=__name__
    )
    info = tfds.core.DatasetInfo(
        builder=identity, description=f"Images of the folder {root}, built by colorjax.", features=features
    )
    writer = tfds.core.SequentialWriter(info, EXAMPLES_PER_SHARD, file_format="array_record")
    nonempty = [split for split in splits_lib.SPLITS if assigned[split]]
    writer.initialize_splits(nonempty)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for split in nonempty:
            encoded = pool.map(lambda path: _encode(root, path), assigned[split])
            writer.add_examples({split: _collect(zip(assigned[split], encoded), record, split)})
    writer.close_all()
    if not sum(record["examples"].values()):
        shutil.rmtree(work_dir)
        raise ValueError(f"no readable image in {root}: all {len(paths)} files were skipped")
    record["build_seconds"] = round(time.perf_counter() - started, 2)
    (work_dir / BUILD_RECORD).write_text(json.dumps(record, indent=1))
    try:
        _check_replaceable(final_dir, name, root, overwrite)  # again: it may have appeared meanwhile
    except FileExistsError:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    if final_dir.is_symlink() or final_dir.is_file():  # --overwrite: the link goes, never what it points to
        final_dir.unlink()
    shutil.rmtree(final_dir, ignore_errors=True)
    try:
        work_dir.rename(final_dir)
    except OSError:  # another process (another host of the same run) finished the same build first
        shutil.rmtree(work_dir, ignore_errors=True)
        if (read_build_record(final_dir) or {}).get("fingerprint") != record["fingerprint"]:
            raise
    log.info("built %s into %s: %s, %d skipped", root, final_dir, record["examples"], len(record["skipped"]))
    return record


def _encode(root: pathlib.Path, relative_path: str) -> tuple[bytes, tuple[str, ...]] | BadImageError:
    """The bytes to store for one file and the conversions it needed, or the error."""
    path = root / relative_path
    try:
        data = read_image_file(path)  # a regular file of bounded size: a FIFO or /dev/zero is refused unread
        decoded = decode_image(data, str(path))
    except BadImageError as error:
        return error
    is_jpeg = decoded.source_format == "JPEG"
    if is_jpeg and not decoded.conversions:
        return data, ()
    buffer = io.BytesIO()
    if is_jpeg:  # stays a JPEG, so that the pipeline can still decode it at a reduced DCT scale
        decoded.image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        decoded.image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue(), decoded.conversions


def _collect(results, record: dict, split: str):
    """Yields the examples of one split, recording conversions and skipped files."""
    record["examples"][split] = 0
    for relative_path, result in results:
        if isinstance(result, BadImageError):
            log.warning("skipping %s", result)
            record["skipped"].append({"file": relative_path, "reason": result.problem})
            continue
        data, conversions = result
        for conversion in conversions:
            record["conversions"][conversion] = record["conversions"].get(conversion, 0) + 1
        record["examples"][split] += 1
        yield {"image": data, "filename": relative_path}
