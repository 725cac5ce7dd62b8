"""The one inference path: ``colorize``, ``evaluate`` and the demo agree, and a decoding override
replaces the checkpoint's saved setting (an override to 0 included)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax.bins import zhang_bins
from colorjax.checkpointing import save_model
from colorjax.inference import commands
from colorjax.models import build_model
from colorjax.prior import ColourPrior
from conftest import smooth_photo

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 32}
SIZE = 32


def _colorize(photo_path, checkpoint, out, *extra):
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    args = parser.parse_args([str(photo_path), "--checkpoint", str(checkpoint), "--out", str(out), "--size",
                              str(SIZE), "--no-progress", *extra])
    assert commands.run(args) == 0
    return np.asarray(Image.open(out / f"{photo_path.stem}.png"))


def _skewed_prior():
    """A prior whose rebalancing weights differ strongly between bins (so a correction shows)."""
    centres = zhang_bins()
    counts = np.exp(np.random.default_rng(0).uniform(0, 8, len(centres)))
    return ColourPrior.from_counts(counts, centres)


def test_a_prior_correction_override_of_0_replaces_the_saved_one(tmp_path):
    """Defect 2 of issue 25: ``--prior-correction 0`` on a checkpoint saved with 0.5 must decode as
    the same model saved without a correction (byte-identical files), not keep the saved 0.5."""
    model = build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0))
    prior = _skewed_prior()
    save_model(tmp_path / "corrected", model, {**MODEL_CONFIG, "inference": {"prior_correction": 0.5}}, prior=prior)
    save_model(tmp_path / "plain", model, MODEL_CONFIG, prior=prior)
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_photo(40, 56)).save(photo)

    plain = _colorize(photo, tmp_path / "plain", tmp_path / "a")
    saved = _colorize(photo, tmp_path / "corrected", tmp_path / "b")
    undone = _colorize(photo, tmp_path / "corrected", tmp_path / "c", "--prior-correction", "0")
    assert np.abs(saved.astype(int) - plain).max() >= 3  # the saved 0.5 changes the colours
    np.testing.assert_array_equal(undone, plain)  # ... and an override to 0 undoes it exactly
    redone = _colorize(photo, tmp_path / "plain", tmp_path / "d", "--prior-correction", "0.5")
    np.testing.assert_array_equal(redone, saved)  # an override sets it on a checkpoint saved without


def test_colorize_evaluate_and_the_demo_agree_within_one_level(tmp_path):
    """One checkpoint (run at its saved 32 px, with a saved rebalancing correction) and one 64 px
    photo: the file ``colorjax colorize`` writes, the prediction ``colorjax evaluate`` scores (its
    grid's prediction tile, and its ab against the file's) and the demo's image are the same to
    within one 8-bit level."""
    import io

    import skimage.color

    from colorjax.data import make_loader
    from colorjax.demo.engine import DemoEngine
    from colorjax.evaluation.commands import evaluate_to_file

    saved = {**MODEL_CONFIG, "inference": {"size": SIZE, "temperature": 0.3, "prior_correction": 0.5}}
    save_model(tmp_path / "ckpt", build_model(**MODEL_CONFIG, rngs=nnx.Rngs(2)), saved, prior=_skewed_prior())
    crop = 2 * SIZE
    photo = np.asarray(next(iter(make_loader("embedded", "test", crop_size=crop, batch_size=1, train=False,
                                             drop_gray=True, num_epochs=1)))["rgb"][0])
    Image.fromarray(photo).save(tmp_path / "photo.png")

    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    assert commands.run(parser.parse_args([str(tmp_path / "photo.png"), "--checkpoint", str(tmp_path / "ckpt"),
                                           "--out", str(tmp_path / "out"), "--no-progress"])) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "photo.png")).astype(int)

    record = evaluate_to_file(checkpoint=tmp_path / "ckpt", data="embedded", split="test", out=tmp_path / "eval",
                              size=crop, batch_size=1, max_images=1)
    assert (record["model_size"], record["temperature"], record["prior_correction"]) == (SIZE, 0.3, 0.5)
    grid = np.asarray(Image.open(tmp_path / "eval_grid.png"))
    pad = 2  # image_grid's spacing: row 0 is gray | prediction | truth
    np.testing.assert_array_equal(grid[pad : pad + crop, 3 * pad + 2 * crop : 3 * pad + 3 * crop], photo)
    evaluated = grid[pad : pad + crop, 2 * pad + crop : 2 * pad + 2 * crop].astype(int)

    demo = DemoEngine.from_checkpoint(tmp_path / "ckpt")
    shown = demo.colorize((tmp_path / "photo.png").read_bytes(), "photo.png", temperature=0.3)
    shown = np.asarray(Image.open(io.BytesIO(shown.colorized_png))).astype(int)

    assert np.abs(written - np.asarray(photo)[..., :1]).max() > 10  # colour was added: not a trivial match
    assert np.abs(evaluated - written).max() <= 1
    assert np.abs(shown - written).max() <= 1
    # the ab evaluate scores is the file's ab (up to 8-bit rounding and the gamut fitting of the file)
    from colorjax.evaluation.evaluate import model_predictor
    from colorjax.inference import Colorizer

    colorizer = Colorizer.from_checkpoint(tmp_path / "ckpt", default_size=crop)
    lab = skimage.color.rgb2lab(photo)
    ab = model_predictor(colorizer)(lab[None].astype(np.float32))[0]
    from colorjax import color

    inside = ~np.asarray(color.out_of_gamut(np.concatenate([lab[..., :1], ab], -1)))
    file_ab = skimage.color.rgb2lab(written.astype(np.uint8))[..., 1:]
    assert inside.mean() > 0.5 and np.abs(file_ab[inside] - ab[inside]).max() < 2.0


def test_colorize_frames_takes_rgb_or_lightness_and_equals_colorize_arrays():
    """The video path: a batch of frames (uint8 RGB, or their L) gives the pixels colorize_arrays gives."""
    from colorjax.inference import Colorizer
    from colorjax.inference.pixels import lightness

    colorizer = Colorizer(build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0)), size=SIZE, batch_size=2)
    frames = np.stack([smooth_photo(36, 52, seed) for seed in range(3)])  # 3 frames: batches of 2, then 1 padded
    from_rgb = colorizer.colorize_frames(frames)
    assert from_rgb.shape == frames.shape and from_rgb.dtype == np.uint8
    np.testing.assert_array_equal(from_rgb, np.stack(colorizer.colorize_arrays(list(frames))))
    np.testing.assert_array_equal(colorizer.colorize_frames(np.stack([lightness(f) for f in frames])), from_rgb)
    with pytest.raises(ValueError, match=r"frames must be uint8 RGB \[N, H, W, 3\] or L \[N, H, W, 1\]"):
        colorizer.colorize_frames(frames[0])
