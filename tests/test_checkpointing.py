"""save_model / load_model round trips: every array of the nnx state, the config and the prior."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from colorjax import checkpointing
from colorjax.bins import zhang_bins
from colorjax.models import build_model
from colorjax.prior import ColourPrior


def _tiny_config():
    return {"backbone": "eccv16", "head": "regression", "width": 1 / 16}


def _build(model_config, seed=0):
    """Built inside one jit, parameters from an RBG key: XLA compiles that in seconds, where eager
    initialisation compiles every initialiser separately."""
    rngs = lambda: nnx.Rngs(params=jax.random.key(seed, impl="rbg"), default=seed)  # noqa: E731
    return nnx.jit(lambda: build_model(**model_config, rngs=rngs()))()


def _leaves(model):
    """Every array of the model's state, PRNG keys as their raw data."""
    def raw(x):
        return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    return [np.asarray(raw(x)) for x in jax.tree.leaves(nnx.to_pure_dict(nnx.state(model)))]


@pytest.mark.slow
def test_save_load_round_trip(tmp_path):
    model = _build(_tiny_config())
    L = jax.random.uniform(jax.random.key(1), (2, 32, 32, 1)) * 100.0
    forward = nnx.jit(lambda m, L: m(L))
    model.train()
    forward(model, L)  # move the batch statistics away from their initial values
    checkpointing.save_model(tmp_path / "ckpt", model, _tiny_config(), step=7)

    loaded, config, prior = checkpointing.load_model(tmp_path / "ckpt")
    assert config == _tiny_config() and prior is None
    saved, restored = _leaves(model), _leaves(loaded)
    assert len(saved) == len(restored)
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)
    model.eval()
    np.testing.assert_array_equal(np.asarray(forward(model, L)), np.asarray(forward(loaded, L)))


def test_prior_round_trip(tmp_path):
    centres = zhang_bins()
    counts = np.random.default_rng(0).integers(0, 50, len(centres)).astype(np.float32)
    prior = ColourPrior.from_counts(counts, centres, smoothing_sigma=5.0, lam=0.5)
    config = {"backbone": "eccv16", "head": "classification", "width": 1 / 16, "centres": centres}
    model = _build(config)
    checkpointing.save_model(tmp_path, model, config, prior=prior)
    _, loaded_config, loaded_prior = checkpointing.load_model(tmp_path, step=0)
    np.testing.assert_array_equal(np.asarray(loaded_config["centres"], np.float32), centres)
    for name in ("centres", "counts", "probs", "weights"):
        np.testing.assert_allclose(np.asarray(getattr(loaded_prior, name)), np.asarray(getattr(prior, name)), rtol=1e-6)
    assert (loaded_prior.smoothing_sigma, loaded_prior.lam) == (5.0, 0.5)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpointing.load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        checkpointing.load_model(tmp_path / "empty")


def test_a_decoding_chosen_after_training_is_saved_where_every_command_reads_it(tmp_path):
    from colorjax.inference import Colorizer

    config = {"backbone": "eccv16", "head": "classification", "width": 1 / 16,
              "inference": {"size": 32, "temperature": 1.0, "prior_correction": 0.5}}
    model = _build({k: v for k, v in config.items() if k != "inference"})
    prior = ColourPrior.from_counts(np.ones(len(zhang_bins())), zhang_bins())
    for step in (1, 2):
        checkpointing.save_model(tmp_path, model, config, prior=prior, step=step)
    assert checkpointing.save_decoding(tmp_path, temperature=0.38, prior_correction=0.25) == 2  # the latest
    chosen = Colorizer.from_checkpoint(tmp_path)
    assert (chosen.size, chosen.temperature, chosen.prior_correction) == (32, 0.38, 0.25)
    assert Colorizer.from_checkpoint(tmp_path, step=1).temperature == 1.0  # other steps as saved
    assert checkpointing.verify_manifest(tmp_path / "2")  # the manifest describes the new file
    with pytest.raises(ValueError, match="prior_correction"):
        checkpointing.save_decoding(tmp_path, temperature=1.0, prior_correction=1.5)
    (tmp_path / "2" / "config" / "metadata").write_text("{}")  # changed behind the manifest's back
    with pytest.raises(checkpointing.CorruptCheckpointError, match="metadata"):
        checkpointing.save_decoding(tmp_path, temperature=0.5, prior_correction=0.0)
