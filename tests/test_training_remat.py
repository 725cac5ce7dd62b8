"""``train.remat = "blocks"``: the same step (loss, gradients, updated state), with the forward pass
recomputed for the backward one. (XLA:CPU merges most of the recomputation back when it compiles,
so the memory saving is for GPU / TPU and is not asserted here.)"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

from colorjax.bins import zhang_bins
from colorjax.prior import ColourPrior
from colorjax.training import config as config_lib
from colorjax.training import optim, parallel, steps, trainer
from colorjax.training import state as state_lib


def _step(backbone: str, head: str, remat: str, crop: int = 32, batch: int = 4, width: float = 1 / 8):
    config = config_lib.get_config()
    config.model.backbone, config.model.head, config.model.width = backbone, head, width
    config.method = "classification" if head == "classification" else "regression"
    config.data.crop_size, config.train.remat = crop, remat
    mesh = parallel.data_mesh()
    centres = zhang_bins() if head == "classification" else None
    model_fn = trainer.model_factory(trainer.model_config_of(config, centres), config.seed)
    stride, _ = trainer.check_model(model_fn, crop, batch)
    prior = None if centres is None else ColourPrior.from_counts(np.arange(1.0, len(centres) + 1), centres)
    objective = trainer.build_objective(config, stride, centres, prior)
    tx = optim.make_optimizer(config.optim, optax.constant_schedule(1e-3))
    modules, state = state_lib.init_state(model_fn, tx, mesh)
    rgb = np.random.default_rng(0).integers(0, 256, (batch, crop, crop, 3), np.uint8)
    return jax.jit(steps.supervised_step(objective, modules.train, tx)), state, {"rgb": rgb}


@pytest.mark.parametrize("backbone,head", [("eccv16", "classification"), ("unet", "regression")])
def test_block_remat_recomputes_and_gives_the_same_step(backbone, head):
    results, convolutions = [], []
    for remat in ("none", "blocks"):
        step, state, batch = _step(backbone, head, remat)
        lowered = step.lower(state, batch)
        convolutions.append(lowered.as_text().count("stablehlo.convolution"))
        new_state, metrics = lowered.compile()(state, batch)
        results.append((jax.device_get(metrics), jax.device_get(new_state["params"])))
    (metrics_a, params_a), (metrics_b, params_b) = results
    np.testing.assert_allclose(metrics_b["loss"], metrics_a["loss"], rtol=1e-6)
    np.testing.assert_allclose(metrics_b["grad_norm"], metrics_a["grad_norm"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert convolutions[1] > convolutions[0], convolutions  # the backward pass recomputes the forward
