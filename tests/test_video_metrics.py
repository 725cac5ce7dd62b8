"""The flicker metrics against hand computations: Jensen-Shannon divergence (and scipy's), CDC on
solid-colour frames, Lai et al.'s occlusion test on constant flows, the warping error of a static
scene whose colour changes by a known step."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from colorjax.evaluation.video_metrics import TemporalMetrics, channel_histograms, js_divergence, pair_warping_error
from colorjax.inference.temporal import occlusion, warp


def test_js_divergence_by_hand_and_against_scipy():
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.log(2))
    # p = (1/2, 1/2), q = (1, 0): M = (3/4, 1/4); KL(p||M) = ln(4/3) / 2, KL(q||M) = ln(4/3)
    assert js_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(0.75 * np.log(4 / 3))
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(256)), rng.dirichlet(np.ones(256))
    assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2)  # scipy: the root, in nats


def test_channel_histograms_count_each_channel():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 7, 0)
    h = channel_histograms(rgb)
    assert h.shape == (3, 256) and h[0, 255] == h[1, 7] == 0.25 and h[0, 0] == h[1, 0] == 0.75 and h[2, 0] == 1


def test_cdc_of_alternating_solid_frames():
    """Frames A B A B A of solid colours: every d = 1 pair differs (JS = ln 2 per channel), every
    d = 2 and d = 4 pair is equal (0): CDC = (ln 2 + 0 + 0) / 3."""
    a, b = np.full((8, 8, 3), 10, np.uint8), np.full((8, 8, 3), 200, np.uint8)
    metrics = TemporalMetrics()
    for frame in (a, b, a, b, a):
        metrics.update(a, {"clip": frame})  # a static reference: the flow plays no part in the CDC
    assert metrics.result()["clip"]["cdc"] == pytest.approx(np.log(2) / 3)


def test_occlusion_test_on_constant_flows():
    forward = np.zeros((20, 20, 2), np.float32)
    forward[..., 0] = 2.0
    assert not occlusion(forward, -forward).any()  # forward and backward cancel: all visible
    # b = +2 too: |f + b|^2 = 16 > 0.01 (4 + 4) + 0.5 everywhere
    assert occlusion(forward, forward).all()
    # A motion boundary: the flow jumps by 3 px between columns 9 and 10; np.gradient spreads the
    # jump over columns 9 and 10 (1.5 px each): 1.5^2 > 0.01 |f|^2 + 0.002 there, nowhere else.
    jump = np.zeros((20, 20, 2), np.float32)
    jump[:, 10:, 0] = 3.0
    boundary = occlusion(jump, -jump)
    assert boundary[:, 9:11].all() and not boundary[:, :9].any() and not boundary[:, 11:].any()


def test_warp_follows_an_integer_flow():
    image = np.random.default_rng(0).uniform(size=(16, 16, 3)).astype(np.float32)
    flow = np.zeros((16, 16, 2), np.float32)
    flow[..., 0] = 3.0  # each pixel p fetches p + (3, 0)
    np.testing.assert_allclose(warp(image, flow)[:, :13], image[:, 3:], atol=1e-6)


def test_warping_error_of_a_static_scene_is_the_mean_squared_colour_step():
    """No motion (zero flow, nothing occluded): the error of a pair is the channel mean of the
    squared difference, here a step of (10, 20, 30) / 255 on every pixel."""
    first = np.full((12, 12, 3), 100, np.uint8)
    second = first + np.array([10, 20, 30], np.uint8)
    zero = np.zeros((12, 12, 2), np.float32)
    expected = np.mean((np.array([10, 20, 30]) / 255.0) ** 2)
    assert pair_warping_error(first, second, zero, np.ones((12, 12), bool)) == pytest.approx(expected, rel=1e-5)
    half = np.zeros((12, 12), bool)
    half[:, :6] = True  # the mean is over the visible pixels only
    assert pair_warping_error(first, second, zero, half) == pytest.approx(expected, rel=1e-5)


def test_warping_error_streams_over_a_textured_static_clip():
    texture = (np.random.default_rng(1).uniform(size=(48, 48, 3)) * 255).astype(np.uint8)
    steps = [0, 4, 4, 12]
    metrics = TemporalMetrics()
    for step in steps:
        metrics.update(texture, {"clip": (texture.astype(int) // 2 + step).astype(np.uint8)})
    expected = np.mean([(b - a) ** 2 / 255.0**2 for a, b in zip(steps, steps[1:])])
    assert metrics.result()["clip"]["warping_error"] == pytest.approx(expected, rel=1e-3)


def test_pairs_across_a_scene_cut_are_left_out_of_the_within_shot_mean():
    """Two static shots of unrelated random textures: the pair across the cut fails the occlusion test
    almost everywhere and is counted in ``cut_pairs``; ``warping_error_within_shots`` is the mean of
    the four other pairs' known colour steps, and the all-pairs mean is raised by the cut pair."""
    rng = np.random.default_rng(2)
    shots = [(rng.uniform(size=(48, 48, 3)) * 255).astype(np.uint8) for _ in range(2)]
    references = [shots[0]] * 3 + [shots[1]] * 3
    steps = [0, 4, 12, 0, 8, 8]
    metrics = TemporalMetrics()
    for reference, step in zip(references, steps):
        metrics.update(reference, {"clip": (reference.astype(int) // 2 + step).astype(np.uint8)})
    result = metrics.result()["clip"]
    within = [(steps[i + 1] - steps[i]) ** 2 / 255.0**2 for i in (0, 1, 3, 4)]
    assert result["cut_pairs"] == 1
    assert result["warping_error_within_shots"] == pytest.approx(np.mean(within), rel=1e-3)
    assert result["warping_error"] > 10 * result["warping_error_within_shots"]
