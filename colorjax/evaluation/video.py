"""Evaluate a colorizer on a colour video: colorize its gray version, per frame and along the flow.

For each frame the colorizer sees only the lightness (the photo path reads L alone), so colour clips
are their own ground truth. Rows of the record:

- ``truth``: the clip itself; ``gray``: its frames with ab = 0 (the floor of the flicker metrics,
  set by the lightness alone);
- one row per temporal mode (``none``: each frame on its own; ``flow``: the per-frame result carried
  along the flow by :class:`colorjax.inference.temporal.FlowPropagation`); both come from the same
  model calls.

Each row has the photo metrics over all frames (:mod:`colorjax.metrics`: AuC raw and rebalanced,
PSNR, colourfulness, ...), the warping error and CDC (:mod:`colorjax.evaluation.video_metrics`) and
their excess over the gray row.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from colorjax.evaluation.report import format_value, write_report
from colorjax.evaluation.video_metrics import TemporalMetrics
from colorjax.inference.pixels import lab_to_uint8, lightness
from colorjax.inference.temporal import FlowPropagation
from colorjax.inference.video import TEMPORAL_MODES, FrameColorizer, probe_video, read_frames

PHOTO_METRICS = ("auc_raw", "auc_rebalanced", "psnr", "colourfulness", "colourfulness_true", "delta_cf")


def clip_prior(path, batch_size: int = 8):
    """Zhang's colour prior (313 bins) counted on the frames of the clip itself: the weights of the
    rebalanced AuC when no prior is given (said in the record)."""
    from colorjax import color
    from colorjax.bins import zhang_bins
    from colorjax.prior import ColourPrior, count_bins_over

    info = probe_video(path)
    ab = (np.asarray(color.rgb_uint8_to_lab(np.stack(batch)))[..., 1:] for batch in read_frames(info, batch_size))
    counts, images = count_bins_over(ab, zhang_bins())
    return ColourPrior.from_counts(counts, zhang_bins(), num_images=images)


def gray_frame(rgb: np.ndarray) -> np.ndarray:
    """The frame's lightness with ab = 0, as uint8 RGB."""
    L = lightness(rgb)
    return lab_to_uint8(L, np.zeros(L.shape[:2] + (2,), np.float32))


def evaluate_video(
    colorize: FrameColorizer | None,
    path,
    *,
    prior=None,
    batch_size: int = 8,
    modes: tuple[str, ...] = TEMPORAL_MODES,
    max_frames: int | None = None,
    keep_frames: tuple[int, int] | None = None,
) -> dict:
    """The record of ``colorize`` (:func:`colorjax.inference.video.frame_colorizer`; None: only the
    truth and gray rows) on the video at ``path``. ``keep_frames=(start, count)`` also returns those
    frames of every row under ``"frames"`` (for pictures)."""
    from colorjax.metrics import MetricAccumulator, batch_metric_sums

    info = probe_video(path)
    if prior is None:
        prior, prior_source = clip_prior(path, batch_size), "counted on the clip (313 bins)"
    else:
        prior_source = "given"
    names = ("truth", "gray") + (tuple(modes) if colorize is not None else ())
    accumulators = {name: MetricAccumulator() for name in names}
    temporal, propagation = TemporalMetrics(), FlowPropagation()
    kept = {name: [] for name in names}
    model_seconds, done, start = 0.0, 0, time.perf_counter()
    for frames in read_frames(info, batch_size):
        if max_frames is not None:
            frames = frames[: max_frames - done]
        if not frames:
            break
        rows = {"truth": list(frames), "gray": [gray_frame(f) for f in frames]}
        if colorize is not None:
            tick = time.perf_counter()
            per_frame = colorize(frames)
            model_seconds += time.perf_counter() - tick
            if "none" in modes:
                rows["none"] = per_frame
            if "flow" in modes:
                rows["flow"] = [propagation(f, out) for f, out in zip(frames, per_frame)]
        truth = np.stack(frames).astype(np.float32) / 255.0
        for name in names:
            pred = np.stack(rows[name]).astype(np.float32) / 255.0
            accumulators[name].update(batch_metric_sums(pred, truth, prior=prior))
        for i, frame in enumerate(frames):
            temporal.update(frame, {name: rows[name][i] for name in names})
            if keep_frames is not None and keep_frames[0] <= done + i < sum(keep_frames):
                for name in names:
                    kept[name].append(rows[name][i])
        done += len(frames)
        if max_frames is not None and done >= max_frames:
            break
    flicker = temporal.result()
    record = {"clip": str(path), "frames": done, "width": info.width, "height": info.height,
              "rate": float(info.rate), "prior_source": prior_source, "rows": {},
              "wall_s": round(time.perf_counter() - start, 2), "model_s": round(model_seconds, 2)}
    for name in names:
        metrics = accumulators[name].result()
        row = {key: metrics[key] for key in PHOTO_METRICS if key in metrics}
        row.update(flicker[name])
        row["excess_warping_error"] = row["warping_error"] - flicker["gray"]["warping_error"]
        row["excess_warping_error_within_shots"] = (row["warping_error_within_shots"]
                                                    - flicker["gray"]["warping_error_within_shots"])
        row["excess_cdc"] = row["cdc"] - flicker["gray"]["cdc"]
        record["rows"][name] = row
    if keep_frames is not None:
        record["frames_kept"] = kept
    return record


