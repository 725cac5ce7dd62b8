"""Outputs that lose nothing: colorize never replaces an input or an existing file unasked, unwritable
outputs are found before the work, a diverged model fails loudly, bad symlinks are named and skipped,
and rebalanced AuC stays finite with a sparse prior."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from conftest import random_photo
from colorjax import metrics
from colorjax.bins import zhang_bins
from colorjax.checkpointing import save_model
from colorjax.data import folder
from colorjax.evaluation.commands import evaluate_to_file
from colorjax.inference import commands
from colorjax.prior import ColourPrior

pytestmark = pytest.mark.slow  # each test builds, saves and runs a model through the CLI: minutes on 2 CPU cores

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}


def _model(scale: float = 1.0):
    from colorjax.models import build_model

    model = build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0))
    if scale != 1.0:
        params = nnx.state(model, nnx.Param)
        nnx.update(model, jax.tree.map(lambda p: p * scale, params))
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt")
    save_model(directory, _model(), MODEL_CONFIG)
    return directory


def _inputs(root: Path, n: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(random_photo(40, 56, i)).save(root / f"photo{i}.png")
    return root


def _run(argv) -> int:
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    return commands.run(parser.parse_args(["--no-progress", "--size", "32", *argv]))


def _unwritable(tmp_path: Path) -> Path:
    """A folder that cannot be written: read-only permissions, or for root (who ignores them) /sys."""
    if os.geteuid() != 0:
        target = tmp_path / "readonly"
        target.mkdir()
        target.chmod(0o555)
        return target / "out"
    if not os.path.isdir("/sys/kernel"):
        pytest.skip("no unwritable folder available to root here")
    return Path("/sys/kernel/colorjax_out")


# 3. colorize never replaces an input, nor an existing output unless --overwrite.
def test_colorize_refuses_to_replace_its_inputs(checkpoint, tmp_path, capsys):
    inputs = _inputs(tmp_path / "in")
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    assert _run([str(inputs), "--checkpoint", str(checkpoint), "--out", str(inputs)]) == 2
    assert "would replace an input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


def test_colorize_skips_existing_outputs_unless_asked_to_overwrite(checkpoint, tmp_path, capsys):
    inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
    assert _run([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "2 colorized, 0 failed" in capsys.readouterr().out
    mine = out / "photo0.png"
    mine.write_bytes(b"the user's own file")
    assert _run([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "0 colorized, 2 skipped (output exists; --overwrite replaces), 0 failed" in capsys.readouterr().out
    assert mine.read_bytes() == b"the user's own file"
    assert _run([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--overwrite"]) == 0
    assert "2 colorized, 0 failed" in capsys.readouterr().out
    assert np.asarray(Image.open(mine)).shape == (40, 56, 3)


# 8. Unwritable outputs are found before the work; bad symlinks are named and skipped.
def test_colorize_finds_an_unusable_out_before_loading_the_model(tmp_path, capsys):
    inputs = _inputs(tmp_path / "in", 1)
    (tmp_path / "a_file").write_text("x")
    missing_checkpoint = str(tmp_path / "no_checkpoint_here")  # never reached: --out is checked first
    assert _run([str(inputs), "--checkpoint", missing_checkpoint, "--out", str(tmp_path / "a_file")]) == 2
    assert "names a file, not a folder" in capsys.readouterr().err
    assert _run([str(inputs), "--checkpoint", missing_checkpoint, "--out", str(_unwritable(tmp_path))]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_colorize_names_and_skips_dangling_and_looping_symlinks(checkpoint, tmp_path, capsys):
    inputs = _inputs(tmp_path / "in", 1)
    (inputs / "gone.png").symlink_to(inputs / "deleted.png")
    (inputs / "loop.png").symlink_to(inputs / "loop.png")
    assert _run([str(inputs), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert f"skipped {inputs / 'gone.png'}" in captured.err and f"skipped {inputs / 'loop.png'}" in captured.err
    assert "1 colorized, 2 failed" in captured.out and (tmp_path / "out" / "photo0.png").exists()


def test_folder_build_names_and_skips_dangling_and_looping_symlinks(tmp_path):
    source = _inputs(tmp_path / "photos", 3)
    (source / "gone.png").symlink_to(source / "deleted.png")
    (source / "loop.png").symlink_to(source / "loop.png")
    record = folder.build_folder_dataset(source, tmp_path / "d", ratios=(1, 0, 0))
    assert sum(record["examples"].values()) == 3
    assert sorted(s["file"] for s in record["skipped"]) == ["gone.png", "loop.png"]


def test_evaluate_finds_an_unwritable_record_before_the_work(tmp_path):
    (tmp_path / "a_file").write_text("x")
    for out, message in [(tmp_path / "a_file" / "record", "folder is a file"),
                         (_unwritable(tmp_path) / "record", "cannot be written"),
                         (tmp_path / "record.json", "is a folder")]:
        if message == "is a folder":
            out.mkdir()
        with pytest.raises(ValueError, match=message):
            evaluate_to_file(baseline="gray", data="embedded", split="test", out=out, size=32, prior_path=None,
                             max_images=2)


# 1. A model that outputs NaN or infinity fails colorize and evaluate loudly.
def test_a_diverged_model_fails_colorize_and_evaluate_loudly(tmp_path, capsys):
    directory = tmp_path / "diverged"
    save_model(directory, _model(scale=1e30), MODEL_CONFIG)  # finite parameters, non-finite output
    inputs = _inputs(tmp_path / "in", 1)
    assert _run([str(inputs), "--checkpoint", str(directory), "--out", str(tmp_path / "out")]) == 1
    assert "NaN or infinity" in capsys.readouterr().err
    assert not list((tmp_path / "out").glob("*.png"))
    with pytest.raises(ValueError, match="NaN or infinity"):
        evaluate_to_file(checkpoint=str(directory), data="embedded", split="test", out=tmp_path / "record", size=32,
                         prior_path=None, max_images=2)
    assert not (tmp_path / "record.json").exists()


# 11. Rebalanced AuC with a sparse prior.
def test_rebalanced_auc_with_a_sparse_prior_is_finite_and_leaves_out_unseen_bins():
    centres = zhang_bins()
    seen_a, seen_b = 156, 160  # two bins the prior's data hit
    counts = np.zeros(len(centres))
    counts[seen_a], counts[seen_b] = 1e6, 3.0
    prior = ColourPrior.from_counts(counts, centres)  # smoothed: unseen bins get tiny, non-zero p
    far = int(np.flatnonzero((prior.probs > 1.2e-38) & (prior.probs < 1e-37))[0])
    assert counts[far] == 0  # 1 / p > 1e37 in float32: 64 such pixels overflow a float32 sum
    true_ab = centres[[seen_a] * 2 + [seen_b] * 2 + [far] * 64][None, None].astype(np.float64)  # [1, 1, 68, 2]
    pred_ab = true_ab.copy()
    pred_ab[0, 0, 3, 1] += 30.0  # one seen_b pixel 30 away; every other pixel exact
    lab = lambda ab: np.concatenate([np.full(ab.shape[:-1] + (1,), 50.0), ab], -1).astype(np.float32)  # noqa: E731
    result = metrics.summarise(metrics.batch_metric_sums_lab(lab(pred_ab), lab(true_ab), prior=prior))
    # By hand, in float64: the 64 `far` pixels (a bin with no count) are left out; the others weigh 1 / p.
    w = np.array([1 / prior.probs[seen_a]] * 2 + [1 / prior.probs[seen_b]] * 2)
    hits = np.array([[1, 1, 1, float(t >= 30)] for t in range(151)])
    fraction = (hits * w).sum(1) / w.sum()
    expected = 100 * 0.5 * np.sum(fraction[1:] + fraction[:-1]) / 150
    assert np.isfinite(result["auc_rebalanced"])
    assert result["auc_rebalanced"] == pytest.approx(expected, rel=1e-6)
    assert result["auc_rebalanced_left_out_pixels"] == 64
    assert result["auc_rebalanced_effective_pixels"] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-5)
    weights = metrics.rebalanced_auc_weights(prior)
    assert weights.dtype == np.float64 and weights.max() == 1.0 and weights[far] == 0.0
    assert np.all(np.isfinite(weights)) and np.count_nonzero(weights) == np.count_nonzero(counts)
