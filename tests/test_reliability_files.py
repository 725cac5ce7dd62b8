"""Files, signals and formats (issue 28): outputs written whole or not at all and never through a
link, `data build` replacing only its own builds, raster formats only (no external interpreter),
files that are not regular files refused before reading, a built dataset's metadata importing
nothing. Training signals are tested in test_training_resume.py (they need training processes)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, random_photo, save_random_model
from colorjax import safe_files
from colorjax.inference import colorize as colorize_lib
from test_reliability_outputs import _inputs  # 40 x 56 random photos photo0.png, photo1.png, ...
from test_reliability_outputs import _run as _colorize  # the colorize command at --size 32
from test_reliability_outputs import MODEL_CONFIG  # ECCV16 at 1/16 width


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("ckpt"), MODEL_CONFIG)


def _output(out: Path, input_name: str) -> Path:
    return colorize_lib.output_path(out, Path(input_name).with_suffix(""), "png")


# ---- 1. colorize --overwrite never writes through a link --------------------------------------------

@pytest.mark.slow  # saves, loads and compiles a model for two colorize runs
def test_colorize_overwrite_never_writes_through_links(checkpoint, tmp_path, capsys):
    inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    originals = {p.name: p.read_bytes() for p in inputs.iterdir()}
    # an output that is a hard link to an input is that input (same device and inode): refused
    os.link(inputs / "photo0.png", _output(out, "photo0.png"))
    assert _colorize([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--overwrite"]) == 2
    assert "would replace an input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == originals
    _output(out, "photo0.png").unlink()
    # an output that is a symbolic link to some other file: the link is replaced, the file kept
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's notes")
    _output(out, "photo1.png").symlink_to(precious)
    assert _colorize([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--overwrite"]) == 0
    assert "2 colorized, 0 failed" in capsys.readouterr().out
    assert precious.read_text() == "the user's notes"
    written = _output(out, "photo1.png")
    assert not written.is_symlink() and np.asarray(Image.open(written)).shape == (40, 56, 3)
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == originals
    assert sorted(p.name for p in out.iterdir()) == ["photo0.png", "photo1.png"]  # no temporary file left


# ---- 4. a failed write leaves nothing under the final name and fails the run ------------------------

# A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes every write past it fail with EFBIG, as a full
# disk fails with ENOSPC: a real failed write, in a child process so that the limit binds nothing else.
LIMITED_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from colorjax.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _limited(limit: int, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", LIMITED_CHILD, str(limit), *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a child process imports JAX and compiles the model: ~20 s on 2 CPU cores
def test_colorize_on_a_full_disk_leaves_no_output_and_fails(checkpoint, tmp_path):
    inputs, out = _inputs(tmp_path / "in", 1), tmp_path / "out"
    argv = ["colorize", str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress", "--size", "32"]
    result = _limited(1000, *argv)  # a 40 x 56 noise PNG takes ~6.7 kB
    assert result.returncode == 1, result.stderr
    target = _output(out, "photo0.png")
    assert f"cannot write the output {target}" in result.stderr and "0 colorized, 1 failed" in result.stdout
    assert not os.path.lexists(target) and list(out.iterdir()) == []  # no 0-byte file, no temporary file
    # the next run (disk free again) writes it: nothing is mistaken for a finished output
    assert _colorize(argv[1:]) == 0
    assert np.asarray(Image.open(target)).shape == (40, 56, 3)


def test_write_atomically_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "record.json"
    target.write_text("old")
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.getrlimit(resource.RLIMIT_FSIZE)[1])); "
              "from colorjax.safe_files import write_bytes_atomically; "
              "write_bytes_atomically(sys.argv[1], b'x' * 10000)")
    result = subprocess.run([sys.executable, "-c", script, str(target)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "File too large" in result.stderr
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
    safe_files.write_bytes_atomically(target, b"new")
    assert target.read_bytes() == b"new" and oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_file_identity_sees_hard_and_symbolic_links(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    os.link(a, tmp_path / "hard")
    (tmp_path / "soft").symlink_to(a)
    (tmp_path / "b").write_text("x")
    identity = safe_files.file_identity
    assert identity(tmp_path / "hard") == identity(tmp_path / "soft") == identity(a) != identity(tmp_path / "b")
    assert identity(tmp_path / "missing") is None


# ---- 5. raster formats only: a PostScript file never reaches Ghostscript ---------------------------

# An EPS header and an endless PostScript loop: Ghostscript, if Pillow ran it, would never return.
ENDLESS_POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n{} loop\n"


@pytest.fixture
def ghostscript_calls(monkeypatch):
    """Every call Pillow makes to run Ghostscript, recorded (and failed) instead of run."""
    from PIL import EpsImagePlugin

    calls = []

    def record(*args, **kwargs):
        calls.append(args)
        raise OSError("Ghostscript was called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", record)
    return calls


def test_postscript_under_an_image_name_is_refused_without_running_ghostscript(tmp_path, ghostscript_calls):
    from colorjax.data import BadImageError, folder, load_image
    from colorjax.demo.engine import UploadError, decode_upload

    photos = _inputs(tmp_path / "photos", 1)
    (photos / "trap.jpg").write_bytes(ENDLESS_POSTSCRIPT)
    # colorize's reader
    with pytest.raises(BadImageError, match="trap.jpg: not an image in a format colorjax reads"):
        load_image(photos / "trap.jpg")
    # the demo's upload
    with pytest.raises(UploadError, match="trap.jpg: not an image in a format colorjax reads"):
        decode_upload(ENDLESS_POSTSCRIPT, "trap.jpg", max_pixels=10**6)
    # data build: named and skipped, the photo built
    record = folder.build_folder_dataset(photos, tmp_path / "data", ratios=(1, 0, 0))
    assert record["examples"] == {"train": 1}
    assert [s["file"] for s in record["skipped"]] == ["trap.jpg"] and "not an image" in record["skipped"][0]["reason"]
    assert ghostscript_calls == []


def test_every_image_is_opened_through_the_raster_allow_list():
    """``PIL.Image.open`` appears in colorjax only inside ``images.open_image`` (formats= given)."""
    callers = [str(p.relative_to(REPO)) for p in (REPO / "colorjax").rglob("*.py") if "Image.open(" in p.read_text()]
    assert callers == ["colorjax/data/images.py"]
    source = (REPO / "colorjax" / "data" / "images.py").read_text()
    assert source.count("Image.open(") == 1 and "Image.open(io.BytesIO(data), formats=RASTER_FORMATS)" in source


# ---- 12. files that are not files: checked before reading, read with a cap -------------------------

@pytest.mark.slow  # a child process imports the data stack: ~20 s on 2 loaded CPU cores
def test_a_fifo_is_refused_without_hanging_the_build(tmp_path):
    photos = _inputs(tmp_path / "photos", 1)
    fifo = photos / "pipe.jpg"
    os.mkfifo(fifo)
    command = [sys.executable, "-m", "colorjax.cli", "data", "build", str(photos), "--data-dir", str(tmp_path / "data"),
               "--ratios", "1", "0", "0"]
    try:  # a child process: a build blocked on the FIFO (the old behaviour) is killed, not the test run
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("data build still waiting on a FIFO after 120 s")
    assert result.returncode == 0, result.stderr
    assert "examples: {'train': 1}" in result.stdout
    assert "skipped pipe.jpg: a FIFO (named pipe), not a regular file: not read" in result.stdout


def test_devices_and_oversized_files_are_refused_before_reading(tmp_path, monkeypatch):
    from colorjax.data import BadImageError, folder, images, load_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the cap: 8 x 1000 bytes + 16 MiB
    cap = images.max_file_bytes()
    assert cap == 8000 + (16 << 20)
    photos = _inputs(tmp_path / "photos", 1)
    (photos / "zero.jpg").symlink_to("/dev/zero")
    with open(photos / "huge.jpg", "wb") as f:  # sparse: no block of it is written
        f.truncate(20 << 30)
    os.mkfifo(photos / "pipe.jpg")  # opened without blocking (the build's own check is the slow test above)
    for name, reason in [("zero.jpg", "a character device, not a regular file: not read"),
                         ("huge.jpg", f"{20 << 30} bytes, over the {cap}-byte cap for one file: not read"),
                         ("pipe.jpg", "a FIFO .named pipe., not a regular file: not read")]:
        with pytest.raises(BadImageError, match=f"{name}: {reason}"):
            load_image(photos / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**6)  # the photo itself must fit
    record = folder.build_folder_dataset(photos, tmp_path / "data", ratios=(1, 0, 0))
    assert record["examples"] == {"train": 1}
    assert sorted(s["file"] for s in record["skipped"]) == ["huge.jpg", "pipe.jpg", "zero.jpg"]


def test_read_regular_file_reads_a_file_that_fits(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"0123456789")
    assert safe_files.read_regular_file(path, 10) == b"0123456789"
    with pytest.raises(safe_files.UnreadableFileError, match="10 bytes, over the 9-byte cap"):
        safe_files.read_regular_file(path, 9)
    with pytest.raises(safe_files.UnreadableFileError, match="a folder, not a regular file"):
        safe_files.read_regular_file(tmp_path, 10)


# ---- 2. data build replaces only a build of its own -------------------------------------------------

def _data(*argv: str) -> int:
    from colorjax.data import commands as data_commands

    parser = argparse.ArgumentParser()
    data_commands.add_arguments(parser)
    return data_commands.run(parser.parse_args(list(argv)))


def test_data_build_replaces_only_its_own_build(tmp_path, capsys):
    photos, data_dir = _inputs(tmp_path / "photos", 2), tmp_path / "data"
    target = data_dir / "photos" / "1.0.0"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("the user's notes")
    build = ["build", str(photos), "--data-dir", str(data_dir), "--ratios", "1", "0", "0"]
    assert _data(*build) == 1
    assert f"{target} has no build record (colorjax_build.json) of dataset 'photos'" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["1.0.0"]  # no work folder left behind
    assert _data(*build, "--overwrite") == 0  # asked for: replaced
    assert not (target / "notes.txt").exists() and (target / "colorjax_build.json").exists()
    # its own build (the same folder, changed since): rebuilt without asking
    Image.fromarray(random_photo(40, 56, 7)).save(photos / "photo2.png")
    assert _data(*build) == 0 and "examples: {'train': 3}" in capsys.readouterr().out
    # a file added to its build: refused
    (target / "extra.bin").write_bytes(b"x")
    assert _data(*build) == 1 and "holds files a build does not write (extra.bin)" in capsys.readouterr().err
    (target / "extra.bin").unlink()
    # the build of another folder with the same name: refused
    other = _inputs(tmp_path / "elsewhere" / "photos", 1)
    assert _data("build", str(other), "--data-dir", str(data_dir)) == 1
    assert f"holds the build of another folder, {photos}" in capsys.readouterr().err
    from colorjax.data import folder

    assert folder.read_build_record(target)["source_folder"] == str(photos)


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "/tmp/abs", ""])
def test_data_build_refuses_a_name_that_is_a_path(tmp_path, capsys, name):
    photos, data_dir = _inputs(tmp_path / "photos", 1), tmp_path / "deep" / "data"
    assert _data("build", str(photos), "--data-dir", str(data_dir), "--name", name) == 1
    assert f"dataset name {name!r}: use lower-case letters" in capsys.readouterr().err
    assert not (tmp_path / "deep").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


# ---- 6. a built dataset's metadata chooses no code to import ----------------------------------------

def test_a_built_datasets_features_file_imports_nothing(tmp_path, monkeypatch):
    import json
    import sys

    from colorjax.data import folder, sources

    photos, data_dir = _inputs(tmp_path / "photos", 2), tmp_path / "data"
    folder.build_folder_dataset(photos, data_dir, ratios=(1, 0, 0))
    # an installed module that leaves a mark when imported
    modules, marker = tmp_path / "modules", tmp_path / "imported"
    modules.mkdir()
    (modules / "colorjax_probe_module.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(modules))
    features_file = data_dir / "photos" / "1.0.0" / "features.json"
    spec = json.loads(features_file.read_text())
    spec["featuresDict"]["features"]["filename"]["pythonClassName"] = "colorjax_probe_module.Text"
    features_file.write_text(json.dumps(spec))

    with pytest.raises(ValueError, match="not the feature spec colorjax builds"):  # read as a folder spec
        sources.open_source(str(photos), "train", data_dir=data_dir)
    with pytest.raises(ValueError, match="names feature classes outside TFDS .'colorjax_probe_module.Text'."):
        sources.open_source("photos", "train", data_dir=data_dir)  # read by its TFDS name
    assert not marker.exists() and "colorjax_probe_module" not in sys.modules
    # the file as built reads
    folder.build_folder_dataset(photos, data_dir, ratios=(1, 0, 0))
    assert len(sources.open_source(str(photos), "train", data_dir=data_dir)) == 2
