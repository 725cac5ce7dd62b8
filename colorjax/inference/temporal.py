"""Temporal consistency without training: ab carried along optical flow from the previous output.

The method follows Bonneel et al. (2015), "Blind video temporal consistency" (ACM TOG 34(6)): the
output O_t stays close to the per-frame result P_t and to the previous output warped along the flow,
W_t = warp(O_{t-1}), with a temporal weight w_t = lambda * exp(-alpha * |I_t - warp(I_{t-1})|^2) set
by how well the *input* frames themselves agree after warping (where they disagree the flow is
wrong, and the per-frame result is kept; here the inputs' gray). Departures from it:

- only ab is stabilised; L is the frame's own lightness (the photo path's rule: only ab comes from
  the model), so no detail can be smeared by the flow;
- the gradient-domain term (Bonneel's || grad O - grad P ||^2, solved as a screened Poisson problem)
  is dropped: ab from a model at 256 px has no detail to keep, and the minimiser of the remaining
  pointwise energy |O - P|^2 + w |O - W|^2 is the blend O = (P + w W) / (1 + w), one line per pixel;
- pixels that the flow cannot follow are found by the forward-backward consistency test of
  Sundaram et al. (2010) with the thresholds Lai et al. (2018) use for their warping error
  (:func:`occlusion`), and get w = 0;
- a scene cut (most pixels occluded, or the warped lightness far off) resets the propagation, as
  Lai et al.'s and Lei et al.'s (2020) methods are run per shot.

The flow is OpenCV's DIS (Kroeger et al. 2016), computed on the frames' gray shrunk to at most
:data:`FLOW_SIDE` pixels on the long side (the warping itself is at full size). Up to standard
definition the flow runs at the frame's own size: shrunk, it misses the small motions that the warping
error's full-size flow follows (bikes, 640 x 272, all 250 frames: within shots 79 % of per-frame's
excess removed with the flow at 512 px, 85 % at full size).
"""

from __future__ import annotations

import cv2
import jax
import numpy as np

from colorjax import color

# Bonneel et al. (2015) set the temporal weight's lambda and alpha per application; these are ours:
# lambda = 4 keeps 4/5 of the warped previous ab where the input agrees (an exponential memory of
# about five frames), and the weight falls to lambda / e where the warped previous input's gray is
# off by SIGMA_GRAY (of 255; about 6 units of L).
TEMPORAL_WEIGHT = 4.0
SIGMA_GRAY = 15.0
# Scene cut: fewer than half the pixels pass the consistency test, or the warped previous input's
# gray is off by more than this mean absolute difference (of 255).
CUT_VISIBLE_SHARE = 0.5
CUT_MEAN_GRAY = 30.0
FLOW_SIDE = 640  # standard definition at full size; 720p and larger are shrunk to this
DIS_MIN_SIDE = 12  # OpenCV's DIS refuses frames with both sides below this
# Lai et al. (2018), compute_flow_occlusion: forward-backward test and motion-boundary test constants.
OCCLUSION_RELATIVE = 0.01
OCCLUSION_ABSOLUTE = 0.5
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002

_DIS = {}


