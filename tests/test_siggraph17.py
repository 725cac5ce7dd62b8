"""The SIGGRAPH17 user-guided backbone and its converter, against PyTorch's outputs with and without
hints (tests/fixtures/siggraph17_w16*, made by tests/fixtures/make_convert_fixture.py)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax.checkpointing import load_model
from colorjax.cli import main
from colorjax.convert.mapping import ConversionError
from colorjax.convert.pth_reader import load_pth
from colorjax.convert.siggraph17 import bn_prefixes, convert_siggraph17
from colorjax.inference import Colorizer
from colorjax.models import build_model, layers
from colorjax.models.siggraph17 import siggraph17_bins

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
PTH = os.path.join(FIXTURES, "siggraph17_w16.pth")
PARITY = 1e-4


@pytest.fixture(scope="module")
def reference():
    return np.load(os.path.join(FIXTURES, "siggraph17_w16_outputs.npz"))


def fixture_hints(reference):
    return jnp.concatenate([reference["hint_ab"], reference["hint_mask"]], axis=-1)


def test_bins_are_the_grid_of_10_over_plus_minus_110():
    bins = siggraph17_bins()
    assert bins.shape == (529, 2)
    np.testing.assert_array_equal(bins[0], [-110, -110])
    np.testing.assert_array_equal(bins[1], [-110, -100])  # a, then b
    np.testing.assert_array_equal(bins[-1], [110, 110])
    assert len({tuple(b) for b in bins}) == 529


@pytest.mark.slow
def test_heads_set_resolution_and_branches():
    L = jnp.full((1, 32, 32, 1), 50.0)
    regression = build_model("siggraph17", "regression", width=1 / 16, class_bins=529, rngs=nnx.Rngs(0))
    assert regression.output_stride == 1 and regression.takes_hints
    out, logits = regression.with_class_logits(L)
    assert out.shape == (1, 32, 32, 2) and logits.shape == (1, 8, 8, 529)
    assert np.abs(out).max() <= 110
    classification = build_model("siggraph17", "classification", centres=siggraph17_bins(), width=1 / 16,
                                 rngs=nnx.Rngs(0))
    assert classification.output_stride == 4
    assert classification(L).shape == (1, 8, 8, 529)
    assert classification.predict_ab(L).shape == (1, 8, 8, 2)
    assert not hasattr(classification.backbone, "model9")  # the net stops at conv8
    with pytest.raises(ValueError, match="class_bins adds a classification branch"):
        build_model("siggraph17", "classification", class_bins=529, width=1 / 16, rngs=nnx.Rngs(0))


def test_full_width_parameter_count_is_the_releases():
    # Hand count of the release's layers (conv k x k: k^2 * in * out + out; BN: 2 * c affine).
    def conv(k, i, o):
        return k * k * i * o + o

    encoder = (conv(3, 4, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128)
               + conv(3, 128, 256) + 2 * conv(3, 256, 256) + conv(3, 256, 512) + 11 * conv(3, 512, 512))
    decoder = (conv(4, 512, 256) + conv(3, 256, 256) * 3 + conv(4, 256, 128) + conv(3, 128, 128) * 2
               + conv(4, 128, 128) + conv(3, 64, 128) + conv(3, 128, 128) + conv(1, 256, 529) + conv(1, 128, 2))
    norms = 2 * (64 + 128 + 256 + 512 * 4 + 256 + 128)
    model = nnx.eval_shape(lambda: build_model("siggraph17", "regression", class_bins=529, bn_affine=True,
                                               rngs=nnx.Rngs(0)))
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert count == encoder + decoder + norms


def test_hints_are_refused_by_models_without_a_hint_input_and_checked_for_shape():
    L = jnp.full((1, 16, 16, 1), 50.0)
    eccv16 = build_model("eccv16", "regression", width=1 / 16, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="ECCV16 backbone\\) takes no hints"):
        eccv16(L, jnp.zeros((1, 16, 16, 3)))
    net = build_model("siggraph17", "regression", width=1 / 16, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"hints must have shape \(1, 16, 16, 3\)"):
        net(L, jnp.zeros((1, 16, 16, 2)))


@pytest.mark.parametrize("algorithm", ["auto", pytest.param("winograd", marks=pytest.mark.slow)])
def test_converted_release_matches_pytorch_with_and_without_hints(reference, algorithm):
    model, config, report = convert_siggraph17(load_pth(PTH), PTH)
    assert config == {"backbone": "siggraph17", "head": "regression", "width": 1 / 16, "bn_affine": True,
                      "class_bins": 529}
    L = jnp.asarray(reference["L"])
    layers.set_conv_algorithm(model, algorithm)
    ab, logits = model.with_class_logits(L, fixture_hints(reference))
    ab_none, logits_none = model.with_class_logits(L)
    assert np.abs(ab - reference["ab"]).max() < PARITY
    assert np.abs(logits - reference["logits"]).max() < PARITY
    assert np.abs(ab_none - reference["ab_no_hints"]).max() < PARITY
    assert np.abs(logits_none - reference["logits_no_hints"]).max() < PARITY
    assert np.abs(reference["ab"][0] - reference["ab_no_hints"][0]).max() > 5  # the hints matter


def test_identity_batch_norm_affine_converts_to_affine_free_layers(reference):
    state = load_pth(PTH)
    for prefix in bn_prefixes():
        state[f"{prefix}.weight"][:] = 1.0
        state[f"{prefix}.bias"][:] = 0.0
    model, config, _ = convert_siggraph17(state, PTH)
    assert config["bn_affine"] is False and model.backbone.norm1.scale is None
    assert model.backbone.norm8.scale is None and model.backbone.norm9.scale is None


def test_mismatched_state_dicts_are_refused_with_the_key_named():
    state = load_pth(PTH)
    state["model3short8.0.weight"] = state["model3short8.0.weight"][:, :-1]
    with pytest.raises(ConversionError, match=r"'model3short8\.0\.weight' has shape \(16, 15, 3, 3\)"):
        convert_siggraph17(state, "cut.pth")
    state = load_pth(PTH)
    del state["model9.1.bias"]
    state["model9.2.weight"] = np.zeros(3)
    with pytest.raises(ConversionError, match=r"missing model9\.1\.bias, unexpected model9\.2\.weight"):
        convert_siggraph17(state, "odd.pth")
    state = load_pth(PTH)
    state["model1.0.weight"] = state["model1.0.weight"][:, :1]  # an ECCV16-like 1-channel input
    with pytest.raises(ConversionError, match="model1.0 takes 1 input channels; SIGGRAPH17 takes 4"):
        convert_siggraph17(state, "gray.pth")
    eccv16 = load_pth(os.path.join(FIXTURES, "eccv16_w16.pth"))
    with pytest.raises(ConversionError, match="not a SIGGRAPH17 state dict"):
        convert_siggraph17(eccv16, "eccv16.pth")


@pytest.mark.slow
def test_convert_command_writes_a_checkpoint_that_loads(tmp_path, reference, capsys):
    out = tmp_path / "siggraph17"
    assert main(["convert", "siggraph17", PTH, "--out", str(out)]) == 0
    assert "class_bins 529" in capsys.readouterr().out
    model, config, _ = load_model(out)
    assert config["backbone"] == "siggraph17" and config["class_bins"] == 529
    L = jnp.asarray(reference["L"])
    assert np.abs(model(L, fixture_hints(reference)) - reference["ab"]).max() < PARITY
    assert np.abs(model(L) - reference["ab_no_hints"]).max() < PARITY
    # The jitted prediction colorize runs (evaluation mode, inference Winograd kernels), with hints:
    inference = Colorizer(model, size=L.shape[1], temperature=0.38)
    assert np.abs(inference.predict_ab(L, fixture_hints(reference)) - reference["ab"]).max() < PARITY
    assert np.abs(inference.predict_ab(L) - reference["ab_no_hints"]).max() < PARITY
