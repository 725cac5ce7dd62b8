"""What a run reports: a tqdm progress bar, ``metrics.jsonl``, TensorBoard event files (tensorboardX,
no TensorFlow), validation image grids (gray | prediction | truth) as PNG, and ``curves.png`` (loss
and validation AuC against the step, redrawn at each validation).

Only process 0 writes; the other hosts of a multi-host run get a silent log.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image

from colorjax.grids import comparison_grid
from colorjax.training.workdir import METRICS_FILE, json_safe, truncate_metrics


class RunLog:
    """Training and validation records of one run under ``workdir``."""

    def __init__(self, workdir: Path, *, total_steps: int, start_step: int, enabled: bool, progress_bar: bool, tensorboard: bool):
        self.enabled = enabled
        self.workdir = Path(workdir)
        self.bar = None
        self.writer = None
        self.jsonl = None
        self._last_time, self._last_step = time.perf_counter(), start_step
        self.dropped_records = 0
        if not enabled:
            return
        from tqdm import tqdm

        # A resumed run continues the records of the step it restored; later ones (written before a
        # kill or a crash, or by a run that diverged) are dropped so that no step appears twice.
        self.dropped_records = truncate_metrics(self.workdir, start_step)
        self.jsonl = open(self.workdir / METRICS_FILE, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter  # imports torch when installed: seconds, so only here

            self.writer = SummaryWriter(str(self.workdir / "tensorboard"))
        if progress_bar:
            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def _record(self, split: str, step: int, values: dict) -> None:
        record = {"step": step, "split": split, **{k: json_safe(float(v)) for k, v in values.items()}}
        self.jsonl.write(json.dumps(record, allow_nan=False) + "\n")  # strict JSON: NaN / inf as null
        self.jsonl.flush()
        if self.writer is not None:
            for name, value in values.items():
                if math.isfinite(float(value)):
                    self.writer.add_scalar(f"{split}/{name}", float(value), step)
            self.writer.flush()

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def train(self, step: int, values: dict, batch_size: int) -> dict:
        """Record training metrics at ``step``; adds ``images_per_s`` since the previous record."""
        now = time.perf_counter()
        values = dict(values)
        values["images_per_s"] = (step - self._last_step) * batch_size / max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, step
        if self.enabled:
            self._record("train", step, values)
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{values['loss']:.4g}", img_s=f"{values['images_per_s']:.1f}")
        return values

    def validation(self, step: int, values: dict) -> None:
        if self.enabled:
            self._record("validation", step, values)
            from colorjax.training.curves import plot_training_curves

            plot_training_curves(self.workdir / "metrics.jsonl", self.workdir / "curves.png")
            if self.bar is not None:
                self.bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))

    def message(self, text: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar is not None else print)(text)

    def close(self) -> None:
        if self.enabled:
            if self.bar is not None:
                self.bar.close()
            if self.writer is not None:
                self.writer.close()
            self.jsonl.close()


def save_image_grid(path: Path, gray: np.ndarray, pred: np.ndarray, true: np.ndarray) -> None:
    Image.fromarray(comparison_grid(gray, pred, true)).save(path)
