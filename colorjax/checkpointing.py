"""Checkpoints: one orbax layout shared by saved models and training workdirs.

A checkpoint directory holds one sub-directory per step, written by an orbax ``CheckpointManager``
with named items:

- ``model``: the model's whole nnx state (parameters, batch statistics, RNG state) as a pure dict;
- ``config``: the JSON kwargs of :func:`colorjax.models.build_model` (``rngs`` excluded);
- ``prior``, ``prior_settings``: the colour prior's arrays and its two settings (optional);
- training adds ``optimizer``, ``discriminator``, ``train_state`` (JSON) and ``data`` (grain's
  per-process iterator state) beside them, so :func:`load_model` reads a training workdir as is;
- ``colorjax_manifest.json``: every file's size and CRC-32, written once the step is complete and
  checked before a step is loaded, so that a truncated or altered file is named, not trusted.

Every kind of module is saved with :func:`save_model` and restored with :func:`restore_module`, given
a builder ``build(config, rngs) -> module``: :func:`load_model` passes the colorization model's
builder, :func:`load_vgg16` the VGG16 feature extractor's. Restoring rebuilds the abstract module
with ``nnx.eval_shape`` from the saved config and restores the arrays straight into the requested
sharding (one device by default), so a checkpoint written on any number of devices or hosts loads
on any other. Model files never import this module.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx

from colorjax.models import build_model
from colorjax.models.layers import set_conv_algorithm
from colorjax.models.vgg16 import VGG16Features, vgg16_config
from colorjax.prior import ColourPrior
from colorjax.safe_files import write_text_atomically

MODEL, CONFIG, PRIOR, PRIOR_SETTINGS = "model", "config", "prior", "prior_settings"
# The model config's entry holding the inference defaults (not an argument of build_model).
INFERENCE = "inference"
TRAINING_SUBDIR = "checkpoints"  # where ``colorjax train`` keeps its checkpoints inside a workdir
# Written into each step directory once orbax has finished it: every file's size and CRC-32, so
# that a truncated or altered file is found (and named) before its bytes are trusted.
MANIFEST = "colorjax_manifest.json"
_CHUNK = 1 << 22


class CorruptCheckpointError(ValueError):
    """A checkpoint step that cannot be trusted; the message names the step and the file."""


class WrongCheckpointKindError(ValueError):
    """A readable checkpoint of another kind of module than the builder makes (names the folder)."""


def _finite_or(value, default: float) -> float:
    """``value`` as a float when it is a finite number, else ``default`` (a diverged step ranks last)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return value if math.isfinite(value) else default


def _crc32(path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def _step_files(step_dir) -> list[str]:
    root = os.fspath(step_dir)
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, f), root) for f in files]
    return sorted(f for f in found if f != MANIFEST and not f.startswith(MANIFEST))


def write_manifest(step_dir) -> None:
    """Record every file of a finished step directory (size, CRC-32) in its manifest, atomically."""
    root = os.fspath(step_dir)
    entries = {}
    for name in _step_files(root):
        path = os.path.join(root, name)
        entries[name] = [os.path.getsize(path), _crc32(path)]
    write_text_atomically(os.path.join(root, MANIFEST), json.dumps({"files": entries}))


def verify_manifest(step_dir) -> bool:
    """Check a step directory against its manifest: a :class:`CorruptCheckpointError` naming the
    first file that is missing, of another size or with other bytes. Returns False when the step
    has no manifest (written before manifests existed, or killed between orbax and the manifest)."""
    root = os.fspath(step_dir)
    manifest = os.path.join(root, MANIFEST)
    if not os.path.exists(manifest):
        return False
    try:
        with open(manifest) as f:
            entries = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptCheckpointError(f"{manifest}: unreadable manifest ({error})") from None
    for name, (size, crc) in sorted(entries.items()):
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise CorruptCheckpointError(f"{path}: file missing from the checkpoint")
        if os.path.getsize(path) != size:
            raise CorruptCheckpointError(f"{path}: {os.path.getsize(path)} bytes, {size} were written (truncated or changed)")
        if _crc32(path) != crc:
            raise CorruptCheckpointError(f"{path}: contents differ from what was written (CRC-32 mismatch)")
    return True


def nonfinite_leaves(tree) -> list[str]:
    """Paths of the floating-point leaves of ``tree`` holding a NaN or an infinity."""
    bad = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if hasattr(leaf, "dtype") and jax.numpy.issubdtype(leaf.dtype, jax.numpy.floating):
            if not bool(jax.numpy.isfinite(leaf).all()):
                bad.append(jax.tree_util.keystr(path))
    return bad


