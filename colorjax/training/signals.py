"""Stopping a training run on SIGTERM or SIGINT without losing its steps.

SIGTERM is what batch schedulers and preemptible TPU / GPU hosts send before they take a machine
back; SIGINT is Ctrl-C. While the training loop runs, either signal is recorded and acted on between
steps: the run finishes the step it is in, saves a checkpoint at that step (as at any checkpoint:
only with finite state), and stops with :class:`TrainingInterrupted`, whose one-line message names
the signal, the step and the checkpoint; ``colorjax train`` prints it and exits with 128 + the
signal's number (143 for SIGTERM, 130 for SIGINT). ``--resume`` continues from that checkpoint
exactly as from any other.

Before the loop (checking, counting the prior, compiling) nothing can be lost, so a signal stops the
run at once. A second signal while the checkpoint is being written stops the run at once too,
without that checkpoint (the previous ones are kept).

Handlers are installed only in the main thread (Python delivers signals there), and the previous
ones are put back when the run ends. In a multi-process run each process acts on the signal it
receives: a scheduler must signal every process, as preemption does.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """A run stopped by a signal; ``exit_code`` is the shell's 128 + the signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + int(signum)


class StopOnSignals:
    """A context manager over SIGTERM and SIGINT for one run (see the module docstring).

    Until :meth:`defer` is called a signal raises :class:`TrainingInterrupted` at once; after it,
    the first signal is recorded in :attr:`received` for the loop to act on.
    """

    def __init__(self):
        self.received: int | None = None
        self._deferring = False
        self._previous: dict = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def defer(self) -> None:
        """From now on, record a signal for the loop instead of stopping at once."""
        self._deferring = True

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            raise TrainingInterrupted(f"stopped by a second {name} before the checkpoint was written; "
                                      f"the earlier checkpoints are kept", signum)
        if not self._deferring:
            raise TrainingInterrupted(f"stopped by {name} before the first training step; no step was lost", signum)
        self.received = signum

    def stopped(self, step: int, checkpoint) -> TrainingInterrupted:
        """The error that ends a run stopped at ``step`` after saving ``checkpoint``."""
        name = signal.Signals(self.received).name
        return TrainingInterrupted(f"stopped by {name} at step {step}: checkpoint saved in {checkpoint}; "
                                   f"--resume continues from it", self.received)