def dis_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Optical flow [H, W, 2] (x, y) from uint8 gray ``first`` to ``second``: a pixel p of ``first``
    is at p + flow(p) in ``second``. OpenCV's DIS at its MEDIUM preset (one instance per thread).
    A frame smaller than DIS's smallest patch on both sides gets zero flow."""
    import threading

    if max(first.shape[:2]) < DIS_MIN_SIDE:
        return np.zeros(first.shape[:2] + (2,), np.float32)
    key = threading.get_ident()
    if key not in _DIS:
        _DIS[key] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _DIS[key].calc(first, second, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at p + flow(p) (bilinear, edges repeated): the image a flow from the
    current frame to ``image``'s frame brings back onto the current frame."""
    H, W = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    warped = cv2.remap(np.asarray(image, np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(np.shape(image)[:2] + np.shape(image)[2:])


def occlusion(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Bool [H, W]: the pixels of frame 1 that the flow ``forward`` (1 -> 2) cannot follow, with
    ``backward`` (2 -> 1): Lai et al. (2018)'s test (after Sundaram et al. 2010). A pixel is occluded
    when the forward flow and the backward flow at its target do not cancel,
    |f + b(p + f)|^2 > 0.01 (|f|^2 + |b(p + f)|^2) + 0.5, or it lies on a motion boundary,
    |grad f_x|^2 + |grad f_y|^2 > 0.01 |f|^2 + 0.002."""
    back_at_target = warp(backward, forward)
    sum_sq = np.sum((forward + back_at_target) ** 2, axis=-1)
    mag_sq = np.sum(forward**2, axis=-1) + np.sum(back_at_target**2, axis=-1)
    inconsistent = sum_sq > OCCLUSION_RELATIVE * mag_sq + OCCLUSION_ABSOLUTE
    du_dy, du_dx = np.gradient(forward[..., 0])
    dv_dy, dv_dx = np.gradient(forward[..., 1])
    gradient_sq = du_dx**2 + dv_dx**2 + du_dy**2 + dv_dy**2
    boundary = gradient_sq > BOUNDARY_RELATIVE * np.sum(forward**2, axis=-1) + BOUNDARY_ABSOLUTE
    return inconsistent | boundary


def gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 gray (Rec. 601 luma, OpenCV's) of uint8 RGB: the flow's input."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


_lab_pixels = jax.jit(color.rgb_uint8_to_lab)


class FlowPropagation:
    """Call with each frame (uint8 RGB) and its per-frame colorization, in order; returns the
    temporally stabilised colorization (uint8 RGB). Holds one frame of state. The flow, the
    occlusion test, the temporal weight and the scene-cut test read the input frames only; the
    output's L is the colorization's own (the input's, up to 8-bit rounding)."""

    def __init__(self, weight: float = TEMPORAL_WEIGHT, sigma_gray: float = SIGMA_GRAY):
        self.weight, self.sigma_gray = weight, sigma_gray
        self.previous = None  # (gray, gray at the flow's size, ab) of the last frame and output
        self.scene_cuts = 0

    def __call__(self, frame: np.ndarray, colored: np.ndarray) -> np.ndarray:
        from colorjax.inference.pixels import lab_to_uint8, map_pixels

        lab = map_pixels(_lab_pixels, colored)
        L, ab = lab[..., :1], lab[..., 1:]
        frame_gray = gray(frame)
        small = _shrink(frame_gray)
        if self.previous is None:
            self.previous = (frame_gray, small, ab)
            return colored
        previous_gray, previous_small, previous_ab = self.previous
        backward = dis_flow(small, previous_small)  # current -> previous
        forward = dis_flow(previous_small, small)
        visible = _enlarge((~occlusion(backward, forward)).astype(np.float32), L.shape[:2]) > 0.5
        flow = _enlarge_flow(backward, L.shape[:2])
        gray_error = np.abs(frame_gray.astype(np.float32) - warp(previous_gray, flow))
        if visible.mean() < CUT_VISIBLE_SHARE or gray_error.mean() > CUT_MEAN_GRAY:
            self.scene_cuts += 1
            self.previous = (frame_gray, small, ab)
            return colored
        w = (self.weight * np.exp(-((gray_error / self.sigma_gray) ** 2)) * visible)[..., None]
        fused = (ab + w * warp(previous_ab, flow)) / (1.0 + w)
        self.previous = (frame_gray, small, fused)
        return lab_to_uint8(L, fused)


def _shrink(gray_frame: np.ndarray) -> np.ndarray:
    H, W = gray_frame.shape
    scale = FLOW_SIDE / max(H, W)
    if scale >= 1:
        return gray_frame
    return cv2.resize(gray_frame, (max(1, round(W * scale)), max(1, round(H * scale))), interpolation=cv2.INTER_AREA)


def _enlarge(image: np.ndarray, shape) -> np.ndarray:
    if image.shape[:2] == tuple(shape):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def _enlarge_flow(flow: np.ndarray, shape) -> np.ndarray:
    """A flow at a smaller size, resized to ``shape`` with its vectors scaled to match."""
    if flow.shape[:2] == tuple(shape):
        return flow
    h, w = flow.shape[:2]
    big = cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return big * np.array([shape[1] / w, shape[0] / h], np.float32)
