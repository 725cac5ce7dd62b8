"""Prepare, here (with PyPI), what the device check needs on a GPU machine that has no network.

    python -m benchmarks.device.prepare_device wheels [--dest .whl]       # ~11 MB of Python 3.12 wheels
    python -m benchmarks.device.prepare_device data [--dest .devdata]      # <= 36 MB of tiny-imagenet-64
    python -m benchmarks.device.prepare_device all                         # both, then the size check

``wheels`` downloads, for CPython 3.12 on manylinux x86-64, the packages colorjax needs that the
GPU machine lacks (tensorflow-datasets, grain, array_record, ml_collections, tensorboardX and the
dependencies of theirs that are missing there), at the versions installed here, and checks offline
that every requirement of every carried wheel is met by another carried wheel or by the machine's
own packages. ``data`` copies whole array_record shards of tiny-imagenet-64's train split (and one
validation shard) into a TFDS data dir of at most ``--max-mb``, with ``dataset_info.json``
rewritten to match, and reads it back through the library's loader. Both folders are git-ignored;
the device call carries them (``carry: [".whl", ".devdata"]``, 64 MiB together at most).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARRY_LIMIT_BYTES = 64 * 2**20  # what one device call carries, the working tree included
DATA_NAME = "tiny_imagenet_64"
TINY_IMAGENET = REPO.parent / "shared" / "data" / "tiny-imagenet-64"

# What colorjax needs and the GPU machine lacks, with the missing dependencies of those.
CARRIED = [
    "tensorflow-datasets", "grain", "array-record", "ml-collections", "tensorboardX",
    "tensorflow-metadata", "googleapis-common-protos", "dm-tree", "simple-parsing", "docstring-parser",
    "immutabledict", "promise", "termcolor", "toml", "portpicker", "importlib-resources",
]
# Packages of the GPU machine's image as last read (2026-11-17), by normalised name: its Python
# 3.12 with jax 0.11.2 (CUDA 13), flax, optax, orbax-checkpoint, torch 2.11 and the rest.
MACHINE_PACKAGES = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt
jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix
orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions
pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# The target interpreter, for evaluating requirement markers.
TARGET_ENVIRONMENT = {
    "python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix",
}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(name: str) -> str:
    """``name==version`` at the version installed here (the one the test suite ran with), else ``name``."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


# ---- wheels --------------------------------------------------------------------------------------

def download_wheels(dest: Path, names: list[str] = CARRIED) -> list[Path]:
    """Wheels of ``names`` for CPython 3.12 manylinux x86-64 in ``dest``; a package published only
    as a source archive (promise) is built here into a pure-Python wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    for name in names:
        spec = pinned(name)
        download = [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                    "--implementation", "cp", *[f"--platform={p}" for p in PLATFORMS], "-d", str(dest), spec]
        if subprocess.run(download, capture_output=True, text=True).returncode == 0:
            continue
        built = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(dest), spec], capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"{spec}: no Python 3.12 manylinux wheel and no buildable source:\n{built.stderr[-1500:]}")
    wheels = sorted(dest.glob("*.whl"))
    for wheel in wheels:
        python, abi, platform = wheel.name[:-4].split("-")[-3:]
        if (abi != "none" and not python.startswith("cp312")) or not (platform == "any" or platform.endswith("x86_64")):
            raise RuntimeError(f"{wheel.name}: not a wheel for CPython 3.12 on Linux x86-64")
    return wheels


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _requirements_of(meta, extras: set[str]) -> list:
    from packaging.requirements import Requirement

    found = []
    for text in meta.get_all("Requires-Dist") or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**TARGET_ENVIRONMENT, "extra": e}) for e in (extras or {""})):
            found.append(requirement)
    return found


def unmet_requirements(wheel_dir: Path, machine: set[str] = MACHINE_PACKAGES) -> list[str]:
    """Requirements (on CPython 3.12 / Linux x86-64) of the carried wheels that neither another
    carried wheel nor the machine's packages meet, and packages carried twice. A requirement with
    extras on a machine package is followed into that package's extras as installed here."""
    carried: dict[str, list] = {}
    for wheel in sorted(wheel_dir.glob("*.whl")):
        meta = wheel_metadata(wheel)
        carried.setdefault(normalise(meta["Name"]), []).append((meta["Version"], meta))
    problems = [f"{name} carried {len(v)} times ({', '.join(x for x, _ in v)})" for name, v in carried.items() if len(v) > 1]
    pending = [(name, meta, set()) for name, [(_, meta), *_] in carried.items()]
    seen = set()
    while pending:
        owner, meta, extras = pending.pop()
        for requirement in _requirements_of(meta, extras):
            name = normalise(requirement.name)
            key = (owner, name, tuple(sorted(requirement.extras)))
            if key in seen:
                continue
            seen.add(key)
            if name in carried:
                version, dep_meta = carried[name][0]
                if version not in requirement.specifier:
                    problems.append(f"{owner} needs {requirement}, carried {name} {version}")
                if requirement.extras:
                    pending.append((name, dep_meta, set(requirement.extras)))
            elif name in machine:
                if requirement.extras:
                    try:
                        pending.append((name, metadata.metadata(name), set(requirement.extras)))
                    except metadata.PackageNotFoundError:
                        problems.append(f"{owner} needs {requirement}: cannot read {name}'s extras here")
            else:
                problems.append(f"{owner} needs {requirement}: neither carried nor on the machine")
    return sorted(set(problems))


