"""Each method trains on the embedded photos with tiny models; the first step's loss and the colour
prior are recomputed independently in numpy (scikit-image Lab) from the same batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.color import rgb2lab

from colorjax.bins import zhang_bins
from colorjax.checkpointing import load_model
from colorjax.data import make_loader
from colorjax.training import NonFiniteLossError, train

STRIDE = 4  # ECCV16's output stride


def _first_batches(config, n):
    loader = make_loader("embedded", "train", crop_size=config.data.crop_size, batch_size=config.data.batch_size,
                         train=True, seed=config.seed)
    return [b["rgb"] for _, b in zip(range(n), loader)]


def _lab(rgb):
    lab = rgb2lab(rgb / 255.0)
    return lab[..., :1].astype(np.float32), lab[..., 1:]


def _colourful(ab):  # Zhang's non-gray rule: some |a| or |b| above 5
    return (np.abs(ab) > 5).any(axis=(1, 2, 3))


def _soft_encode(ab, centres, k=5, sigma=5.0):
    d2 = ((ab[..., None, :] - centres) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=-1, kind="stable")[..., :k]
    w = np.exp(-np.take_along_axis(d2, nearest, -1) / (2 * sigma**2))
    target = np.zeros(d2.shape)
    np.put_along_axis(target, nearest, w / w.sum(-1, keepdims=True), -1)
    return target, np.argmin(d2, axis=-1)


@pytest.mark.slow
def test_classification_first_loss_and_prior_match_numpy(tiny_config, tmp_path):
    config = tiny_config(**{"optim.learning_rate": 0.0, "train.num_steps": 1, "train.checkpoint_every": 1,
                     "train.tensorboard": True})
    summary = train(config, tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    model, model_config, prior = load_model(tmp_path)  # lr 0: the initial parameters

    # the prior: nearest-bin counts of the first two training batches, every 4th pixel, colourful images
    centres = zhang_bins()
    counts = np.zeros(len(centres))
    for rgb in _first_batches(config, 2):
        _, ab = _lab(rgb)
        ab_sub = ab[:, ::STRIDE, ::STRIDE][_colourful(ab)]
        counts += np.bincount(_soft_encode(ab_sub, centres)[1].ravel(), minlength=len(centres))
    assert prior.counts.sum() == counts.sum()
    assert np.abs(prior.counts - counts).sum() <= 4  # a float32 / float64 tie may move a pixel
    np.testing.assert_allclose(np.asarray(model_config["centres"]), centres)

    # the lightness baseline's table, counted with the prior over the same pixels
    sums = np.zeros((101, 3))
    for rgb in _first_batches(config, 2):
        L, ab = _lab(rgb)
        keep = _colourful(ab)
        L_sub, ab_sub = L[:, ::STRIDE, ::STRIDE][keep][..., 0], ab[:, ::STRIDE, ::STRIDE][keep]
        level = np.clip(np.round(L_sub), 0, 100).astype(int).ravel()
        np.add.at(sums, level, np.concatenate([ab_sub.reshape(-1, 2), np.ones((level.size, 1))], -1))
    assert np.abs(prior.lightness_sums[:, 2] - sums[:, 2]).sum() <= 4  # a rounding tie may move a pixel
    seen = sums[:, 2] > 20
    np.testing.assert_allclose(prior.mean_ab_by_lightness[seen], sums[seen, :2] / sums[seen, 2:], atol=0.5)
    # the checkpoint knows the size and temperature it was trained and validated at
    assert model_config["inference"] == {"size": config.data.crop_size, "temperature": config.bins.temperature,
                                         "prior_correction": 0.0}

    # the first step's loss: rebalanced soft cross-entropy on the first batch
    L, ab = _lab(_first_batches(config, 1)[0])
    model.train()  # BatchNorm on batch statistics, as in the training step
    logits = np.asarray(model(L), np.float64)
    target, nearest = _soft_encode(ab[:, ::STRIDE, ::STRIDE], centres)
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    per_pixel = -(target * log_probs).sum(-1) * prior.weights[nearest]
    expected = per_pixel[_colourful(ab)].mean()
    assert summary["train"][0]["loss"] == pytest.approx(expected, rel=2e-3)
    assert summary["validation"][0]["step"] == 1 and np.isfinite(summary["validation"][0]["val_auc_raw"])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "validation"}
    assert (tmp_path / "grids" / "step_0000001.png").exists()
    assert (tmp_path / "curves.png").stat().st_size > 1000  # loss and AuC against the step, drawn by the run


@pytest.mark.slow
def test_regression_loss_from_checkpoint_and_best_retention(tiny_config, tmp_path):
    """The loss of step 4 recomputed from checkpoint 3 (always kept); orbax keeps the last two and
    the best. Ranked by the *highest* validation loss, the best is usually an early step, outside
    the last two, so the retention of a best checkpoint is exercised."""
    config = tiny_config(**{"method": "regression", "model.head": "regression", "train.num_steps": 4,
                     "train.checkpoint_every": 1, "train.keep_checkpoints": 2, "train.best_mode": "max"})
    summary = train(config, tmp_path)
    val_loss = {v["step"]: v["val_loss"] for v in summary["validation"]}
    assert sorted(val_loss) == [1, 2, 3, 4]
    best = max(val_loss, key=val_loss.get)
    assert summary["best_step"] == best
    kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == sorted({3, 4, best})
    model, _, prior = load_model(tmp_path, step=3)
    assert prior is None
    L, ab = _lab(_first_batches(config, 4)[3])
    model.train()
    pred = np.asarray(model(L), np.float64)
    l1 = np.abs(pred - ab[:, ::STRIDE, ::STRIDE]).mean(-1) / 110.0  # L1 on ab / 110, as pix2pix
    assert summary["train"][3]["step"] == 4
    assert summary["train"][3]["loss"] == pytest.approx(l1[_colourful(ab)].mean(), rel=1e-3)


@pytest.mark.slow
def test_perceptual_loss_needs_converted_vgg16_and_adds_to_l1(tiny_config, tmp_path):
    from flax import nnx

    from colorjax.models import VGG16Features
    from colorjax.checkpointing import save_vgg16

    config = tiny_config(**{"method": "regression", "model.head": "regression", "optim.learning_rate": 0.0,
                     "loss.perceptual_weight": 1.0, "loss.vgg_checkpoint": str(tmp_path / "vgg"),
                     "loss.vgg_layers": ("relu1_2",), "train.num_steps": 1, "train.checkpoint_every": 1,
                     "train.eval_images": 0})
    with pytest.raises(ValueError, match="colorjax convert vgg16"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was made
    save_vgg16(tmp_path / "vgg", VGG16Features(("relu1_2",), width=1 / 16, rngs=nnx.Rngs(0)), 1 / 16)
    summary = train(config, tmp_path / "run")
    model, _, _ = load_model(tmp_path / "run")
    L, ab = _lab(_first_batches(config, 1)[0])
    model.train()
    l1 = (np.abs(np.asarray(model(L), np.float64) - ab[:, ::STRIDE, ::STRIDE]).mean(-1) / 110.0)[_colourful(ab)].mean()
    assert summary["train"][0]["loss"] > l1 * (1 + 1e-3)  # the per-pixel feature distance adds to L1


@pytest.mark.slow
def test_pix2pix_trains_with_alternating_updates(tiny_config, tmp_path):
    config = tiny_config(**{"method": "pix2pix", "model.backbone": "pix2pix", "model.head": "regression",
                     "model.options.num_downs": 3, "model.options.num_dropout": 1, "discriminator.width": 1 / 16,
                     "optim.schedule": "linear_decay", "train.num_steps": 2, "train.checkpoint_every": 2,
                     "train.eval_images": 0})
    summary = train(config, tmp_path)
    first = summary["train"][0]
    # a PatchGAN initialised from N(0, 0.02) outputs logits near 0: BCE near log 2 per term
    assert first["d_loss"] == pytest.approx(0.5 * 2 * np.log(2), abs=0.05)
    assert first["g_gan_loss"] == pytest.approx(np.log(2), abs=0.05)
    assert first["loss"] == pytest.approx(first["g_gan_loss"] + 100.0 * first["recon_loss"], rel=1e-5)
    assert summary["steps"] == 2 and all(np.isfinite(r["loss"]) for r in summary["train"])


@pytest.mark.slow
def test_nogan_runs_its_phases(tiny_config, tmp_path):
    config = tiny_config(**{"method": "nogan", "model.head": "regression", "discriminator.width": 1 / 16,
                     "nogan.generator_steps": 2, "nogan.critic_steps": 1, "nogan.gan_steps": 1, "nogan.cycles": 1,
                     "train.num_steps": 0, "train.checkpoint_every": 4, "train.eval_images": 0})
    summary = train(config, tmp_path)
    assert [r["phase"] for r in summary["train"]] == ["supervised", "supervised", "critic", "gan"]
    critic = summary["train"][2]
    assert critic["loss"] == critic["d_loss"] == pytest.approx(np.log(2), abs=0.05)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    config = tiny_config(**{"method": "regression", "model.head": "regression", "model.options.regression_output": "linear",
                     "optim.learning_rate": 1e30, "train.num_steps": 6, "train.checkpoint_every": 1,
                     "train.eval_images": 0})
    with pytest.raises(NonFiniteLossError, match="non-finite") as error:
        train(config, tmp_path)
    # The step-1 checkpoint holds the 1e30 parameters that gave the non-finite loss: it is neither
    # kept among the checkpoints nor called good, and no "step None" is reported.
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    bad = int(str(error.value).split(":")[0].removeprefix("step "))
    assert all(s <= bad - 2 for s in saved), (saved, str(error.value))
    assert sorted(int(p.name) for p in (tmp_path / "diverged").iterdir()) == [bad - 1]
    assert "step None" not in str(error.value)
    assert (f"last good checkpoint is step {max(saved)} in {tmp_path / 'checkpoints'}" if saved
            else "No checkpoint was saved") in str(error.value)


@pytest.mark.slow
def test_crops_of_larger_images_train_at_the_crop_and_validate_and_run_at_the_image_size(tiny_config, tmp_path, monkeypatch):
    """data.resize_size: random crop_size crops of images scaled to resize_size (the objects keep
    their scale); validation sees the whole resize_size images and the checkpoint says to run there."""
    from colorjax.training import trainer

    seen = []
    real = trainer.make_loader

    def spy(*args, **kwargs):
        seen.append((kwargs["train"], kwargs["crop_size"], kwargs["resize_size"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "make_loader", spy)
    config = tiny_config(**{"data.resize_size": 48, "data.crop_size": 32, "train.num_steps": 2, "train.eval_every": 2,
                     "train.checkpoint_every": 2})
    summary = train(config, tmp_path)
    assert (True, 32, 48) in seen and (False, 48, 48) in seen  # training crops, whole validation images
    assert summary["validation"][-1]["val_num_pixels"] == 8 * 48 * 48
    _, model_config, _ = load_model(tmp_path)
    assert model_config["inference"]["size"] == 48
    with pytest.raises(ValueError, match="resize_size = 24 must be >= data.crop_size"):
        train(tiny_config(**{"data.resize_size": 24}), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


@pytest.mark.slow  # compiles the supervised, GAN and critic steps of a user-guided net: ~40 s on 2 CPU cores
def test_user_guided_generator_gets_its_hints_in_every_phase(tiny_config, smooth_photo, monkeypatch):
    """SIGGRAPH17 under NoGAN (whose GAN and critic phases are pix2pix's steps): the generator is
    called with L and the simulated hints (1 + 3 channels) in the supervised, GAN and critic steps,
    and the GAN step's reconstruction loss is the supervised step's loss on the same state and batch."""
    import jax

    from colorjax.training import config as config_lib
    from colorjax.training import parallel, steps, trainer

    config = tiny_config(**{"method": "nogan", "model.backbone": "siggraph17", "model.head": "regression",
                            "loss.class_weight": 0.0})
    config_lib.validate(config, jax.device_count(), jax.process_count())
    model_config = trainer.model_config_of(config)
    stride, _ = trainer.check_model(trainer.model_factory(model_config, config.seed), config.data.crop_size)
    run = trainer._build(config, model_config, None, stride, 10, parallel.data_mesh(), None)
    batch = {"rgb": np.stack([smooth_photo(32, 32, seed) for seed in range(config.data.batch_size)])}

    channels, apply_module = [], steps.apply_module

    def recording(graphdef, params, rest, *inputs, **kwargs):  # runs while each step is traced
        channels.append(tuple(x.shape[-1] for x in inputs))
        return apply_module(graphdef, params, rest, *inputs, **kwargs)

    monkeypatch.setattr(steps, "apply_module", recording)
    copy = lambda state: jax.tree.map(lambda x: x.copy(), state)  # noqa: E731 - the steps donate their state
    losses = {}
    for phase in ("supervised", "gan", "critic"):
        channels.clear()
        _, losses[phase] = run.fns[phase](copy(run.state), batch)
        assert (1, 3) in channels, (phase, channels)  # L and (ab hint, mask) reached the generator
        assert (1,) not in channels, (phase, channels)  # never L alone
    assert float(losses["gan"]["recon_loss"]) == pytest.approx(float(losses["supervised"]["loss"]), rel=1e-5)
