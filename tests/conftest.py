"""Shared test fixtures: the tiny training config of experiments/configs/tiny_classification.py with
overrides, and the photo makers several test files use.

The default run (``python -m pytest -q``) leaves out tests marked ``slow`` (pytest.ini options in
pyproject.toml); ``python -m pytest -q -m slow`` runs those, and ``.ci/run`` runs both sets.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "experiments" / "configs" / "tiny_classification.py"


def random_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Uniform random uint8 RGB pixels: every colour, no structure."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, colourful uint8 RGB image: sine and product gradients plus a little noise."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rgb = np.stack([0.5 + 0.4 * np.sin(6 * x), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.6 * x * y], -1)
    rgb += np.random.default_rng(seed).normal(0, 0.02, rgb.shape)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def tiny_config(*overrides: str, **fields):
    """experiments/configs/tiny_classification.py with ``a.b=value`` overrides (parsed as the CLI's
    ``--config.a.b=value``) and then ``fields`` ({"a.b": value}, set as given)."""
    from colorjax.training import apply_overrides
    from colorjax.training.commands import load_config_file

    config = apply_overrides(load_config_file(str(TINY_CONFIG)), list(overrides))
    for path, value in fields.items():
        group, _, name = path.rpartition(".")
        target = config
        for part in group.split(".") if group else ():
            target = target[part]
        target[name] = value
    return config


@pytest.fixture(name="tiny_config", scope="session")
def _tiny_config_fixture():
    """The factory :func:`tiny_config`."""
    return tiny_config


@pytest.fixture(name="random_photo", scope="session")
def _random_photo_fixture():
    """The factory :func:`random_photo`."""
    return random_photo


@pytest.fixture(name="smooth_photo", scope="session")
def _smooth_photo_fixture():
    """The factory :func:`smooth_photo`."""
    return smooth_photo


def save_random_model(directory, model_config: dict, seed: int = 0):
    """Write a randomly initialised ``build_model(**model_config)`` as a checkpoint; returns the directory."""
    from flax import nnx

    from colorjax.checkpointing import save_model
    from colorjax.models import build_model

    save_model(directory, build_model(**model_config, rngs=nnx.Rngs(seed)), model_config)
    return directory


@pytest.fixture(name="save_random_model", scope="session")
def _save_random_model_fixture():
    """The factory :func:`save_random_model`."""
    return save_random_model


@contextlib.contextmanager
def counting_compilations():
    """A list that gains one entry (its duration) per XLA backend compilation inside the block.
    jax.monitoring cannot drop a listener, so the listener goes quiet when the block ends."""
    import jax

    compiles, state = [], {"active": True}

    def listener(event, duration, **kwargs):
        if state["active"] and event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiles
    finally:
        state["active"] = False
