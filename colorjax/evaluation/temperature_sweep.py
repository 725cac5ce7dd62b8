"""Table (d): one Q-bin model decoded at Zhang et al.'s temperatures, as an image grid.

Rows are images; columns are the gray input, the annealed mean at each T of
:data:`colorjax.evaluation.paper_numbers.SWEEP_TEMPERATURES` (T = 1: the mean, dull; T = 0: the
mode, vivid but patchy) and the ground truth. Beside the PNG, a Markdown file gives the metrics of
each T on the same images, so the trade-off (colourfulness up, AuC down as T falls) is measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorjax.evaluation.paper_numbers import SWEEP_TEMPERATURES
from colorjax.inference.colorizer import DEFAULT_SIZE

LABEL_HEIGHT = 14  # px of the caption strip above each column


def sweep_rows(colorizer, rgb_uint8: np.ndarray, temperatures=SWEEP_TEMPERATURES, prior=None):
    """``(rows, metrics_by_T)`` for a batch of uint8 RGB images [N, S, S, 3] colorized by a
    :class:`colorjax.inference.Colorizer` (its size and rebalancing correction; T swept)."""
    from colorjax.evaluation.evaluate import evaluate, model_predictor

    if not colorizer.classification:
        raise ValueError("the temperature sweep needs a Q-bin (classification) model")
    rows = None
    metrics_by_t = {}
    for t in temperatures:
        metrics, t_rows = evaluate(model_predictor(colorizer, t), [{"rgb": rgb_uint8}], prior=prior,
                                   grid_images=len(rgb_uint8))
        metrics_by_t[t] = metrics
        if rows is None:
            rows = [[gray] for gray, _, _ in t_rows]
        for row, (_, pred, _) in zip(rows, t_rows):
            row.append(pred)
    for row, truth in zip(rows, rgb_uint8):
        row.append(truth)
    return rows, metrics_by_t


def labelled_grid(rows, labels, pad: int = 2) -> np.ndarray:
    """The image grid with a caption strip naming each column."""
    from colorjax.grids import image_grid

    grid = image_grid(rows, pad=pad)
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + LABEL_HEIGHT), "white")
    canvas.paste(Image.fromarray(grid), (0, LABEL_HEIGHT))
    draw, width = ImageDraw.Draw(canvas), rows[0][0].shape[1]
    for j, label in enumerate(labels):
        draw.text((pad + j * (width + pad) + 2, 1), label, fill="black")
    return np.asarray(canvas)


def write_sweep(checkpoint, data, out, *, split="test", images=6, size=DEFAULT_SIZE, data_dir=None,
                model_size=None) -> dict:
    """Colorize ``images`` images of ``data`` at every T; write ``out`` (PNG) and ``out`` .md."""
    from colorjax.data import make_loader
    from colorjax.evaluation.report import format_value
    from colorjax.inference.colorizer import Colorizer

    colorizer = Colorizer.from_checkpoint(checkpoint, size=model_size or size, batch_size=images)
    loader = make_loader(data, split, crop_size=size, batch_size=images, train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    rgb = np.asarray(next(iter(loader))["rgb"])
    rows, metrics_by_t = sweep_rows(colorizer, rgb, prior=colorizer.prior)
    labels = ["gray", *(f"T={t:g}" for t in SWEEP_TEMPERATURES), "truth"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labelled_grid(rows, labels)).save(out)
    names = [k for k in ("auc_raw", "auc_rebalanced", "psnr", "colourfulness") if k in metrics_by_t[SWEEP_TEMPERATURES[0]]]
    lines = [f"## Temperature sweep: {checkpoint} on {len(rgb)} images of `{data}` ({split}, {size} px)", "",
             "| T | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {t:g} | " + " | ".join(format_value(m.get(k)) for k in names) + " |" for t, m in metrics_by_t.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + f"\n\nGrid: {out.name}\n")
    return metrics_by_t
