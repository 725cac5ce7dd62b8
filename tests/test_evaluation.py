"""evaluate: baselines with known answers, computed by hand with scikit-image and numpy."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import skimage.color
from flax import nnx

from colorjax.bins import zhang_bins
from colorjax.data import make_loader
from colorjax.evaluation import commands
from colorjax.prior import ColourPrior

SIZE = 64


@pytest.fixture(scope="module")
def test_images():
    """The embedded held-out photos as the evaluation sees them (centre crops), uint8 [2, 64, 64, 3]."""
    batches = list(make_loader("embedded", "test", crop_size=SIZE, batch_size=2, train=False, num_epochs=1))
    assert len(batches) == 1 and batches[0]["rgb"].shape == (2, SIZE, SIZE, 3)
    return batches[0]["rgb"]


@pytest.fixture(scope="module")
def uniform_prior(tmp_path_factory):
    path = tmp_path_factory.mktemp("prior") / "uniform.npz"
    ColourPrior.uniform(zhang_bins()).save(path)
    return path


def _auc_by_hand(distances):
    """Zhang's AuC: fraction of pixels within t for t = 0..150, trapezoid area, scaled to 0..100."""
    curve = np.array([(distances <= t).mean() for t in range(151)])
    return 100.0 * np.trapezoid(curve) / 150.0


def _evaluate(argv):
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    return commands.run(parser.parse_args(argv))


def test_gray_baseline_metrics_match_a_hand_computation(tmp_path, test_images, uniform_prior):
    out = tmp_path / "gray"
    code = _evaluate(["--baseline", "gray", "--data", "embedded", "--split", "test", "--out", str(out),
                      "--size", str(SIZE), "--batch-size", "2", "--prior", str(uniform_prior)])
    assert code == 0
    record = json.loads((tmp_path / "gray.json").read_text())
    metrics = record["metrics"]
    assert metrics["num_images"] == 2 and (tmp_path / "gray_grid.png").exists()
    assert "| auc_raw |" in (tmp_path / "gray.md").read_text()

    true = test_images / 255.0
    lab = skimage.color.rgb2lab(true)
    gray = skimage.color.lab2rgb(np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], -1))
    mse = np.mean((gray - true) ** 2)
    assert metrics["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=0.01)
    assert metrics["auc_raw"] == pytest.approx(_auc_by_hand(np.linalg.norm(lab[..., 1:], axis=-1)), abs=0.05)
    err = gray - true
    accurate = (np.abs(err).max(-1) < 0.14) & (np.linalg.norm(err, axis=-1) < 0.17)
    assert metrics["custom_accuracy"] == pytest.approx(accurate.mean(), abs=2e-3)
    assert metrics["colourfulness"] == pytest.approx(0.0, abs=1e-2)  # R = G = B everywhere
    # a flat prior weighs every pixel the same: rebalanced AuC equals raw AuC
    assert metrics["auc_rebalanced"] == pytest.approx(metrics["auc_raw"], abs=1e-3)


def test_random_baseline_takes_the_other_images_colours(tmp_path, test_images, uniform_prior):
    record = commands.evaluate_to_file(baseline="random", data="embedded", split="test", out=tmp_path / "random",
                                       size=SIZE, batch_size=2, prior_path=uniform_prior)
    ab = skimage.color.rgb2lab(test_images / 255.0)[..., 1:]
    distances = np.linalg.norm(ab - ab[::-1], axis=-1)  # image 0 gets image 1's ab and vice versa
    assert record["metrics"]["auc_raw"] == pytest.approx(_auc_by_hand(distances), abs=0.05)
    assert record["prior_source"] == f"file {uniform_prior}"


def test_checkpoint_evaluation_counts_a_prior_when_none_is_given(tmp_path):
    from colorjax.checkpointing import save_model
    from colorjax.models import build_model

    config = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}  # as in test_inference, test_tables
    save_model(tmp_path / "ckpt", build_model(**config, rngs=nnx.Rngs(0)), config)
    record = commands.evaluate_to_file(checkpoint=tmp_path / "ckpt", data="embedded", split="test",
                                       out=tmp_path / "model", size=SIZE, batch_size=2)
    assert record["prior_source"].startswith("counted on embedded:train")
    metrics = record["metrics"]
    assert 0 < metrics["auc_rebalanced"] < 100 and 0 < metrics["auc_raw"] < 100
    assert record["model"]["backbone"] == "eccv16" and metrics["num_images"] == 2


def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys):
    assert _evaluate(["--baseline", "gray", "--data", "embedded", "--out", str(tmp_path / "x"), "--size", "0"]) == 2
    assert _evaluate(["--checkpoint", str(tmp_path / "missing"), "--data", "embedded", "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
