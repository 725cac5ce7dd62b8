"""Files written whole or not at all, and read only when they are regular files of bounded size.

Writing (:func:`write_atomically`): the content goes to a temporary file in the target's own folder,
is flushed to disk, and only then renamed over the target (``os.replace``, atomic on POSIX). So:

- a failed write (a full disk, a quota, an encoder error) leaves nothing under the final name, and
  the error is raised: a later run never mistakes a 0-byte or truncated file for a finished output;
- an existing target that is a symbolic link is replaced by the new file, the file it points to is
  left alone; one that is a hard link to another name gets a new inode, the other name keeps its
  contents. Nothing is ever written through an existing link.

Which files are the same is decided by identity (device and inode, :func:`file_identity`), not by
path: a hard link or a symbolic link to an input is that input.

Reading (:func:`read_regular_file`): the file is opened without blocking (a FIFO cannot hang the
reader), checked to be a regular file (not a device such as ``/dev/zero``, a FIFO or a socket,
also when reached through a symbolic link) of at most ``max_bytes``, and read with that cap.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _process_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets it, a race with threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # not Linux: read once, at import
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_process_umask()  # what open(path, "w") would have given the file


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, sync: bool = True) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes into a binary file object.

    The parent folder must exist. On any failure the temporary file is removed and the error is
    re-raised; ``path`` is then as it was before the call. ``sync``: flush the data to the disk
    before the rename (so that a crash cannot leave an empty file under the final name either).
    Returns ``path``.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            if sync:
                os.fsync(file.fileno())
        os.chmod(temporary, _NEW_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def write_bytes_atomically(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> Path:
    """:func:`write_atomically` of ``data``."""
    return write_atomically(path, lambda file: file.write(data), sync=sync)


def write_text_atomically(path: str | os.PathLike, text: str, *, sync: bool = True) -> Path:
    """:func:`write_atomically` of ``text`` in UTF-8."""
    return write_bytes_atomically(path, text.encode("utf-8"), sync=sync)


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(device, inode)`` of the file ``path`` names (symbolic links followed); None when there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


class UnreadableFileError(OSError):
    """A path that is not a regular file, or a file larger than the cap; the message says which."""


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path`` (symbolic links followed), at most ``max_bytes``.

    Raises :class:`UnreadableFileError` for a FIFO, device, socket or folder (opened without
    blocking, never read) and for a file over ``max_bytes`` (refused from its size, before reading;
    a file that grows past the cap while read is refused too), and ``OSError`` when it cannot be
    opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
            raise UnreadableFileError(f"{kind}, not a regular file: not read")
        if status.st_size > max_bytes:
            raise UnreadableFileError(f"{status.st_size} bytes, over the {max_bytes}-byte cap for one file: not read")
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnreadableFileError(f"grew past the {max_bytes}-byte cap for one file while being read")
        return data
    finally:
        os.close(fd)
