"""Flicker metrics of a colorized video, streamed frame by frame.

- **Warping error** (Lai et al. 2018, "Learning blind video temporal consistency", ECCV, section 5.1):
  for each pair of consecutive frames, frame t+1 of the output is warped back onto frame t by the
  forward flow t -> t+1, and the squared RGB difference (values in [0, 1]) is averaged over the
  channels of the pixels that the flow can follow (the occlusion test of
  :func:`colorjax.inference.temporal.occlusion`, Lai et al.'s thresholds); the figure is the mean
  over the T - 1 pairs. As in Lai et al.'s evaluation, the flow comes from the *reference* frames
  (here the ground truth), so every colorization of a clip is measured along the same motion.
  Departure: the flow is OpenCV's DIS, not FlowNet2.
  A pair across a scene cut of the reference (fewer than :data:`~colorjax.inference.temporal.CUT_VISIBLE_SHARE`
  of its pixels pass the occlusion test) compares two different shots through the few pixels the
  flow happens to match; Lai et al.'s test videos are single shots, so no pair of theirs crosses a
  cut. Both means are kept: ``warping_error`` over all T - 1 pairs (the issue's definition) and
  ``warping_error_within_shots`` over the pairs that do not cross a cut (``cut_pairs`` counts the others).
- **CDC**, colour distribution consistency (Liu et al. 2021, TCVC, "Temporally consistent video
  colorization with deep feature propagation and self-regularization learning"): the Jensen-Shannon
  divergence (natural logarithm) between the normalised 256-bin histograms of frames i and i + d, per
  RGB channel and averaged over the channels and over i, then averaged over d = 1, 2, 4.

Both depend on the lightness as well as on the colour: a clip's gray version (ab = 0) has a warping
error and a CDC of its own, the floor that only colour can add to; report the excess over it.
"""

from __future__ import annotations

import collections

import numpy as np

from colorjax.inference.temporal import CUT_VISIBLE_SHARE, dis_flow, gray, occlusion, warp

CDC_DILATIONS = (1, 2, 4)  # Liu et al. 2021 (TCVC), section 4.1
HISTOGRAM_BINS = 256


def pair_warping_error(first: np.ndarray, second: np.ndarray, forward: np.ndarray, visible: np.ndarray) -> float:
    """Lai et al.'s error of one pair: uint8 RGB ``second`` warped by ``forward`` (first -> second)
    onto ``first``, squared differences of values in [0, 1] averaged over the channels of the
    ``visible`` pixels (over all pixels when none is visible, as Lai et al.'s script does)."""
    warped = warp(np.asarray(second, np.float32) / 255.0, forward)
    diff = (warped - np.asarray(first, np.float32) / 255.0) * visible[..., None]
    count = 3 * int(visible.sum()) or diff.size
    return float(np.sum(diff.astype(np.float64) ** 2) / count)


def channel_histograms(rgb: np.ndarray) -> np.ndarray:
    """[3, 256]: each channel's histogram of a uint8 RGB frame, normalised to sum 1."""
    flat = np.asarray(rgb, np.uint8).reshape(-1, 3)
    return np.stack([np.bincount(flat[:, c], minlength=HISTOGRAM_BINS) for c in range(3)]) / len(flat)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between distributions on the last axis."""
    m = (p + q) / 2

    def kl(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.where(a > 0, a * np.log(a / m), 0.0), axis=-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class TemporalMetrics:
    """Warping error and CDC of several colorizations of one clip at once, one frame at a time.

    ``update(reference, outputs)``: the reference frame (uint8 RGB; its flow is computed once per
    pair and shared) and each colorization's frame, by name. Holds two frames per name and the last
    four histograms: memory does not grow with the clip.
    """

    def __init__(self):
        self.previous_reference = None
        self.previous: dict[str, np.ndarray] = {}
        self.histograms: dict[str, collections.deque] = {}
        self.warping_sums: dict[str, float] = collections.defaultdict(float)
        self.within_shot_sums: dict[str, float] = collections.defaultdict(float)
        self.cut_pairs = 0
        self.cdc_sums: dict[str, np.ndarray] = {}
        self.pairs = 0
        self.frames = 0

    def update(self, reference: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        reference_gray = gray(reference)
        if self.previous_reference is not None:
            forward = dis_flow(self.previous_reference, reference_gray)
            backward = dis_flow(reference_gray, self.previous_reference)
            visible = ~occlusion(forward, backward)
            across_cut = visible.mean() < CUT_VISIBLE_SHARE
            for name, frame in outputs.items():
                error = pair_warping_error(self.previous[name], frame, forward, visible)
                self.warping_sums[name] += error
                self.within_shot_sums[name] += 0.0 if across_cut else error
            self.pairs += 1
            self.cut_pairs += int(across_cut)
        for name, frame in outputs.items():
            history = self.histograms.setdefault(name, collections.deque(maxlen=max(CDC_DILATIONS)))
            sums = self.cdc_sums.setdefault(name, np.zeros((len(CDC_DILATIONS), 2)))
            current = channel_histograms(frame)
            for k, d in enumerate(CDC_DILATIONS):
                if len(history) >= d:
                    sums[k] += (float(np.mean(js_divergence(history[-d], current))), 1)
            history.append(current)
        self.previous_reference, self.previous = reference_gray, dict(outputs)
        self.frames += 1

    def result(self) -> dict[str, dict[str, float]]:
        """``{name: {"warping_error", "warping_error_within_shots", "cut_pairs", "cdc"}}``; the CDC averages
        the dilations the clip is long enough for."""
        out = {}
        for name, sums in self.cdc_sums.items():
            used = sums[:, 1] > 0
            out[name] = {
                "warping_error": self.warping_sums[name] / self.pairs if self.pairs else float("nan"),
                "warping_error_within_shots": (self.within_shot_sums[name] / (self.pairs - self.cut_pairs)
                                               if self.pairs > self.cut_pairs else float("nan")),
                "cut_pairs": self.cut_pairs,
                "cdc": float(np.mean(sums[used, 0] / sums[used, 1])) if used.any() else float("nan"),
            }
        return out
