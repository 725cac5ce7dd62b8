"""The training state: created replicated on the mesh, saved and restored through orbax.

A training checkpoint is a :mod:`colorjax.checkpointing` checkpoint (``model``, ``config``,
``prior``) plus ``optimizer``, ``discriminator``, ``d_optimizer`` (arrays), ``train_state``
(JSON: step and the full training config) and ``data`` (grain's per-process iterator state).
Restoring builds every target from abstract shapes on the current mesh, so the device count may
differ from the one that saved.
"""

from __future__ import annotations

import dataclasses

import grain
import jax
import orbax.checkpoint as ocp
from flax import nnx

from colorjax import checkpointing
from colorjax.training import parallel

OPTIMIZER, DISCRIMINATOR, D_OPTIMIZER, TRAIN_STATE, DATA = "optimizer", "discriminator", "d_optimizer", "train_state", "data"


@dataclasses.dataclass(frozen=True)
class Modules:
    """Graph definitions (static structure) of the generator and, for GAN methods, the discriminator."""

    train: nnx.GraphDef  # generator in training mode (BatchNorm batch statistics, dropout on)
    eval: nnx.GraphDef  # generator in evaluation mode
    d_train: nnx.GraphDef | None = None


def _graphdefs(module_fn):
    module = nnx.eval_shape(module_fn)
    module.train()
    train, _, _ = nnx.split(module, nnx.Param, ...)
    module.eval()
    evaluation, _, _ = nnx.split(module, nnx.Param, ...)
    return train, evaluation


def init_state(model_fn, tx, mesh, *, discriminator_fn=None, d_tx=None):
    """``(Modules, state)``: the model (and discriminator) built and initialised directly into
    replicated arrays on ``mesh`` by one jitted function."""
    train, evaluation = _graphdefs(model_fn)
    d_train = _graphdefs(discriminator_fn)[0] if discriminator_fn else None

    def init():
        _, params, rest = nnx.split(model_fn(), nnx.Param, ...)
        state = {"params": params, "rest": rest, "opt": tx.init(params)}
        if discriminator_fn:
            _, d_params, d_rest = nnx.split(discriminator_fn(), nnx.Param, ...)
            state.update(d_params=d_params, d_rest=d_rest, d_opt=d_tx.init(d_params))
        return state

    state = jax.jit(init, out_shardings=parallel.replicated(mesh))()
    return Modules(train, evaluation, d_train), state


def _as_named_leaves(tree) -> dict:
    return {f"{i:04d}": leaf for i, leaf in enumerate(jax.tree.leaves(tree))}


def save(manager, step: int, state: dict, *, model_config: dict, prior, config_json: dict, iterator, metrics=None) -> None:
    """Save the whole training state at ``step`` (``metrics`` feed the best-checkpoint choice)."""
    model_state = nnx.merge_state(state["params"], state["rest"])
    items = checkpointing.model_save_args(model_state, model_config, prior)
    items[OPTIMIZER] = ocp.args.StandardSave(_as_named_leaves(state["opt"]))
    if "d_params" in state:
        items[DISCRIMINATOR] = ocp.args.StandardSave(nnx.to_pure_dict(nnx.merge_state(state["d_params"], state["d_rest"])))
        items[D_OPTIMIZER] = ocp.args.StandardSave(_as_named_leaves(state["d_opt"]))
    items[TRAIN_STATE] = ocp.args.JsonSave({"step": step, "config": config_json})
    items[DATA] = grain.checkpoint.CheckpointSave(iterator)
    manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=True)
    manager.wait_until_finished()
    if jax.process_index() == 0:
        checkpointing.write_manifest(manager.directory / str(step))


def _restore_leaves(manager, step, item, abstract_tree, sharding):
    target = checkpointing.abstract_target(_as_named_leaves(abstract_tree), sharding)
    restored = manager.restore(step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(target)}))[item]
    return jax.tree.unflatten(jax.tree.structure(abstract_tree), [restored[k] for k in sorted(restored)])


def restore(manager, step: int, state: dict, mesh, iterator) -> tuple[dict, dict]:
    """``(state, train_state_json)`` restored from ``step`` onto ``mesh``; ``state`` (freshly
    initialised) gives the shapes. ``iterator`` is moved to the saved data position."""
    sharding = parallel.replicated(mesh)
    abstract = jax.eval_shape(lambda: state)
    full_abstract = nnx.merge_state(abstract["params"], abstract["rest"])
    model_state = checkpointing.restore_into(manager, step, checkpointing.MODEL, full_abstract, sharding)
    params, rest = nnx.split_state(model_state, nnx.Param, ...)
    restored = {"params": params, "rest": rest}
    restored["opt"] = _restore_leaves(manager, step, OPTIMIZER, abstract["opt"], sharding)
    if "d_params" in state:
        d_abstract = nnx.merge_state(abstract["d_params"], abstract["d_rest"])
        d_state = checkpointing.restore_into(manager, step, DISCRIMINATOR, d_abstract, sharding)
        restored["d_params"], restored["d_rest"] = nnx.split_state(d_state, nnx.Param, ...)
        restored["d_opt"] = _restore_leaves(manager, step, D_OPTIMIZER, abstract["d_opt"], sharding)
    json_items = manager.restore(
        step,
        args=ocp.args.Composite(
            **{TRAIN_STATE: ocp.args.JsonRestore(), DATA: grain.checkpoint.CheckpointRestore(iterator)}
        ),
    )
    return restored, json_items[TRAIN_STATE]