# ---- data ----------------------------------------------------------------------------------------

def source_dataset_dir(source_data_dir: Path | None) -> Path:
    """``DATA_NAME``'s built dataset folder: in ``source_data_dir`` when given, else built once from
    the shared tiny-imagenet-64 folder into the default TFDS data dir."""
    from colorjax.data import folder, sources

    if source_data_dir is not None:
        directory = folder.dataset_dir(source_data_dir, DATA_NAME)
        if not (directory / "dataset_info.json").is_file():
            raise FileNotFoundError(f"{directory}: no built {DATA_NAME} dataset (build it with `colorjax data build "
                                    f"{TINY_IMAGENET} --data-dir {source_data_dir}`)")
        return directory
    if not TINY_IMAGENET.is_dir():
        raise FileNotFoundError(f"{TINY_IMAGENET}: the tiny-imagenet-64 folder is not there; pass --source-data-dir")
    return folder.ensure_folder_dataset(str(TINY_IMAGENET), sources.default_data_dir())


def copy_dataset_part(source: Path, dest_data_dir: Path, max_bytes: int, validation_shards: int = 1) -> dict:
    """Whole shards of ``source`` (a built array_record dataset folder) into ``dest_data_dir``:
    the first ``validation_shards`` of the validation split, then as many train shards as fit in
    ``max_bytes`` in all; ``dataset_info.json`` says exactly what was copied."""
    info = json.loads((source / "dataset_info.json").read_text())
    if info.get("fileFormat") != "array_record":
        raise ValueError(f"{source}: stored as {info.get('fileFormat')}, not array_record")
    target = dest_data_dir / info["name"] / source.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    budget = max_bytes - sum((source / f).stat().st_size for f in ("dataset_info.json", "features.json"))
    splits, examples = [], {}
    for split in sorted(info["splits"], key=lambda s: s["name"] != "validation"):  # validation first
        limit = validation_shards if split["name"] == "validation" else len(split["shardLengths"])
        kept, size = [], 0
        for index, length in enumerate(split["shardLengths"][:limit]):
            path = source / f"{info['name']}-{split['name']}.array_record-{index:05d}"
            if size + path.stat().st_size > budget:
                break
            kept.append(length)
            size += path.stat().st_size
            shutil.copyfile(path, target / path.name)
        if kept:
            splits.append({**split, "shardLengths": kept, "numBytes": str(size)})
            examples[split["name"]] = sum(int(n) for n in kept)
        budget -= size
    if "train" not in examples:
        raise ValueError(f"not one train shard of {source} fits in {max_bytes} bytes")
    (target / "dataset_info.json").write_text(json.dumps({**info, "splits": splits}, indent=2))
    shutil.copyfile(source / "features.json", target / "features.json")
    total = sum(p.stat().st_size for p in target.iterdir())
    return {"dataset_dir": str(target), "examples": examples, "bytes": total}


def check_data_copy(data_dir: Path) -> dict:
    """Reads a batch of each split through colorjax's loader: what the device check will do."""
    from colorjax.data import make_loader

    shapes = {}
    for split in ("train", "validation"):
        loader = make_loader(DATA_NAME, split, crop_size=32, batch_size=4, train=split == "train", data_dir=data_dir,
                             cache_mb=0)
        batch = next(iter(loader))
        shapes[split] = {"images": len(loader), "batch": list(batch["rgb"].shape)}
    return shapes


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _commit() -> str:
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("wheels", "data", "all"))
    parser.add_argument("--wheels-dest", type=Path, default=REPO / ".whl")
    parser.add_argument("--data-dest", type=Path, default=REPO / ".devdata")
    parser.add_argument("--source-data-dir", type=Path, default=None,
                        help=f"a TFDS data dir holding the built {DATA_NAME} (default: build it from {TINY_IMAGENET})")
    parser.add_argument("--max-mb", type=float, default=36.0, help="size of the data copy, MiB (default 36)")
    args = parser.parse_args(argv)
    if args.what in ("wheels", "all"):
        wheels = download_wheels(args.wheels_dest)
        problems = unmet_requirements(args.wheels_dest)
        print(f"{len(wheels)} wheels, {folder_bytes(args.wheels_dest) / 2**20:.1f} MiB in {args.wheels_dest}")
        for problem in problems:
            print(f"  unmet: {problem}")
        if problems:
            return 1
    if args.what in ("data", "all"):
        record = copy_dataset_part(source_dataset_dir(args.source_data_dir), args.data_dest, int(args.max_mb * 2**20))
        (args.data_dest / "commit.txt").write_text(_commit() + "\n")
        print(f"data: {record['examples']} examples, {record['bytes'] / 2**20:.1f} MiB in {record['dataset_dir']}; "
              f"read back: {check_data_copy(args.data_dest)}")
    total = folder_bytes(args.wheels_dest) + folder_bytes(args.data_dest)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True).stdout.split("\0")
    tree = sum((REPO / f).stat().st_size for f in tracked if f and (REPO / f).is_file())
    print(f"carried: {total / 2**20:.1f} MiB (+ {tree / 2**20:.1f} MiB of tracked files) of {CARRY_LIMIT_BYTES / 2**20:.0f} MiB")
    return 0 if total + tree <= CARRY_LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