def checkpoint_manager(
    directory: str | os.PathLike,
    *,
    keep_last: int | None = None,
    best_metric: str | None = None,
    best_mode: str = "min",
    read_only: bool = False,
) -> ocp.CheckpointManager:
    """An orbax manager over ``directory`` that keeps the last ``keep_last`` steps and the best one.

    With ``best_metric`` set, orbax persists the metrics passed to ``save`` (it only does so when
    ``best_fn`` is set) and ``manager.best_step()`` is the step with the best value.
    """
    best_fn = None
    policies: list[Any] = [ocp.checkpoint_managers.LatestN(n=keep_last)]
    if best_metric is not None:
        worst = math.inf if best_mode == "min" else -math.inf
        best_fn = lambda metrics: _finite_or(metrics.get(best_metric), worst)  # noqa: E731
        policies.append(
            ocp.checkpoint_managers.BestN(
                get_metric_fn=best_fn,
                reverse=best_mode == "min",  # BestN keeps the top of an ascending sort
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        best_fn=best_fn,
        best_mode=best_mode,
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=False,
    )
    return ocp.CheckpointManager(epath.Path(directory).absolute(), options=options)


def model_save_args(model_state: nnx.State, model_config: dict, prior=None) -> dict[str, Any]:
    """The orbax save arguments of a model's full nnx state, its config and its colour prior."""
    items = {
        MODEL: ocp.args.StandardSave(nnx.to_pure_dict(model_state)),
        CONFIG: ocp.args.JsonSave(_jsonable(model_config)),
    }
    if prior is not None:
        arrays = {name: np.asarray(getattr(prior, name)) for name in ("centres", "counts")}
        if prior.lightness_sums is not None:
            arrays["lightness_sums"] = np.asarray(prior.lightness_sums)
        settings = {"smoothing_sigma": prior.smoothing_sigma, "lam": prior.lam, "num_images": prior.num_images}
        items[PRIOR] = ocp.args.StandardSave(arrays)
        items[PRIOR_SETTINGS] = ocp.args.JsonSave(_jsonable(settings))
    return items


def save_model(directory, model: nnx.Module, model_config: dict, *, prior=None, step: int = 0) -> None:
    """Write ``model`` (its full nnx state), ``model_config`` and ``prior`` as step ``step``."""
    with checkpoint_manager(directory) as manager:
        manager.save(step, args=ocp.args.Composite(**model_save_args(nnx.state(model), model_config, prior)), force=True)
        manager.wait_until_finished()
        if jax.process_index() == 0:
            write_manifest(epath.Path(directory).absolute() / str(step))


def saved_items(directory, step: int) -> set[str]:
    """Names of the items present in ``directory``'s checkpoint of ``step``."""
    step_dir = epath.Path(directory) / str(step)
    return {p.name for p in step_dir.iterdir() if p.is_dir()}


def resolve_step(manager: ocp.CheckpointManager, directory, step: int | None) -> int:
    """``step`` if it was saved, else the latest saved step; a clear error if there is none."""
    steps = manager.all_steps()
    if not steps:
        raise FileNotFoundError(f"{directory}: no checkpoint found (expected orbax step directories)")
    if step is None:
        return max(steps)
    if step not in steps:
        raise FileNotFoundError(f"{directory}: no checkpoint for step {step}; saved steps: {sorted(steps)}")
    return step


def restore_prior(manager: ocp.CheckpointManager, step: int):
    """The colour prior saved at ``step``, or None when the checkpoint has none."""
    if PRIOR not in saved_items(manager.directory, step):
        return None
    restored = manager.restore(
        step, args=ocp.args.Composite(**{PRIOR: ocp.args.StandardRestore(), PRIOR_SETTINGS: ocp.args.JsonRestore()})
    )
    arrays, settings = restored[PRIOR], restored[PRIOR_SETTINGS]
    lightness_sums = arrays.get("lightness_sums")
    return ColourPrior.from_counts(np.asarray(arrays["counts"], np.float64), np.asarray(arrays["centres"]),
                                   lightness_sums=lightness_sums, **settings)


def restore_config_and_prior(manager: ocp.CheckpointManager, step: int):
    """``(model_config, prior or None)`` saved at ``step``."""
    model_config = manager.restore(step, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))[CONFIG]
    return model_config, restore_prior(manager, step)


