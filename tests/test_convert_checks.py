"""Converted weights are checked before anything is written (issue 28, items 8 and 14): NaN or
infinite values and negative BatchNorm variances are refused naming the file and the parameter, for
every converter; a readable .pth whose content is not a usable state dict gets a one-line error
naming the file, not a traceback; bad --out and --layers are refused before the file is read."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from colorjax.cli import main
from colorjax.convert import pth_reader
from colorjax.convert.eccv16 import convert_eccv16
from colorjax.convert.mapping import ConversionError
from colorjax.convert.siggraph17 import convert_siggraph17
from colorjax.convert.vgg16 import convert_vgg16

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
FILES = {"eccv16": "eccv16_w16.pth", "siggraph17": "siggraph17_w16.pth", "vgg16": "vgg16_w8.pth"}
CONVERTERS = {"eccv16": convert_eccv16, "siggraph17": convert_siggraph17,
              "vgg16": lambda state, source: convert_vgg16(state, source, layers=("relu2_2",))}


def fixture_state(network):
    return pth_reader.load_pth(os.path.join(FIXTURES, FILES[network]))


@pytest.mark.parametrize("network, key, value, message", [
    ("siggraph17", "model3.2.weight", np.nan, r"'model3\.2\.weight' holds 1 NaN or infinite value"),
    ("siggraph17", "model1.4.running_var", np.inf, r"'model1\.4\.running_var' holds 1 NaN or infinite"),
    ("siggraph17", "model8.5.running_var", -1.0, r"'model8\.5\.running_var' \(a BatchNorm variance\) holds negative"),
    ("eccv16", "model8.6.bias", np.nan, r"'model8\.6\.bias' holds 1 NaN"),
    ("eccv16", "model2.4.running_var", -0.5, r"'model2\.4\.running_var' \(a BatchNorm variance\) holds negative"),
    ("vgg16", "features.2.weight", -np.inf, r"'features\.2\.weight' holds 1 NaN or infinite"),
])
def test_non_finite_weights_and_negative_variances_are_refused_naming_the_parameter(network, key, value, message):
    state = fixture_state(network)
    state[key] = state[key].copy()
    state[key].flat[0] = value
    with pytest.raises(ConversionError, match=f"bad.pth: {message}"):
        CONVERTERS[network](state, "bad.pth")


def test_the_convert_command_writes_nothing_for_nan_weights(tmp_path, monkeypatch, capsys):
    state = fixture_state("siggraph17")
    state["model5.0.weight"] = np.full_like(state["model5.0.weight"], np.nan)
    monkeypatch.setattr(pth_reader, "load_pth", lambda path: state)
    out = tmp_path / "out"
    assert main(["convert", "siggraph17", os.path.join(FIXTURES, FILES["siggraph17"]), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "siggraph17_w16.pth: 'model5.0.weight' holds" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def write_plain_pth(path, obj):
    """A torch zip archive whose pickle holds only plain containers (no tensors)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        archive.writestr("archive/byteorder", "little")
    return path


@pytest.mark.parametrize("network, content, message", [
    ("eccv16", {"model1.0.weight": "weights", "model8.6.weight": "x"}, "'model1.0.weight' is a str, not a numeric tensor"),
    ("siggraph17", {"model1.0.weight": {"a": 1.0}}, "'model1.0.weight' is a dict, not a numeric tensor"),
    ("eccv16", {1: 2.0, 3: 4.0}, "key 1 is a int, not a parameter name"),
    ("vgg16", {"state_dict": 5}, "holds a int, not a state dict of tensors"),
    ("eccv16", [1, 2, 3], "holds a list, not a state dict of tensors"),
])
def test_malformed_state_dicts_get_one_line_errors_naming_the_file(tmp_path, capsys, network, content, message):
    path = write_plain_pth(tmp_path / "odd.pth", content)
    out = tmp_path / "out"
    assert main(["convert", network, str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"colorjax convert: {path}: {message}") and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("network, key, shape, message", [
    ("eccv16", "model1.0.weight", (64,), r"'model1\.0\.weight' has shape \(64,\); expected 4 non-empty axes"),
    ("siggraph17", "model1.0.weight", (), r"'model1\.0\.weight' has shape \(\); expected 4"),
    ("eccv16", "model1.0.weight", (0, 1, 3, 3), r"'model1\.0\.weight' has shape \(0, 1, 3, 3\)"),
    ("vgg16", "features.0.weight", (0, 3, 3, 3), r"'features\.0\.weight' has shape \(0, 3, 3, 3\)"),
    ("eccv16", "model3.2.weight", (9,), r"'model3\.2\.weight' has shape \(9,\), which does not fit"),
    ("eccv16", "model2.4.running_var", (), r"'model2\.4\.running_var' has shape \(\), which does not fit"),
])
def test_misshapen_weights_are_named(network, key, shape, message):
    state = fixture_state(network)
    state[key] = np.zeros(shape, np.float32)
    with pytest.raises(ConversionError, match=f"bad.pth: {message}"):
        CONVERTERS[network](state, "bad.pth")


def test_bad_out_and_layers_are_refused_before_reading(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    vgg = os.path.join(FIXTURES, FILES["vgg16"])
    assert main(["convert", "vgg16", vgg, "--out", str(taken)]) == 2
    assert "taken: --out is a file" in capsys.readouterr().err
    assert taken.read_text() == "not a folder"
    assert main(["convert", "vgg16", vgg, "--out", str(tmp_path / "v"), "--layers", "nonexistent"]) == 2
    assert "--layers: unknown VGG16 layer 'nonexistent'" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()
