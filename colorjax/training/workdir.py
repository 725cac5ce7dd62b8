"""What one run owns in its workdir: an exclusive lock, a ``metrics.jsonl`` that agrees with the
checkpoint a resumed run starts from, and folders where checkpoints that cannot be trusted are set
aside (kept for inspection, never deleted).

The lock is ``fcntl.flock`` on ``train.lock`` (``train-process-N.lock`` for process N of a
multi-host run): the kernel releases it when the process exits, however it exits (SIGKILL
included), so a crashed run never leaves a stale lock behind. A second run on the same workdir is
refused at once, naming the process that holds it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path

import jax

from colorjax.safe_files import write_text_atomically

METRICS_FILE = "metrics.jsonl"
CORRUPT_DIR = "corrupt_checkpoints"  # checkpoints that failed to restore or check, set aside by --resume
DIVERGED_DIR = "diverged"  # checkpoints saved from parameters that then gave a non-finite loss


class WorkdirBusyError(RuntimeError):
    """Another training process holds this workdir."""


class WorkdirLock:
    """An exclusive, non-blocking lock on a workdir; released by :meth:`release` or at process exit."""

    def __init__(self, workdir: Path, process_index: int = 0):
        name = "train.lock" if process_index == 0 else f"train-process-{process_index}.lock"
        self.path = Path(workdir) / name
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ValueError(f"{workdir}: cannot write in the workdir ({error.strerror or error})") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise WorkdirBusyError(
                f"{workdir} is in use by another training run (process {holder} holds {self.path}); wait for it "
                f"to finish or choose another workdir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WorkdirLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def json_safe(value):
    """A metric value for strict JSON: non-finite floats become None (``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def truncate_metrics(workdir: Path, step: int) -> int:
    """Keep the records of ``metrics.jsonl`` up to ``step`` (the step a run resumes from; 0: none)
    and drop the rest, including a line cut short by a kill. Returns how many records were dropped."""
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            keep = step > 0 and int(record["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        write_text_atomically(path, "".join(f"{line}\n" for line in kept))
    return dropped


def set_aside(manager, step: int, workdir: Path, folder: str) -> Path:
    """Move checkpoint ``step`` out of the manager's reach to ``workdir/folder/step`` (``step.N``
    when that exists); the caller reloads the manager."""
    target = Path(workdir) / folder / str(step)
    n = 1
    while target.exists():
        target, n = Path(workdir) / folder / f"{step}.{n}", n + 1
    target.parent.mkdir(exist_ok=True)
    if jax.process_index() == 0:
        os.replace(Path(manager.directory) / str(step), target)
    return target


def set_aside_from(manager, first_step: int, workdir: Path, folder: str) -> list[str]:
    """Set aside every checkpoint from ``first_step`` on and reload the manager; what moved where."""
    moved = [f"step {step} -> {set_aside(manager, step, workdir, folder)}" for step in manager.all_steps() if step >= first_step]
    if moved:
        manager.reload()
    return moved