def video_markdown(record: dict) -> str:
    """The record as a Markdown table, one row per colorization."""
    columns = ("warping_error", "excess_warping_error", "excess_warping_error_within_shots", "cut_pairs", "cdc", "excess_cdc", "auc_raw", "auc_rebalanced", "psnr",
               "colourfulness")
    lines = [f"{record['clip']}: {record['frames']} frames, {record['width']} x {record['height']}", "",
             "| row | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in record["rows"].items():
        lines.append(f"| {name} | " + " | ".join(format_value(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_video_record(out, record: dict) -> dict[str, Path]:
    """Write ``OUT.json`` and ``OUT.md`` (:func:`colorjax.evaluation.report.write_report`); returns their paths."""
    serialisable = {k: v for k, v in record.items() if k != "frames_kept"}
    paths = write_report(out, serialisable, markdown=video_markdown)
    return {"json": paths["json"], "md": paths["md"]}


def evaluate_video_to_file(*, checkpoint=None, step=None, data, out, model_size=None, temperature=None,
                           batch_size: int = 8, max_frames=None, prior=None, prior_source=None,
                           prior_correction=None) -> dict:
    """``colorjax evaluate --data CLIP``: the record of a checkpoint (or, without one, of the truth and
    gray rows alone) on a colour video, written to ``OUT.json`` / ``OUT.md``. The rebalanced AuC's
    prior: ``prior`` as given, else the checkpoint's, else counted on the clip."""
    probe_video(data)  # a bad clip is refused before the model loads
    colorize, saved_prior, record_extra = None, None, {"checkpoint": None}
    if checkpoint is not None:
        from colorjax.inference import Colorizer
        from colorjax.inference.video import frame_colorizer

        colorizer = Colorizer.from_checkpoint(checkpoint, step=step, size=model_size, temperature=temperature,
                                              prior_correction=prior_correction, batch_size=batch_size)
        colorize, saved_prior = frame_colorizer(colorizer), colorizer.prior
        record_extra = {"checkpoint": str(checkpoint), "step": colorizer.step, "model_size": colorizer.size,
                        "temperature": colorizer.temperature, "prior_correction": colorizer.prior_correction}
    if prior is None and saved_prior is not None:
        prior, prior_source = saved_prior, "checkpoint"
    record = evaluate_video(colorize, data, prior=prior, batch_size=batch_size, max_frames=max_frames)
    if prior is not None:
        record["prior_source"] = prior_source
    record.update(record_extra)
    write_video_record(out, record)
    return record
