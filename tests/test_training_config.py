"""Config overrides, refusal of bad configs before anything compiles, optax schedules, the CLI parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from colorjax.training import config as config_lib
from colorjax.training import optim
from colorjax.training.commands import add_arguments, load_config_file

TINY = "experiments/configs/tiny_classification.py"


def test_overrides_are_type_checked():
    config = config_lib.apply_overrides(
        config_lib.get_config(),
        ["data.crop_size=48", "optim.learning_rate=1", "prior.rebalance=false", "loss.vgg_checkpoint=/x",
         "loss.vgg_layers=('relu1_2','relu3_3')", "prior.smoothing_sigma=none"],
    )
    assert config.data.crop_size == 48
    assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
    assert config.prior.rebalance is False and config.loss.vgg_checkpoint == "/x"
    assert config.loss.vgg_layers == ("relu1_2", "relu3_3") and config.prior.smoothing_sigma is None
    for bad, message in [("data.crop=3", "unknown field"), ("nope=1", "unknown field"), ("data=3", "a group"),
                         ("data.crop_size=big", "invalid literal"), ("prior.rebalance=maybe", "true or false"),
                         ("data.crop_size", "FIELD=VALUE")]:
        with pytest.raises(ValueError, match=message):
            config_lib.apply_overrides(config_lib.get_config(), [bad])


def _refused(config, message, devices=1):
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config, devices)


def test_bad_configs_are_refused_before_building():
    config = config_lib.get_config()
    config_lib.validate(config, 1)
    config.method = "diffusion"
    _refused(config, "method = 'diffusion'")
    config = config_lib.get_config()
    config.method, config.model.head = "regression", "classification"  # the method implies another head
    _refused(config, "needs model.head = 'regression'")
    _refused(config_lib.get_config(), r"data.batch_size = 16 must be a positive multiple of the device count \(3\)", 3)
    config = config_lib.get_config()
    config.train.typo_field = 1  # a variant file adding a field the default does not define
    _refused(config, r"unknown config field\(s\): train.typo_field")
    config = config_lib.get_config()
    config.loss.perceptual_weight = 1.0
    _refused(config, "colorjax convert vgg16")
    config = config_lib.get_config()
    config.data.cache_mb = -1.0
    _refused(config, "data.cache_mb = -1.0 must be >= 0")


def test_head_that_does_not_fit_is_refused_without_compiling():
    from colorjax.training import trainer

    config = config_lib.get_config()
    config.model.backbone = "eccv16"
    model_config = trainer.model_config_of(config, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="does not fit a 36 px crop"):  # ECCV16 needs a multiple of 8
        trainer.check_model(trainer.model_factory(model_config, 0), 36, 1)
    model_config = {**model_config, "backbone": "resnet"}
    with pytest.raises(ValueError, match="unknown backbone"):
        trainer.check_model(trainer.model_factory(model_config, 0), 32, 1)


def test_schedules_against_hand_values():
    o = config_lib.get_config().optim
    o.learning_rate = 1.0
    o.schedule, o.decay_step, o.decay_factor = "step", 10, 0.1  # Zhang: x0.1 at a step
    s = optim.learning_rate_schedule(o, 20)
    assert [float(s(i)) for i in (0, 9, 10, 19)] == pytest.approx([1.0, 1.0, 0.1, 0.1])
    o.schedule, o.decay_step = "linear_decay", 0  # pix2pix: constant half, then linearly to 0
    s = optim.learning_rate_schedule(o, 20)
    assert [float(s(i)) for i in (0, 10, 15, 20)] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    o.schedule, o.warmup_steps = "warmup_cosine", 4
    s = optim.learning_rate_schedule(o, 20)
    assert [float(s(i)) for i in (0, 2, 4, 12, 20)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0], abs=1e-6)


def test_nogan_phases_and_learning_rates():
    config = config_lib.get_config()
    n = config.nogan
    n.generator_steps, n.critic_steps, n.gan_steps, n.cycles = 3, 2, 1, 2
    phases = [optim.nogan_phase(step, config) for step in range(optim.nogan_num_steps(config))]
    assert phases == ["generator"] * 3 + ["critic", "critic", "gan"] * 2
    g, d = optim.nogan_generator_schedule(config), optim.nogan_critic_schedule(config)
    assert float(g(2)) == pytest.approx(config.optim.learning_rate) and float(g(3)) == pytest.approx(n.gan_learning_rate)
    # critic updates: 2 pre-training at critic lr, 1 in the GAN phase at 5 x the GAN lr, repeat
    assert [float(d(i)) for i in range(4)] == pytest.approx(
        [n.critic_learning_rate, n.critic_learning_rate, 5 * n.gan_learning_rate, n.critic_learning_rate]
    )


def test_gradient_clipping_and_adam_weight_decay():
    o = config_lib.get_config().optim
    o.learning_rate, o.weight_decay, o.grad_clip_norm = 0.1, 0.0, 1.0
    tx = optim.make_optimizer(o, optim.learning_rate_schedule(o, 10))
    params = {"w": jax.numpy.zeros(2)}
    updates, _ = tx.update({"w": jax.numpy.array([30.0, 40.0])}, tx.init(params), params)
    # clipped to norm 1 -> (0.6, 0.8); Adam's first step moves each coordinate by -lr * sign
    np.testing.assert_allclose(updates["w"], [-0.1, -0.1], rtol=1e-4)


def test_cli_parses_config_overrides(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", TINY, "--workdir", str(tmp_path), "--config.train.num_steps=3", "--resume"])
    assert args.config_overrides == ["train.num_steps=3"] and args.resume
    config = config_lib.apply_overrides(load_config_file(args.config), args.config_overrides)
    assert isinstance(config, ml_collections.ConfigDict) and config.train.num_steps == 3
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config_file(str(tmp_path / "missing.py"))


def test_config_file_argument_selects_the_tiny_scale():
    """``FILE.py:ARG`` calls get_config(ARG): the row configs' tiny scale from the command line."""
    row = str(Path(__file__).parents[1] / "experiments" / "configs" / "zhang_classification.py")
    full, tiny = load_config_file(row), load_config_file(row + ":tiny")
    assert (full.data.spec, full.data.crop_size) == ("imagenet2012", 176)  # Zhang's released recipe
    assert tiny.data.crop_size == 64 and tiny.data.spec.endswith("imagenet-samples")
    with pytest.raises(ValueError, match="unknown scale|scale"):
        load_config_file(row + ":huge")