def inference_defaults(model_config: dict, source: str = "checkpoint") -> dict:
    """``{"size", "temperature", "prior_correction"}`` a checkpoint's model should run at (saved by
    training: its crop size, decoding temperature and rebalancing correction); None for each the
    checkpoint does not say. A saved value that breaks :mod:`colorjax.validation`'s rules (a
    hand-edited string, NaN) is an ArgumentError naming ``source`` and the field."""
    from colorjax import validation

    saved = model_config.get(INFERENCE) or {}
    if not isinstance(saved, dict):
        raise validation.ArgumentError(f"{source}: the saved {INFERENCE!r} settings are not an object")
    where = f"{source}: saved {INFERENCE}."
    return {"size": validation.optional(validation.count, saved.get("size"), where + "size"),
            "temperature": validation.optional(validation.temperature, saved.get("temperature"), where + "temperature"),
            "prior_correction": validation.optional(validation.prior_correction, saved.get("prior_correction"),
                                                    where + "prior_correction"),
            "decoding": saved.get("decoding")}


def build_model_from_config(model_config: dict, rngs: nnx.Rngs) -> nnx.Module:
    """``build_model(**model_config)``, turning a JSON list of bin centres back into an array. The
    config's ``conv_algorithm`` is the one the model runs (a checkpoint saved without it: ``auto``)."""
    kwargs = {k: v for k, v in model_config.items() if k != INFERENCE}
    if kwargs.get("centres") is not None:
        kwargs["centres"] = np.asarray(kwargs["centres"], np.float32)
    return build_model(**kwargs, rngs=rngs)


def abstract_target(abstract_tree, sharding: jax.sharding.Sharding):
    """Shape/dtype leaves of ``abstract_tree`` placed on ``sharding`` (the restore target)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract_tree)


def restore_into(manager, step: int, item: str, abstract_state: nnx.State, sharding) -> nnx.State:
    """Restore item ``item`` of ``step`` into a copy of ``abstract_state`` laid out on ``sharding``."""
    target = abstract_target(nnx.to_pure_dict(abstract_state), sharding)
    restored = manager.restore(step, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(target)}))[item]
    state = jax.tree.map(lambda x: x, abstract_state)
    nnx.replace_by_pure_dict(state, restored)
    return state


Builder = Callable[[dict, nnx.Rngs], nnx.Module]


def checkpoint_folder(directory) -> epath.Path:
    """The folder holding a checkpoint's steps, by the one rule every command uses: ``directory``
    itself, or a training workdir's ``checkpoints`` sub-folder (when ``directory`` holds that folder
    and no step folder of its own); a clear error when ``directory`` does not exist."""
    directory = epath.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: checkpoint directory does not exist")
    inner = directory / TRAINING_SUBDIR
    if inner.is_dir() and not any(p.name.isdigit() for p in directory.iterdir()):
        return inner
    return directory


def restore_module(directory, build: Builder, step: int | None = None, *,
                   sharding: jax.sharding.Sharding | None = None):
    """Restore ``(module, config, prior or None, step)`` from a :func:`save_model` directory, a
    training workdir or its ``checkpoints`` directory, for any kind of module.

    ``build(config, rngs)`` makes the module from its saved config (it may raise
    :class:`WrongCheckpointKindError` for a config of another kind); only its shapes are used, the
    arrays come from the checkpoint. ``step`` defaults to the latest saved step; the arrays land on
    ``sharding`` (default: the first local device). Every file is checked against the step's
    manifest first, and a step holding NaN or infinity is refused.
    """
    directory = checkpoint_folder(directory)
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    with checkpoint_manager(directory, read_only=True) as manager:
        step = resolve_step(manager, directory, step)
        items = saved_items(directory, step)
        if MODEL not in items or CONFIG not in items:
            raise FileNotFoundError(f"{directory}/{step}: not a colorjax checkpoint (needs items 'model' and 'config')")
        verify_manifest(directory / str(step))
        try:
            config, prior = restore_config_and_prior(manager, step)
            abstract_module = nnx.eval_shape(lambda: build(config, nnx.Rngs(0)))
            graphdef, abstract_state = nnx.split(abstract_module)
            state = restore_into(manager, step, MODEL, abstract_state, sharding)
        except WrongCheckpointKindError:
            raise
        except Exception as error:  # noqa: BLE001 - orbax / tensorstore raise many kinds; report one line
            raise CorruptCheckpointError(f"{directory}/{step}: cannot be restored: {_first_line(error)}") from None
    bad = nonfinite_leaves(nnx.to_pure_dict(state))
    if bad:
        raise CorruptCheckpointError(
            f"{directory}/{step}: {len(bad)} parameter array(s) hold NaN or infinity (a diverged run), e.g. {bad[0]}"
        )
    return nnx.merge(graphdef, state), config, prior, step


def load_model(directory, step: int | None = None, *, sharding: jax.sharding.Sharding | None = None):
    """Load ``(model, model_config, prior)`` from a ``save_model`` directory, a training workdir or
    its ``checkpoints`` directory.

    ``step`` defaults to the latest saved step; the arrays land on ``sharding`` (default: the first
    local device). The model comes back in evaluation mode. No decoding setting is applied: the
    checkpoint's saved ones (:func:`inference_defaults`) are settled, with a user's overrides, by
    :class:`colorjax.inference.Colorizer`.
    """
    model, model_config, prior, _ = restore_module(directory, build_model_from_config, step, sharding=sharding)
    model.eval()
    return model, model_config, prior


def save_decoding(directory, *, temperature: float, prior_correction: float, step: int | None = None) -> int:
    """Write a decoding chosen after training (the annealed-mean ``temperature`` and the rebalancing
    ``prior_correction``) into the saved inference settings of ``directory``'s ``step`` (default the
    latest: the one ``colorize`` and ``evaluate`` load), so that every command decodes as chosen.
    The step is checked against its manifest first; the config file is replaced atomically and the
    manifest written again. Returns the step."""
    from colorjax import validation

    settings = {"temperature": validation.temperature(temperature, "temperature"),
                "prior_correction": validation.prior_correction(prior_correction, "prior_correction")}
    directory = checkpoint_folder(directory)
    with checkpoint_manager(directory, read_only=True) as manager:
        step = resolve_step(manager, directory, step)
    step_dir = os.path.join(os.fspath(directory), str(step))
    verify_manifest(step_dir)
    path = os.path.join(step_dir, CONFIG, "metadata")
    with open(path) as f:
        model_config = json.load(f)
    model_config[INFERENCE] = {**(model_config.get(INFERENCE) or {}), **settings}
    write_text_atomically(path, json.dumps(model_config))
    write_manifest(step_dir)
    return step


def save_vgg16(directory, model: VGG16Features, width: float = 1.0) -> None:
    """Write a VGG16 feature extractor as a checkpoint in colorjax's layout (items ``model`` and ``config``)."""
    save_model(directory, model, vgg16_config(model, width))


