"""colorize at the model's rate without changing its pixels: photos of mixed sizes share a batch,
the gamut fitting runs on the out-of-gamut pixels only, and new photo sizes compile nothing."""

import argparse

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax.checkpointing import save_model
from colorjax.inference import Colorizer, colorize_arrays, colorize_files
from colorjax.inference import colorizer as colorizer_module
from colorjax.inference import pixels as pixels_module
from colorjax.inference import commands
from colorjax.models import build_model

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 32}
SIZES = [(37, 52), (90, 61), (23, 23), (64, 100), (51, 33)]


def _photo(height, width, seed):
    """Smooth colourful gradients with a little noise, uint8 RGB."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([0.5 + 0.4 * np.sin(7 * x + seed), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.6 * x * y], -1)
    rgb += np.random.default_rng(seed).normal(0, 0.03, rgb.shape)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    return build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0))


def _compilations():
    compiled = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiled.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)
    return compiled


def test_mixed_size_photos_in_one_batch_give_the_pixels_of_one_at_a_time(model, tmp_path):
    photos = [_photo(h, w, seed) for seed, (h, w) in enumerate(SIZES)]
    alone = [colorize_arrays(model, [p], size=32, batch_size=3)[0] for p in photos]
    together = colorize_arrays(model, photos, size=32, batch_size=3)  # batches of 3 sizes, then 2 (padded)
    for a, t, p in zip(alone, together, photos):
        assert t.shape == p.shape
        np.testing.assert_array_equal(t, a)
    assert np.abs(alone[0].astype(int) - alone[0][..., :1]).max() > 0  # colour was added: not a trivial match

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, p in enumerate(photos):
        Image.fromarray(p).save(folder / f"{i}.png")
    summary = colorize_files(Colorizer(model, size=32, batch_size=3), [folder], tmp_path / "out", progress=False)
    assert len(summary.written) == len(photos) and not summary.failed
    for i, a in enumerate(alone):  # the pipelined file path, PNG read back: the same pixels
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{i}.png")), a)


def test_gamut_fitting_of_the_outside_pixels_only_equals_the_bisection_over_every_pixel():
    """Vivid ab puts a third or more of the pixels outside sRGB: those go through the bisection in
    gathered chunks, the rest keep their colour; against the bisection run over every pixel."""
    rng = np.random.default_rng(0)
    L = rng.uniform(5, 95, (300, 410, 1)).astype(np.float32)
    ab = rng.normal(0, 45, (300, 410, 2)).astype(np.float32)
    outside = np.asarray(pixels_module.color.out_of_gamut(np.concatenate([L, ab], -1)))
    assert 0.3 < outside.mean() < 0.95
    every_pixel = pixels_module.map_pixels(jax.jit(pixels_module._lab_pixels_to_uint8), L, ab)
    fitted = pixels_module.lab_to_uint8(L, ab)
    differ = np.any(fitted != every_pixel, axis=-1)
    assert np.abs(fitted.astype(int) - every_pixel).max() <= 1 and differ.mean() < 1e-3  # float rounding only
    clipped = np.round(np.clip(np.asarray(pixels_module.color.lab_to_rgb(np.concatenate([L, ab], -1))), 0, 1) * 255)
    assert np.abs(fitted[outside].astype(int) - clipped[outside]).max() > 10  # the outside pixels were refitted


def test_a_second_run_over_new_sizes_compiles_nothing(model, tmp_path, monkeypatch):
    """Through the command: after a first run (over photos whose colours all fall inside the gamut),
    a second run over photos of five new sizes, with colours outside it, compiles no XLA program."""
    checkpoint = tmp_path / "checkpoint"
    save_model(checkpoint, model, MODEL_CONFIG)
    monkeypatch.setattr(pixels_module, "_PIXEL_PROGRAMS", [])  # as in a fresh process
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    for i, (h, w) in enumerate([(40, 30), (31, 44)]):
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(first / f"{i}.png")  # gray: ab near 0
    for i, (h, w) in enumerate(SIZES):
        Image.fromarray(_photo(h, w, i)).save(second / f"{i}.png")

    def run(folder, out):
        parser = argparse.ArgumentParser()
        commands.add_arguments(parser)
        return commands.run(parser.parse_args([str(folder), "--checkpoint", str(checkpoint), "--out", str(out),
                                               "--size", "32", "--batch-size", "2", "--no-progress"]))

    assert run(first, tmp_path / "out1") == 0
    compiled = _compilations()
    # A vivid ab for every pixel, as a trained model can give: the bisection path is taken.
    monkeypatch.setattr(colorizer_module, "enlarge_ab", lambda ab, h, w: np.full((h, w, 2), 90.0, np.float32))
    assert run(second, tmp_path / "out2") == 0
    assert len(list((tmp_path / "out2").iterdir())) == len(SIZES)
    assert compiled == []
