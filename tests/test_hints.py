"""User hints: parsing, the hint map, and colorizing with hints through the Python API and the CLI.

The colour-reproduction tests use the release's architecture (width 1/16, converted from a state
dict in the release's layout) with weights set by hand so that the net copies each hint to its
pixels: conv1 splits a / 110 and b / 110 into their positive and negative parts, the conv1 ->
conv10 shortcut and conv10 pass them on, ``model_out`` takes their differences; every other weight
is 0. Such a net outputs 110 tanh(a / 110) at a hinted pixel (within 5 ab units of a for |a| < 56)
and 0 elsewhere, so these tests pin the hint's path (its placement on the net's grid, the
resizes to and from the net's size), not what a trained net learns.
"""

import json
import os
import pathlib

import numpy as np
import pytest
from flax import nnx

from colorjax import colorize_arrays
from colorjax.checkpointing import save_model
from colorjax.cli import main
from colorjax.color import rgb_uint8_to_lab
from colorjax.convert.pth_reader import load_pth
from colorjax.convert.siggraph17 import convert_siggraph17
from colorjax.hints import Hint, HintError, hint_map, hints_from_json, load_hints, parse_colour
from colorjax.models import build_model

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SAMPLES = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-samples"
GRAY = 130  # the test photo's gray level: L = 54.6
GREEN = "#3f8a52"  # L about 51: inside the sRGB gamut at the photo's L with its own ab


def copying_state_dict() -> dict:
    """A release-layout width-1/16 state dict whose net copies hints to the output (see above)."""
    state = {k: np.zeros_like(v) for k, v in load_pth(os.path.join(FIXTURES, "siggraph17_w16.pth")).items()}
    for key in state:
        if key.endswith("running_var"):
            state[key][:] = 1.0 - 1e-5  # BatchNorm divides by sqrt(var + 1e-5) = 1
        elif key.endswith(".weight") and state[key].ndim == 1:
            state[key][:] = 1.0
    for out, (channel, sign) in enumerate([(1, 1), (1, -1), (2, 1), (2, -1)]):  # a+, a-, b+, b-
        state["model1.0.weight"][out, channel, 1, 1] = sign
        state["model1.2.weight"][out, out, 1, 1] = 1.0
        state["model1short10.0.weight"][out, out, 1, 1] = 1.0
        state["model10.1.weight"][out, out, 1, 1] = 1.0
    state["model_out.0.weight"][0, :2, 0, 0] = [1.0, -1.0]
    state["model_out.0.weight"][1, 2:4, 0, 0] = [1.0, -1.0]
    return state


@pytest.fixture(scope="module")
def copying_model():
    model, _, _ = convert_siggraph17(copying_state_dict(), "copying")
    return model


def photo(height=200, width=300):
    return np.full((height, width, 3), GRAY, np.uint8)


def ab_at(rgb, x, y):
    return np.asarray(rgb_uint8_to_lab(rgb[y, x][None]))[0, 1:]


def test_hex_colours_are_converted_to_lab_ab():
    np.testing.assert_allclose(parse_colour("#ff0000"), (80.1, 67.2), atol=0.1)  # sRGB red, D65
    np.testing.assert_allclose(parse_colour("#808080"), (0.0, 0.0), atol=0.01)
    assert parse_colour([12, -30.5]) == (12.0, -30.5)
    for bad in ("reddish", "#12345", "#gg0000", [1, 2, 3], ["a", 2], True):
        with pytest.raises(HintError, match="point 3: colour .* is not '#rrggbb'"):
            parse_colour(bad, "point 3")


def test_hint_map_places_patches_on_the_nets_grid():
    hints = [Hint(x=0, y=0, ab=(10, 20), size=1), Hint(x=299, y=199, ab=(-5, 5), size=3),
             Hint(x=0.5, y=0.5, ab=(1, 2), size=2, units="fraction")]
    grid = hint_map(hints, (200, 300), 16)
    np.testing.assert_array_equal(grid[0, 0], [10, 20, 1])
    np.testing.assert_array_equal(grid[14:, 14:, 2], 1)  # a 3 x 3 patch clipped at the corner
    np.testing.assert_array_equal(grid[14:, 14:, :2].reshape(-1, 2), [[-5, 5]] * 4)
    np.testing.assert_array_equal(grid[7:9, 7:9, 2], 1)  # side 2 at the centre (8, 8)
    assert grid[..., 2].sum() == 1 + 4 + 4


def test_bad_points_are_refused_with_the_point_named(tmp_path):
    with pytest.raises(HintError, match=r"point 2: \(300, 10\) is outside the 300 x 200 image"):
        hint_map([Hint(1, 1, (0, 0)), Hint(300, 10, (0, 0), name="point 2")], (200, 300), 64)
    with pytest.raises(HintError, match=r"point 1: \(1.5, 0.2\) is outside the image: fractions"):
        hint_map([Hint(1.5, 0.2, (0, 0), units="fraction", name="point 1")], (200, 300), 64)
    with pytest.raises(HintError, match="h.json: point 2: colour 'blueish'"):
        hints_from_json({"points": [{"x": 1, "y": 1, "ab": [0, 0]}, {"x": 1, "y": 1, "color": "blueish"}]}, "h.json")
    with pytest.raises(HintError, match="h.json: point 1: patch size 0"):
        hints_from_json([{"x": 1, "y": 1, "ab": [0, 0], "size": 0}], "h.json")
    with pytest.raises(HintError, match="h.json: point 1: unknown field"):
        hints_from_json([{"x": 1, "y": 1, "ab": [0, 0], "colour_space": "lab"}], "h.json")
    with pytest.raises(HintError, match="h.json: point 1: needs exactly one of color"):
        hints_from_json([{"x": 1, "y": 1}], "h.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{points: ")
    with pytest.raises(HintError, match="broken.json: not valid JSON"):
        load_hints(broken)


