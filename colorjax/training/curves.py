"""Training curves as a PNG, redrawn by the run itself at every validation: training loss (and its
running mean), validation loss, and validation AuC (raw and rebalanced) against the step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

SMOOTHING_WINDOW = 10  # training records averaged for the running mean


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """``(training records, validation records)`` of a ``metrics.jsonl``; unreadable lines are skipped."""
    train, val = [], []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        (val if record.get("split") == "validation" else train).append(record)
    return train, val


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])) if pairs else (np.array([]), np.array([]))


def plot_training_curves(metrics_path: Path, out_path: Path) -> Path | None:
    """Draw ``metrics_path``'s curves into ``out_path``; None when there is nothing to draw yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, val = read_metrics(metrics_path)
    steps, loss = _series(train, "loss")
    if len(steps) == 0 and not val:
        return None
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    if len(steps):
        ax_loss.plot(steps, loss, color="0.75", lw=0.8, label="training (per record)")
        if len(loss) >= SMOOTHING_WINDOW:
            kernel = np.ones(SMOOTHING_WINDOW) / SMOOTHING_WINDOW
            ax_loss.plot(steps[SMOOTHING_WINDOW - 1 :], np.convolve(loss, kernel, "valid"), color="C0",
                         label=f"training (mean of {SMOOTHING_WINDOW})")
    v_steps, v_loss = _series(val, "val_loss")
    if len(v_steps):
        ax_loss.plot(v_steps, v_loss, "o-", color="C3", ms=3, label="validation")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_loss.legend(fontsize=8)
    for key, label, colour in (("val_auc_raw", "AuC raw", "C2"), ("val_auc_rebalanced", "AuC rebalanced", "C1")):
        s, v = _series(val, key)
        if len(s):
            ax_auc.plot(s, v, "o-", ms=3, color=colour, label=label)
    ax_auc.set(xlabel="step", ylabel="%", title="validation AuC")
    if ax_auc.lines:
        ax_auc.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return Path(out_path)
