"""The one inference path: ``colorize``, ``evaluate`` and the demo agree, and a decoding override
replaces the checkpoint's saved setting (an override to 0 included)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax.bins import zhang_bins
from colorjax.checkpointing import save_model
from colorjax.inference import commands
from colorjax.models import build_model
from colorjax.prior import ColourPrior
from conftest import smooth_photo

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 32}
SIZE = 32


def _colorize(photo_path, checkpoint, out, *extra):
    parser = argparse.ArgumentParser()
    commands.add_arguments(parser)
    args = parser.parse_args([str(photo_path), "--checkpoint", str(checkpoint), "--out", str(out), "--size",
                              str(SIZE), "--no-progress", *extra])
    assert commands.run(args) == 0
    return np.asarray(Image.open(out / f"{photo_path.stem}.png"))


def _skewed_prior():
    """A prior whose rebalancing weights differ strongly between bins (so a correction shows)."""
    centres = zhang_bins()
    counts = np.exp(np.random.default_rng(0).uniform(0, 8, len(centres)))
    return ColourPrior.from_counts(counts, centres)


def test_a_prior_correction_override_of_0_replaces_the_saved_one(tmp_path):
    """Defect 2 of issue 25: ``--prior-correction 0`` on a checkpoint saved with 0.5 must decode as
    the same model saved without a correction (byte-identical files), not keep the saved 0.5."""
    model = build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0))
    prior = _skewed_prior()
    save_model(tmp_path / "corrected", model, {**MODEL_CONFIG, "inference": {"prior_correction": 0.5}}, prior=prior)
    save_model(tmp_path / "plain", model, MODEL_CONFIG, prior=prior)
    photo = tmp_path / "photo.png"
    Image.fromarray(smooth_photo(40, 56)).save(photo)

    plain = _colorize(photo, tmp_path / "plain", tmp_path / "a")
    saved = _colorize(photo, tmp_path / "corrected", tmp_path / "b")
    undone = _colorize(photo, tmp_path / "corrected", tmp_path / "c", "--prior-correction", "0")
    assert np.abs(saved.astype(int) - plain).max() >= 3  # the saved 0.5 changes the colours
    np.testing.assert_array_equal(undone, plain)  # ... and an override to 0 undoes it exactly
    redone = _colorize(photo, tmp_path / "plain", tmp_path / "d", "--prior-correction", "0.5")
    np.testing.assert_array_equal(redone, saved)  # an override sets it on a checkpoint saved without
