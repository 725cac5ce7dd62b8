"""colorize: any size, 16-bit gray, EXIF rotation, corrupt files among good ones; L kept exactly."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import skimage.color
from flax import nnx
from PIL import Image

from conftest import smooth_photo
from colorjax import color
from colorjax.checkpointing import save_model
from colorjax.inference import Colorizer, colorize_files, find_images, fit_chroma_to_gamut
from colorjax.inference import commands

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}  # as in test_evaluation, test_tables
EXIF_ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_random_model):
    return save_random_model(tmp_path_factory.mktemp("ckpt"), MODEL_CONFIG)


def _lightness(rgb_uint8):
    return skimage.color.rgb2lab(rgb_uint8)[..., 0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    big = smooth_photo(2000, 3000)
    Image.fromarray(big).save(folder / "big.jpg", quality=92)
    gray16 = (np.linspace(0, 65535, 90 * 120).reshape(90, 120)).astype(np.uint16)
    Image.fromarray(gray16).save(folder / "gray16.png")
    rotated = Image.fromarray(smooth_photo(40, 60, seed=1))
    exif = rotated.getexif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, displayed portrait (rotate 90 degrees clockwise)
    rotated.save(folder / "rotated.jpg", exif=exif, quality=95)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (folder / "sub").mkdir()
    Image.fromarray(smooth_photo(50, 70, seed=2)).save(folder / "sub" / "big.png")
    return folder, big, gray16


def _run(argv):
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    return commands.run(parser.parse_args(argv))


@pytest.mark.slow
def test_colorize_folder_keeps_sizes_and_lightness_and_skips_the_corrupt_file(checkpoint, inputs, tmp_path, capsys):
    folder, big, gray16 = inputs
    out = tmp_path / "out"
    code = _run([str(folder), "--checkpoint", str(checkpoint), "--out", str(out), "--size", "64",
                 "--batch-size", "2", "--no-progress"])
    assert code == 1  # one input failed
    captured = capsys.readouterr()
    assert "corrupt.jpg" in captured.err and "4 colorized, 1 failed" in captured.out
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["big.png", "gray16.png", "rotated.png", "sub/big.png"]

    big_out = np.asarray(Image.open(out / "big.png"))
    assert big_out.shape == (2000, 3000, 3)
    big_in = np.asarray(Image.open(folder / "big.jpg").convert("RGB"))  # the decoded JPEG is the input
    diff = np.abs(_lightness(big_out[::7, ::7]) - _lightness(big_in[::7, ::7]))
    assert diff.mean() < 0.15 and diff.max() < 0.6  # only 8-bit rounding of the output moves L
    assert np.abs(big_out.astype(int) - big_out[..., :1]).max() > 0  # it is not gray: ab was added

    gray_out = np.asarray(Image.open(out / "gray16.png"))
    assert gray_out.shape == (90, 120, 3)
    L_in = skimage.color.rgb2lab(np.repeat((gray16 / 65535.0)[..., None], 3, -1))[..., 0]
    assert np.abs(_lightness(gray_out) - L_in).max() < 0.8  # 16 -> 8 bit input, 8-bit output

    assert np.asarray(Image.open(out / "rotated.png")).shape == (60, 40, 3)  # EXIF rotation applied


def test_colorize_glob_and_jpeg_output(checkpoint, inputs, tmp_path):
    from colorjax.checkpointing import load_model

    folder, _, _ = inputs
    model, _, _ = load_model(checkpoint)
    summary = colorize_files(Colorizer(model, size=64), [str(folder / "sub" / "*.png"), folder / "rotated.jpg"],
                             tmp_path, fmt="jpg", progress=False)
    assert not summary.failed and sorted(p.name for p in summary.written) == ["big.jpg", "rotated.jpg"]
    assert Image.open(tmp_path / "big.jpg").format == "JPEG"


def test_find_images_names_missing_inputs_and_deduplicates(inputs, tmp_path):
    folder, _, _ = inputs
    found = find_images([folder / "sub" / "big.png", folder / "big.jpg", folder / "big.jpg"])
    assert [name.as_posix() for _, name in found] == ["big", "big_1"]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        find_images([tmp_path / "nothing-here"])
    with pytest.raises(FileNotFoundError, match="pattern matches no file"):
        find_images([str(tmp_path / "*.png")])


def test_fit_chroma_to_gamut_keeps_l_and_hue_and_is_tight():
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(1, 99, 4000), rng.uniform(-120, 120, 4000), rng.uniform(-120, 120, 4000)], -1)
    lab = lab.astype(np.float32)
    fitted = np.asarray(fit_chroma_to_gamut(lab))
    was_out = np.asarray(color.out_of_gamut(lab))
    assert was_out.sum() > 1000 and not np.asarray(color.out_of_gamut(fitted)).any()
    np.testing.assert_array_equal(fitted[..., 0], lab[..., 0])
    np.testing.assert_array_equal(fitted[~was_out], lab[~was_out])  # in-gamut colours untouched
    scale = fitted[was_out, 1:] / lab[was_out, 1:]
    np.testing.assert_allclose(scale[:, 0], scale[:, 1], rtol=1e-5)  # same factor on a and b: hue kept
    # tight: 2 % more chroma leaves the gamut (checked with scikit-image, an independent conversion)
    pushed = np.concatenate([fitted[was_out, :1], fitted[was_out, 1:] * 1.02], -1).astype(np.float64)
    rgb = _unclipped_rgb(pushed)
    assert ((rgb < -1e-4) | (rgb > 1 + 1e-4)).any(-1).mean() > 0.95


def _unclipped_rgb(lab):
    """sRGB of Lab without clipping, through scikit-image's XYZ path."""
    xyz = skimage.color.lab2xyz(lab)
    linear = xyz @ skimage.color.colorconv.rgb_from_xyz.T
    return np.where(linear > 0.0031308, 1.055 * np.abs(linear) ** (1 / 2.4) * np.sign(linear) - 0.055, 12.92 * linear)


