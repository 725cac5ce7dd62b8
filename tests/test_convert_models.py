"""ECCV16 and VGG16 converters against PyTorch's own outputs (tests/fixtures, made by
tests/fixtures/make_convert_fixture.py), the orbax round trip, and the ``colorjax convert`` command."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorjax.bins import zhang_bins
from colorjax.checkpointing import load_model
from colorjax.cli import main
from colorjax.convert.eccv16 import bn_prefixes, convert_eccv16
from colorjax.convert.mapping import ConversionError
from colorjax.convert.pth_reader import load_pth
from colorjax.convert.vgg16 import convert_vgg16
from colorjax.models import layers
from colorjax.checkpointing import load_vgg16

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
ECCV16_PTH = os.path.join(FIXTURES, "eccv16_w16.pth")
PARITY = 1e-4


@pytest.fixture(scope="module")
def eccv16_reference():
    return np.load(os.path.join(FIXTURES, "eccv16_w16_outputs.npz"))


@pytest.fixture(scope="module")
def vgg16_reference():
    return np.load(os.path.join(FIXTURES, "vgg16_w8_outputs.npz"))


@pytest.mark.parametrize("algorithm", ["auto", "winograd"])  # auto: direct at this width; Winograd forced
def test_eccv16_logits_and_release_decoding_match_pytorch(eccv16_reference, algorithm):
    model, config, report = convert_eccv16(load_pth(ECCV16_PTH), ECCV16_PTH)
    assert config == {"backbone": "eccv16", "head": "classification", "width": 1 / 16, "bn_affine": True,
                      "release_projection": True}
    logits = layers.set_conv_algorithm(model, algorithm)(jnp.asarray(eccv16_reference["L"]))
    assert np.abs(logits - eccv16_reference["logits"]).max() < PARITY
    assert np.abs(model.head.release_ab(logits) - eccv16_reference["ab_release"]).max() < PARITY
    np.testing.assert_array_equal(model.head.centres[...], zhang_bins())
    assert report["model_out_max_diff_from_centres"] > 1  # the fixture's model_out is random, not the centres


def test_identity_batch_norm_affine_converts_to_the_original_affine_free_layers(eccv16_reference):
    state = load_pth(ECCV16_PTH)
    for prefix in bn_prefixes():
        state[f"{prefix}.weight"][:] = 1.0
        state[f"{prefix}.bias"][:] = 0.0
    model, config, _ = convert_eccv16(state, ECCV16_PTH)
    assert config["bn_affine"] is False and model.backbone.norms[0].scale is None
    logits = model(jnp.asarray(eccv16_reference["L"][:1]))
    assert np.abs(logits - eccv16_reference["logits_identity_bn"]).max() < PARITY


@pytest.mark.parametrize("name", ["vgg16_w8.pth", "vgg16_w8_legacy.pth"])
def test_vgg16_features_match_pytorch(name, vgg16_reference):
    model, width = convert_vgg16(load_pth(os.path.join(FIXTURES, name)), name, layers=("relu1_2", "conv2_2"))
    assert width == 1 / 8
    out = model(jnp.asarray(vgg16_reference["rgb"]))
    for layer in ("relu1_2", "conv2_2"):
        assert np.abs(out[layer] - vgg16_reference[layer]).max() < PARITY


def test_mismatched_state_dicts_are_refused_with_the_key_named():
    state = load_pth(ECCV16_PTH)
    state["model3.2.weight"] = state["model3.2.weight"][:, :-1]
    with pytest.raises(ConversionError, match=r"'model3\.2\.weight' has shape \(16, 15, 3, 3\)"):
        convert_eccv16(state, "cut.pth")
    state = load_pth(ECCV16_PTH)
    del state["model8.4.bias"]
    state["model9.0.weight"] = np.zeros(3)
    with pytest.raises(ConversionError, match=r"missing model8\.4\.bias, unexpected model9\.0\.weight"):
        convert_eccv16(state, "odd.pth")
    vgg = load_pth(os.path.join(FIXTURES, "vgg16_w8.pth"))
    vgg["features.1.running_mean"] = np.zeros(8)  # a vgg16_bn entry
    with pytest.raises(ConversionError, match=r"unexpected features\.1\.running_mean"):
        convert_vgg16(vgg, "bn.pth", layers=("relu1_2",))


def test_convert_command_writes_checkpoints_that_load(tmp_path, eccv16_reference, vgg16_reference, capsys):
    out = tmp_path / "eccv16"
    assert main(["convert", "eccv16", ECCV16_PTH, "--out", str(out)]) == 0
    assert "parameters 131725" in capsys.readouterr().out
    model, config, prior = load_model(out)
    assert config["width"] == 1 / 16 and prior is None
    L = jnp.asarray(eccv16_reference["L"])
    assert np.abs(model(L) - eccv16_reference["logits"]).max() < PARITY
    # A converted release decodes by default exactly as PyTorch's release (softmax at T = 1, then
    # model_out), whatever scale its logits carry; colorize / evaluate take T = 1 from the checkpoint.
    from colorjax.inference import Colorizer

    colorizer = Colorizer.from_checkpoint(out, size=L.shape[1])
    temperature = colorizer.temperature
    assert temperature == 1.0
    assert np.abs(colorizer.predict_ab(L, temperature=temperature) - eccv16_reference["ab_release"]).max() < PARITY
    # another T anneals relative to the release's own softmax
    expected = 110 * np.asarray(jax.nn.softmax(eccv16_reference["logits"] / 0.5, axis=-1)) @ np.asarray(
        model.head.release_projection[...])
    np.testing.assert_allclose(colorizer.predict_ab(L, temperature=0.5), expected, atol=1e-3)

    vgg_out = tmp_path / "vgg16"
    args = ["convert", "vgg16", os.path.join(FIXTURES, "vgg16_w8.pth"), "--out", str(vgg_out), "--layers", "conv2_2"]
    assert main(args) == 0
    features = load_vgg16(vgg_out)(jnp.asarray(vgg16_reference["rgb"]))
    assert list(features) == ["conv2_2"]
    assert np.abs(features["conv2_2"] - vgg16_reference["conv2_2"]).max() < PARITY


def test_convert_command_refuses_bad_input_before_writing(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueR.")
    assert main(["convert", "eccv16", str(evil), "--out", str(tmp_path / "a")]) == 1
    assert "refused to load global 'posix.system'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert main(["convert", "eccv16", ECCV16_PTH, "--out", str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err