def test_cli_refuses_unknown_field_with_exit_code(tmp_path, capsys):
    from colorjax.cli import main

    code = main(["train", "--config", TINY, "--workdir", str(tmp_path / "w"), "--config.train.num_stepz=3"])
    assert code == 1 and "unknown field 'train.num_stepz'" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # refused before anything was made


def test_train_refuses_a_misfit_before_making_the_workdir(tmp_path):
    from colorjax.training import train

    config = load_config_file(TINY)
    config.data.crop_size = 36  # ECCV16 needs a multiple of 8
    with pytest.raises(ValueError, match="does not fit a 36 px crop"):
        train(config, tmp_path / "w")
    config = load_config_file(TINY)
    config.data.batch_size = 6
    with pytest.raises(ValueError, match="batch_size = 6"):
        train(config, tmp_path / "w", resume=False) if jax.device_count() > 1 else config_lib.validate(config, 4)
    assert not (tmp_path / "w").exists()


def test_method_implies_the_head_and_a_repeated_head_must_agree():
    from colorjax.training import trainer

    for method, head in config_lib.HEAD_OF_METHOD.items():
        config = config_lib.get_config()
        config.method = method
        config_lib.validate(config, 1)  # no head given: the method's
        assert config.model.head is None and config_lib.model_head(config) == head
        assert trainer.model_config_of(config, np.zeros((313, 2), np.float32))["head"] == head
    config = config_lib.apply_overrides(config_lib.get_config(), ["method=regression", "model.head=regression"])
    config_lib.validate(config, 1)  # the old field, given consistently, is accepted
    config.model.head = "classification"
    _refused(config, "the method implies the head")


def test_overrides_lock_the_config_and_none_clears_a_field():
    config = config_lib.apply_overrides(config_lib.get_config(), ["data.resize_size=96", "data.resize_size=none"])
    assert config.data.resize_size is None and config.is_locked
    with pytest.raises(AttributeError):
        config.data.crop_sise = 32  # a locked ConfigDict refuses a misspelt new field
    config.model.options.regression_output = "linear"  # backbone keywords stay open (build_model checks them)


def test_experiment_configs_load_as_the_experiments_package_without_path_changes():
    import sys

    import experiments.configs.scales

    before = list(sys.path)
    config = load_config_file(str(Path(__file__).parents[1] / "experiments" / "configs" / "imagenet_samples_classification.py"))
    assert sys.path == before
    assert config.data.spec == experiments.configs.scales.SAMPLES  # SAMPLES is defined once, absolute
    assert Path(config.data.spec).is_absolute()
    for path in (Path(__file__).parents[1] / "experiments").glob("**/*.py"):
        assert "sys.path.insert" not in path.read_text(), path


def test_a_run_saves_its_conv_algorithm_and_load_model_rebuilds_with_it(tiny_config, tmp_path):
    """``model.conv_algorithm`` travels in the checkpoint's model config: the run's model, and the
    model ``load_model`` rebuilds, run the algorithm the config chose (no process-wide setting)."""
    from colorjax.checkpointing import load_model
    from colorjax.models import layers
    from colorjax.training import train

    config = tiny_config("method=regression", "model.conv_algorithm=direct", "train.num_steps=1",
                         "train.checkpoint_every=1", "train.eval_images=0")
    train(config, tmp_path / "run")
    model, model_config, _ = load_model(tmp_path / "run")
    assert model_config["conv_algorithm"] == "direct"
    assert {m.conv_algorithm for _, m in nnx.iter_modules(model) if isinstance(m, layers.Conv)} == {"direct"}
    config.model.conv_algorithm = "fft"
    _refused(config, "model.conv_algorithm = 'fft': must be one of auto, direct, winograd")
    with pytest.raises(ValueError, match="unknown field 'train.conv_algorithm'"):
        tiny_config("train.conv_algorithm=direct")  # the field moved to model.conv_algorithm