def test_hints_file_applies_common_and_per_image_points(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps({"units": "fraction", "points": [{"x": 0.1, "y": 0.2, "color": "#ff0000"}],
                                "images": {"b.jpg": [{"x": 5, "y": 6, "ab": [1, 2], "units": "pixels"}]}}))
    hints = load_hints(path)
    assert [h.units for h in hints.for_image("a/b.jpg")] == ["fraction", "pixels"]
    assert len(hints.for_image("c.jpg")) == 1


def test_a_hints_colour_is_reproduced_at_its_point(copying_model):
    hints = [{"x": 40, "y": 30, "ab": [30, -25], "size": 5}, {"x": 0.75, "y": 0.6, "units": "fraction", "color": GREEN}]
    rgb_plain, rgb = colorize_arrays(copying_model, [photo(), photo()], size=64, hints=[None, hints])
    assert np.abs(ab_at(rgb, 40, 30) - [30, -25]).max() < 5
    assert np.abs(ab_at(rgb, 225, 120) - parse_colour(GREEN)).max() < 5
    assert np.abs(ab_at(rgb, 150, 20)).max() < 1  # away from the hints: gray, as this net says
    assert np.abs(np.asarray(rgb_uint8_to_lab(rgb_plain))[..., 1:]).max() < 1  # no hints: gray everywhere


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/data/imagenet-samples is not present")
def test_hints_on_a_real_photo_land_on_their_pixels(copying_model):
    from colorjax.data import load_image

    rgb = load_image(SAMPLES / "n01443537_goldfish.JPEG")
    height, width = rgb.shape[:2]
    lab = np.asarray(rgb_uint8_to_lab(rgb))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    rows, cols = np.nonzero((chroma > 15) & (chroma < 45))  # colours the copying net keeps within 5
    order = np.argsort(np.hypot(rows - height / 2, cols - width / 2))[::997][:3]
    hints = [{"x": int(cols[i]), "y": int(rows[i]), "ab": lab[rows[i], cols[i], 1:].tolist(), "size": 5} for i in order]
    (out,) = colorize_arrays(copying_model, [rgb], size=128, hints=hints)
    assert out.shape == rgb.shape
    for hint in hints:
        assert np.abs(ab_at(out, hint["x"], hint["y"]) - hint["ab"]).max() < 5, hint


def test_models_without_hint_input_refuse_hints():
    eccv16 = build_model("eccv16", "regression", width=1 / 16, rngs=nnx.Rngs(0))
    with pytest.raises(HintError, match=r"this model \(ECCV16 backbone\) takes no hints"):
        colorize_arrays(eccv16, [photo()], size=32, hints=[{"x": 1, "y": 1, "ab": [0, 0]}])


@pytest.mark.slow
def test_colorize_command_with_hints(tmp_path, copying_model, capsys):
    from PIL import Image

    checkpoint = tmp_path / "release"
    assert main(["convert", "siggraph17", "--out", str(checkpoint), str(tmp_path / "none.pth")]) == 1  # no file
    save_model(checkpoint, copying_model, {"backbone": "siggraph17", "head": "regression", "width": 1 / 16,
                                           "bn_affine": False, "class_bins": 529})
    Image.fromarray(photo(150, 220)).save(tmp_path / "photo.png")
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"points": [{"x": 100, "y": 70, "color": GREEN, "size": 5}]}))
    out = tmp_path / "out"
    args = ["colorize", str(tmp_path / "photo.png"), "--checkpoint", str(checkpoint), "--out", str(out),
            "--size", "64", "--no-progress", "--overwrite"]  # each run below rewrites photo.png
    assert main([*args, "--hints", str(hints)]) == 0
    rgb = np.asarray(Image.open(out / "photo.png"))
    assert rgb.shape == (150, 220, 3)
    assert np.abs(ab_at(rgb, 100, 70) - parse_colour(GREEN)).max() < 5

    hints.write_text(json.dumps({"points": [{"x": 100, "y": 170, "color": GREEN}]}))
    assert main([*args, "--hints", str(hints)]) == 1  # the point is outside this 220 x 150 photo
    assert "point 1: (100, 170) is outside the 220 x 150 image" in capsys.readouterr().err

    # Per-image hints; the small photo's point is outside it: that photo is skipped, the other keeps its own.
    Image.fromarray(photo(40, 50)).save(tmp_path / "small.png")
    per_image = tmp_path / "per_image.json"
    per_image.write_text(json.dumps({"images": {"small.png": [{"x": 60, "y": 10, "ab": [40, 0]}],
                                                "photo.png": [{"x": 30, "y": 100, "ab": [-20, 30], "size": 5}]}}))
    assert main([args[0], str(tmp_path / "small.png"), *args[1:], "--hints", str(per_image)]) == 1
    assert "image 'small.png' point 1: (60, 10) is outside the 50 x 40 image" in capsys.readouterr().err
    rgb = np.asarray(Image.open(out / "photo.png"))
    assert np.abs(ab_at(rgb, 30, 100) - [-20, 30]).max() < 5
    assert np.abs(ab_at(rgb, 60, 10)).max() < 1  # the small photo's hint landed on no other photo

    eccv16 = tmp_path / "eccv16"
    assert main(["convert", "eccv16", os.path.join(FIXTURES, "eccv16_w16.pth"), "--out", str(eccv16)]) == 0
    args[3] = str(eccv16)
    assert main([*args, "--hints", str(hints)]) == 2
    assert "takes no hints" in capsys.readouterr().err