def _build_vgg16(config: dict, rngs: nnx.Rngs) -> VGG16Features:
    if config.get("network") != "vgg16_features":
        raise WrongCheckpointKindError(f"not a VGG16 feature checkpoint (config {config})")
    return VGG16Features(config["layers"], width=config["width"], rngs=rngs)


def load_vgg16(directory) -> VGG16Features:
    """The VGG16 feature extractor saved by :func:`save_vgg16` (e.g. by ``colorjax convert vgg16``)."""
    try:
        return restore_module(directory, _build_vgg16)[0]
    except WrongCheckpointKindError as error:
        raise WrongCheckpointKindError(f"{checkpoint_folder(directory)}: {error}") from None


def vgg16_feature_fn(directory, layers, conv_algorithm: str = "auto"):
    """``rgb [B, H, W, 3] -> [feature maps of layers]`` from ``colorjax convert vgg16``'s checkpoint
    (the perceptual loss's features), its 3 x 3 layers run by ``conv_algorithm``; a clear error
    when the weights or a layer are missing."""
    directory = epath.Path(directory).absolute()
    if not directory.exists():
        raise FileNotFoundError(
            f"{directory}: no converted VGG16 weights, which the perceptual loss needs. Convert torchvision's "
            f"vgg16-397923af.pth with `colorjax convert vgg16 FILE.pth --out {directory}`, or set "
            f"loss.perceptual_weight=0"
        )
    features = set_conv_algorithm(load_vgg16(directory), conv_algorithm)
    missing = [name for name in layers if name not in features.layers]
    if missing:
        raise ValueError(f"{directory}: the VGG16 checkpoint holds layers {list(features.layers)}, not {missing}")
    names = tuple(layers)
    return lambda rgb: [features(rgb)[name] for name in names]


def load_prior(directory, step: int | None = None):
    """The colour prior saved with a checkpoint (a ``save_model`` directory or a training workdir)."""
    directory = checkpoint_folder(directory)
    with checkpoint_manager(directory, read_only=True) as manager:
        prior = restore_prior(manager, resolve_step(manager, directory, step))
    if prior is None:
        raise ValueError(f"{directory}: this checkpoint holds no colour prior")
    return prior


def _jsonable(value):
    """Arrays and numpy scalars inside a config turned into plain lists and numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _first_line(error: BaseException) -> str:
    """An exception as one short line (orbax wraps causes in long multi-line messages)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