def test_a_size_the_model_cannot_take_is_refused_before_any_work(checkpoint, inputs, tmp_path, capsys):
    folder, _, _ = inputs
    code = _run([str(folder / "sub"), "--checkpoint", str(checkpoint), "--out", str(tmp_path), "--size", "60"])
    assert code == 2 and "divisible by 8" in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_colorize_and_evaluate_run_at_the_size_and_temperature_saved_in_the_checkpoint(tmp_path, monkeypatch):
    """A model trained at 32 px runs at 32 px unless told otherwise (not the paper's 256)."""
    from colorjax.evaluation import commands as evaluate_commands
    from colorjax.models import build_model

    saved = {**MODEL_CONFIG, "inference": {"size": 32, "temperature": 0.5}}
    save_model(tmp_path / "ckpt", build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0)), saved)
    Image.fromarray(smooth_photo(48, 80)).save(tmp_path / "photo.png")
    seen = {}

    def spy(colorizer, inputs, out, **kwargs):
        seen.update(size=colorizer.size, temperature=colorizer.temperature)
        return colorize_files(colorizer, inputs, out, **kwargs)

    monkeypatch.setattr("colorjax.inference.colorize.colorize_files", spy)
    assert _run([str(tmp_path / "photo.png"), "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 0
    assert (seen["size"], seen["temperature"]) == (32, 0.5)
    assert _run([str(tmp_path / "photo.png"), "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "b"),
                 "--no-progress", "--size", "64", "--temperature", "0.2"]) == 0
    assert (seen["size"], seen["temperature"]) == (64, 0.2)  # given on the command line: as given
    # evaluate at a 64 px crop runs the model at its 32 px (L down, ab back up), as colorize does
    record = evaluate_commands.evaluate_to_file(checkpoint=tmp_path / "ckpt", data="embedded", split="test",
                                                out=tmp_path / "eval", size=64, batch_size=2)
    assert (record["model_size"], record["temperature"]) == (32, 0.5)


def test_fit_chroma_to_gamut_takes_the_same_steps_as_a_bisection_on_encoded_srgb():
    """The linear-RGB test inside the bisection decides as color.out_of_gamut does on encoded sRGB."""
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(1, 99, 5000), rng.uniform(-120, 120, 5000), rng.uniform(-120, 120, 5000)], -1)
    lab = jnp.asarray(lab, jnp.float32)
    L, ab = lab[..., :1], lab[..., 1:]
    inside = lambda s: ~color.out_of_gamut(jnp.concatenate([L, ab * s[..., None]], axis=-1))  # noqa: E731
    lo, hi = jnp.where(inside(jnp.ones(lab.shape[:-1])), 1.0, 0.0), jnp.ones(lab.shape[:-1])
    for _ in range(10):
        mid = (lo + hi) / 2
        ok = inside(mid)
        lo, hi = jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
    expected = np.concatenate([np.asarray(L), np.asarray(ab * lo[..., None])], -1)
    np.testing.assert_array_equal(np.asarray(fit_chroma_to_gamut(lab)), expected)


@pytest.mark.parametrize("shape", [(512, 512, 64, 64), (301, 457, 256, 256), (16, 16, 300, 200), (7, 5, 7, 5)])
def test_resize_linear_matches_jax_image_resize(shape):
    """The NumPy resize of the inference path equals jax.image.resize(linear, antialias=True)."""
    import jax

    from colorjax.inference.host_work import resize_linear

    H, W, h, w = shape
    x = np.random.default_rng(0).normal(size=(H, W, 2)).astype(np.float32)
    expected = np.asarray(jax.image.resize(x, (h, w, 2), "linear", antialias=True))
    np.testing.assert_allclose(resize_linear(x, h, w), expected, atol=1e-5)
