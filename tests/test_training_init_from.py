"""Starting a run from a trained model (colorjax/training/init_from.py): bad input refused before
any work, freezing and per-group learning rates through optax's partitioning, frozen parameters and
BatchNorm statistics bit-identical after training, and each method started from its checkpoints."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from colorjax.checkpointing import checkpoint_manager, load_model, restore_prior, save_model
from colorjax.models import build_model
from colorjax.training import optim, train
from colorjax.training.init_from import InitFromError, model_arrays, read

TINY_ECCV16 = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}


def _bits(array) -> bytes:
    return np.asarray(array).tobytes()


def _save(directory, model_config):
    """A model of ``model_config`` with random normal arrays, saved as a checkpoint (filled from
    numpy into the abstract model: no initialiser runs, seconds on a loaded CPU)."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: build_model(**model_config, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(0)

    def fill(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return jnp.asarray(rng.normal(size=x.shape)).astype(x.dtype)

    save_model(directory, nnx.merge(graphdef, jax.tree.map(fill, state)), model_config)


def _shapes(model_config):
    return model_arrays(nnx.eval_shape(lambda: build_model(**model_config, rngs=nnx.Rngs(0))))


def _no_work(tmp_path):
    """The run's workdir was never created (the error came before any work)."""
    return not (tmp_path / "run").exists()


# ---- bad input, refused before any work (fast) -------------------------------------------------------

def test_a_path_that_is_not_a_checkpoint_is_refused(tiny_config, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"not a checkpoint")
    for path, said in ((tmp_path / "missing", "no such checkpoint folder"),
                       (tmp_path / "photos" / "cat.jpg", "not a colorjax checkpoint"),
                       (tmp_path / "photos", "no checkpoint found")):
        with pytest.raises(InitFromError, match=said) as error:
            train(tiny_config(f"train.init_from={path}"), tmp_path / "run")
        assert str(path) in str(error.value)
        assert _no_work(tmp_path)


def test_another_width_is_refused_listing_every_differing_array(tiny_config, tmp_path):
    wider = {**TINY_ECCV16, "width": 1 / 8}
    _save(tmp_path / "wide", wider)
    with pytest.raises(InitFromError) as error:
        train(tiny_config(f"train.init_from={tmp_path / 'wide'}"), tmp_path / "run")
    message = str(error.value)
    # The reference: the two models built independently, every array's shape compared.
    ours, theirs = _shapes(TINY_ECCV16), _shapes(wider)
    differing = [p for p in ours if ours[p] != theirs[p]]
    assert len(differing) == len(ours) - 1 and f"{len(differing)} parameter(s)" in message  # out/bias: 313 either way
    for path in differing:
        assert f"{path}: expected {ours[path]}, found {theirs[path]}" in message
    assert "\n" not in message and _no_work(tmp_path)


def test_another_backbone_is_refused_listing_missing_and_extra_arrays(tiny_config, tmp_path):
    unet = {"backbone": "unet", "head": "regression", "width": 1 / 16}
    _save(tmp_path / "unet", unet)
    with pytest.raises(InitFromError) as error:
        train(tiny_config(f"train.init_from={tmp_path / 'unet'}"), tmp_path / "run")
    message = str(error.value)
    assert "backbone/blocks/0/0/kernel: expected (3, 3, 1, 4), found nothing" in message
    shape = _shapes(unet)["backbone/encoders/0/conv1/kernel"]
    assert f"backbone/encoders/0/conv1/kernel: expected nothing, found {shape}" in message
    assert _no_work(tmp_path)


@pytest.mark.parametrize("override, field", [
    ("optim.freeze=('backbone/blocks/0/.*', 'backbone/block/1/.*')", "optim.freeze"),  # a typo in the second
    ("optim.lr_mults=('backbone/outt/.*=10',)", "optim.lr_mults"),
    ("train.reinit=('backbone/out/kernal',)", "train.reinit"),
])
def test_a_pattern_matching_nothing_is_refused(tiny_config, tmp_path, override, field):
    _save(tmp_path / "start", TINY_ECCV16)
    with pytest.raises(InitFromError, match=f"config {field}: pattern .* matches no parameter"):
        train(tiny_config(f"train.init_from={tmp_path / 'start'}", override), tmp_path / "run")
    assert _no_work(tmp_path)


@pytest.mark.parametrize("override, said", [
    ("optim.lr_mults=('backbone/out/.*',)", "must be 'PATTERN=MULT'"),
    ("optim.lr_mults=('backbone/out/.*=-1',)", "must be 'PATTERN=MULT'"),
    ("optim.freeze=('backbone/(blocks',)", "not a regular expression"),
])
def test_malformed_patterns_are_refused(tiny_config, tmp_path, override, said):
    with pytest.raises(InitFromError, match=said):
        train(tiny_config(override), tmp_path / "run")
    assert _no_work(tmp_path)


def test_init_from_together_with_resume_is_refused(tiny_config, tmp_path):
    _save(tmp_path / "start", TINY_ECCV16)
    with pytest.raises(InitFromError, match="together with --resume"):
        train(tiny_config(f"train.init_from={tmp_path / 'start'}"), tmp_path / "run", resume=True)
    assert _no_work(tmp_path)


# ---- the optimizer's partition (fast) -------------------------------------------------------------------

def test_freeze_and_lr_mults_partition_the_update_rule():
    """Frozen leaves stay bit-identical; Adam's first step moves each other leaf by its group's rate
    times sign(gradient) (m / sqrt(v) = g / |g| after one step: a known answer)."""
    o = ml_collections.ConfigDict({"optimizer": "adam", "learning_rate": 1e-2, "b1": 0.9, "b2": 0.99,
                                   "weight_decay": 0.0, "grad_clip_norm": 0.0, "schedule": "constant", "freeze": ("enc/.*",),
                                   "lr_mults": ("dec/w=0.1", "dec/.*=3")})
    rng = np.random.default_rng(0)
    params = {name: {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
              for name in ("enc", "dec", "out")}
    tx = optim.make_optimizer(o, optim.learning_rate_schedule(o, 10))
    state = tx.init(params)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    updates, state = tx.update(grads, state, params)
    expected = {"enc": {"w": 0.0, "b": 0.0}, "dec": {"w": 1e-3, "b": 3e-2}, "out": {"w": 1e-2, "b": 1e-2}}
    for name, group in expected.items():
        for leaf, rate in group.items():
            np.testing.assert_allclose(updates[name][leaf], -rate * np.sign(grads[name][leaf]), rtol=1e-4)
    stepped = params
    for _ in range(3):
        updates, state = tx.update(grads, state, stepped)
        stepped = jax.tree.map(lambda p, u: p + u, stepped, updates)
    assert all(_bits(stepped["enc"][k]) == _bits(params["enc"][k]) for k in ("w", "b"))
    assert not np.array_equal(stepped["out"]["w"], params["out"]["w"])


# ---- end to end: each method from its checkpoints (slow) ----------------------------------------------

def _arrays(workdir):
    return read(workdir).arrays


@pytest.mark.slow
def test_classification_from_classification_frozen_bits_prior_and_decoding(tiny_config, tmp_path):
    source = tiny_config("train.num_steps=2", "bins.temperature=1.0", "bins.prior_correction=0.5")
    train(source, tmp_path / "source")
    frozen = ("backbone/blocks/0/.*", "backbone/norms/0/.*")
    config = tiny_config("train.num_steps=3", "train.checkpoint_every=3", f"train.init_from={tmp_path / 'source'}",
                         f"optim.freeze={frozen!r}", "optim.lr_mults=('backbone/out/.*=10',)")
    summary = train(config, tmp_path / "tuned")
    assert summary["start_step"] == 0 and summary["steps"] == 3
    before, after = _arrays(tmp_path / "source"), _arrays(tmp_path / "tuned")
    frozen_paths = [p for p in before if p.startswith(("backbone/blocks/0/", "backbone/norms/0/"))]
    assert {p.rpartition("/")[2] for p in frozen_paths} == {"kernel", "bias", "mean", "var"}
    for path in frozen_paths:  # parameters and running statistics of the frozen layers: the same bits
        assert _bits(before[path]) == _bits(after[path]), path
    for path in ("backbone/blocks/1/0/kernel", "backbone/norms/1/var", "backbone/out/kernel"):
        assert not np.array_equal(before[path], after[path]), path
    # where it started, recorded; the prior and decoding carried over
    record = json.loads((tmp_path / "tuned" / "init_from.json").read_text())
    assert record["directory"] == str(tmp_path / "source" / "checkpoints") and record["step"] == 2
    assert record["loaded"] == len(before) - 1  # every parameter and statistic (not head/centres, fixed)
    saved = json.loads((tmp_path / "tuned/checkpoints/3/train_state/metadata").read_text())
    assert saved["config"]["train"]["init_from"] == record["directory"] and saved["config"]["train"]["init_step"] == 2
    _, model_config, prior = load_model(tmp_path / "tuned")
    assert model_config["inference"]["temperature"] == 1.0 and model_config["inference"]["prior_correction"] == 0.5
    _, _, source_prior = load_model(tmp_path / "source")
    np.testing.assert_array_equal(prior.counts, source_prior.counts)


@pytest.mark.slow
def test_regression_from_regression_statistics_follow_the_data_when_asked(tiny_config, tmp_path):
    source = tiny_config("method=regression", "train.num_steps=2")
    train(source, tmp_path / "source")
    config = tiny_config("method=regression", "train.num_steps=2", f"train.init_from={tmp_path / 'source'}",
                         "optim.freeze=('backbone/blocks/0/.*', 'backbone/norms/0/.*')", "optim.freeze_batch_stats=false")
    train(config, tmp_path / "tuned")
    before, after = _arrays(tmp_path / "source"), _arrays(tmp_path / "tuned")
    assert _bits(before["backbone/blocks/0/0/kernel"]) == _bits(after["backbone/blocks/0/0/kernel"])
    assert not np.array_equal(before["backbone/norms/0/mean"], after["backbone/norms/0/mean"])


@pytest.mark.slow
def test_pix2pix_generator_from_a_unet_regression_checkpoint(tiny_config, tmp_path):
    unet = ("model.backbone=unet", "model.width=0.0625", "data.crop_size=32")
    train(tiny_config("method=regression", "train.num_steps=2", *unet), tmp_path / "unet")
    config = tiny_config("method=pix2pix", "train.num_steps=2", *unet, "discriminator.width=0.0625",
                         f"train.init_from={tmp_path / 'unet'}", "optim.freeze=('backbone/encoders/.*',)")
    train(config, tmp_path / "gan")
    before, after = _arrays(tmp_path / "unet"), _arrays(tmp_path / "gan")
    encoders = [p for p in before if p.startswith("backbone/encoders/")]
    assert encoders and all(_bits(before[p]) == _bits(after[p]) for p in encoders)
    assert not np.array_equal(before["backbone/decoders/0/conv1/kernel"], after["backbone/decoders/0/conv1/kernel"])


@pytest.mark.slow
def test_siggraph17_from_a_converted_release_with_hints(tiny_config, tmp_path):
    """The converter's fixture (random weights in the release's layout, width 1/16) converted, then
    fine-tuned with simulated hints: the frozen encoder bit-identical, the rest trained."""
    from pathlib import Path

    from colorjax.convert.pth_reader import load_pth
    from colorjax.convert.siggraph17 import convert_siggraph17

    model, model_config, _ = convert_siggraph17(load_pth(Path(__file__).parent / "fixtures" / "siggraph17_w16.pth"))
    save_model(tmp_path / "release", model, model_config)
    config = tiny_config("train.num_steps=2", "method=regression", "model.backbone=siggraph17", f"model.width={model_config['width']}",
                         f"model.options.bn_affine={str(model_config['bn_affine']).lower()}",
                         f"model.options.class_bins={model_config['class_bins']}", "hints.p=0.5",
                         f"train.init_from={tmp_path / 'release'}", "optim.freeze=('backbone/(model|norm)[1-4]/.*',)")
    train(config, tmp_path / "tuned")
    before, after = _arrays(tmp_path / "release"), _arrays(tmp_path / "tuned")
    encoder = [p for p in before if p.startswith(tuple(f"backbone/{kind}{i}/" for kind in ("model", "norm")
                                                       for i in range(1, 5)))]
    assert {p.rpartition("/")[2] for p in encoder} >= {"kernel", "bias", "mean", "var"}
    assert all(_bits(before[p]) == _bits(after[p]) for p in encoder)
    assert not np.array_equal(before["backbone/model8/0/kernel"], after["backbone/model8/0/kernel"])
    with checkpoint_manager(tmp_path / "tuned" / "checkpoints", read_only=True) as manager:
        assert restore_prior(manager, 2) is None  # a regression run without prior.path keeps none


@pytest.mark.slow
def test_siggraph17_started_from_an_eccv16_run_computes_its_function_until_trained(tiny_config, tmp_path):
    """``train.init_rename=eccv16_to_siggraph17``: every ECCV16 array lands in its SIGGRAPH17 layer, the
    hint channels of the first conv and the block-8 shortcut start at zero, so (everything frozen,
    one step) the started classifier gives the ECCV16 model's logits, hints or none; a SIGGRAPH17
    without the renaming is refused, listing the arrays."""
    train(tiny_config("train.num_steps=2", "train.checkpoint_every=2"), tmp_path / "eccv16")
    start = ("model.backbone=siggraph17", f"train.init_from={tmp_path / 'eccv16'}", "train.num_steps=1",
             "train.checkpoint_every=1", "hints.p=0.5")
    with pytest.raises(InitFromError, match="backbone/model1/0/kernel: expected"):
        train(tiny_config(*start), tmp_path / "refused")
    train(tiny_config(*start, "train.init_rename=eccv16_to_siggraph17", "optim.freeze=('backbone/.*',)"),
          tmp_path / "s17")
    record = json.loads((tmp_path / "s17" / "init_from.json").read_text())
    assert record["widened"] == ["backbone/model1/0/kernel"]
    assert record["zeroed"] == ["backbone/model3short8/bias", "backbone/model3short8/kernel"]
    assert record["reinitialised"] == ["backbone/norm8/mean", "backbone/norm8/var"]
    before, after = _arrays(tmp_path / "eccv16"), _arrays(tmp_path / "s17")
    np.testing.assert_array_equal(after["backbone/model1/0/kernel"][..., :1, :], before["backbone/blocks/0/0/kernel"])
    assert not after["backbone/model1/0/kernel"][..., 1:, :].any()
    for old, new in (("blocks/6/2/kernel", "model7/2/kernel"), ("norms/2/var", "norm3/var"),
                     ("up/kernel", "model8up/kernel"), ("up_convs/1/bias", "model8/1/bias"), ("out/kernel", "model_class/kernel")):
        np.testing.assert_array_equal(after[f"backbone/{new}"], before[f"backbone/{old}"])
    eccv16, s17 = load_model(tmp_path / "eccv16")[0], load_model(tmp_path / "s17")[0]
    eccv16.eval()
    s17.eval()
    L = jnp.asarray(np.random.default_rng(0).uniform(0, 100, (2, 32, 32, 1)), jnp.float32)
    hints = jnp.concatenate([jnp.full((2, 32, 32, 2), 30.0), jnp.ones((2, 32, 32, 1))], -1)
    expected = np.asarray(eccv16.backbone(L))
    for given in (None, hints):
        np.testing.assert_allclose(np.asarray(s17.backbone(L, given)), expected, rtol=1e-4, atol=1e-4)


def test_backbone_options_are_set_from_the_command_line(tiny_config):
    """A converted release's options (e.g. ``bn_affine``) must be expressible as overrides."""
    config = tiny_config("model.options.bn_affine=true", "model.options.class_bins=529", "model.options.kind=wide")
    assert config.model.options.to_dict() == {"bn_affine": True, "class_bins": 529, "kind": "wide"}
