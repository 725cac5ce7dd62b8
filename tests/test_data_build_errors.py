"""``colorjax data build`` on file names and data dirs it cannot use (issue 28, item 14): a file
whose name is not UTF-8 is named and skipped instead of aborting the whole build; a data dir that
cannot be written is a one-line error naming it, not a traceback."""

import logging
import os
import pathlib
import re

import numpy as np
from PIL import Image

from colorjax.cli import main


def write_photos(folder: pathlib.Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        pixels = np.full((20, 24, 3), (40 * i + 30, 120, 200 - 30 * i), np.uint8)
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            Image.fromarray(pixels).save(f, format="PNG")


def test_a_non_utf8_file_name_is_named_and_skipped(tmp_path, capsys, caplog):
    source = tmp_path / "photos"
    write_photos(source, [b"good1.png", b"good2.png", b"caf\xe9.png"])  # latin-1 bytes: not UTF-8
    with caplog.at_level(logging.WARNING, logger="colorjax.data.folder"):
        code = main(["data", "build", os.fspath(source), "--data-dir", os.fspath(tmp_path / "data")])
    assert code == 0, capsys.readouterr().err
    examples = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("examples: "))
    assert sum(map(int, re.findall(r"': (\d+)", examples.split(";")[0]))) == 2, examples  # both good files
    assert any("caf\\xe9.png" in r.getMessage() and "not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    source = tmp_path / "photos"
    write_photos(source, [b"a.png", b"b.png"])
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data dir's parent should be")
    assert main(["data", "build", os.fspath(source), "--data-dir", os.fspath(blocker / "data")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {blocker}") and "Not a directory" in err and len(err.splitlines()) == 1, err

    def read_only(self, *args, **kwargs):  # root ignores permission bits: refuse as a read-only mount does
        raise PermissionError(13, "Permission denied", os.fspath(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert main(["data", "build", os.fspath(source), "--data-dir", os.fspath(tmp_path / "ro")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'ro'}") and "Permission denied" in err and len(err.splitlines()) == 1
