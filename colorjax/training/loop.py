"""``train(config, workdir)``: the training loop shared by every method.

Order of work: check the config (refused before anything is built), build the model abstractly and
trace it at the crop size (a head, backbone or size that does not fit is refused before anything
compiles), lock the workdir (one run per workdir), check that the training split yields an image,
count the colour prior (classification) and create the replicated state, or, when resuming, restore
the newest checkpoint that restores and checks (a corrupt newer one is named and set aside), compile
the steps (a step that needs more memory than is free is refused with XLA's estimate), then loop:
one step per batch, records every ``log_every`` steps, validation every ``eval_every`` steps and at
each checkpoint, an orbax checkpoint every ``checkpoint_every`` steps and at the end. A checkpoint
is saved only when the state, the training losses and the validation loss are finite; a run that
diverges stops with :class:`NonFiniteLossError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from colorjax import checkpointing, metrics
from colorjax.data import make_loader
from colorjax.training import config as config_lib
from colorjax.training import logging as run_logging
from colorjax.training import optim, parallel, priors, setup, steps
from colorjax.training import memory
from colorjax.training import state as state_lib
from colorjax.training.workdir import WorkdirLock

CORRUPT_DIR = "corrupt_checkpoints"  # checkpoints that failed to restore or check, set aside by --resume
DIVERGED_DIR = "diverged"  # checkpoints saved from parameters that then gave a non-finite loss


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


def total_steps(config: ml_collections.ConfigDict) -> int:
    """Steps of the run: ``train.num_steps``, or for NoGAN its whole schedule when that is 0."""
    if config.method == "nogan" and config.train.num_steps <= 0:
        return optim.nogan_num_steps(config)
    return config.train.num_steps


def _loader(config, split: str, *, train: bool, batch_size: int, num_epochs=None):
    """This host's shard of ``split`` in local batches of ``batch_size / process_count``."""
    size = config_lib.eval_size(config)  # training: crops of crop_size from images scaled to this
    return make_loader(
        config.data.spec, split, crop_size=config.data.crop_size if train else size, resize_size=size,
        batch_size=batch_size // jax.process_count(),
        train=train, seed=config.seed, data_dir=config.data.data_dir, shard_index=jax.process_index(),
        shard_count=jax.process_count(), worker_count=config.data.worker_count,
        drop_gray=config.data.drop_gray if train else False, num_epochs=num_epochs,
        cache_mb=config.data.cache_mb if train else 0,
    )


def _optimizers(config, num_steps: int):
    """(generator optimizer, its schedule, discriminator optimizer or None)."""
    if config.method == "nogan":
        schedule, d_schedule = optim.nogan_generator_schedule(config), optim.nogan_critic_schedule(config)
    else:
        schedule = optim.learning_rate_schedule(config.optim, num_steps)
        d_optim = ml_collections.ConfigDict(config.optim.to_dict())
        d_optim.learning_rate = config.discriminator.learning_rate
        d_schedule = optim.learning_rate_schedule(d_optim, num_steps)
    d_tx = optim.discriminator_optimizer(config, d_schedule) if config.method in setup.GAN_METHODS else None
    return optim.make_optimizer(config.optim, schedule), schedule, d_tx


def _phase(config, step: int) -> str:
    """Which step function runs at global step ``step`` (one ``match`` on the method)."""
    match config.method:
        case "regression" | "classification":
            return "supervised"
        case "pix2pix":
            return "gan"
        case "nogan":
            return {"generator": "supervised", "critic": "critic", "gan": "gan"}[optim.nogan_phase(step, config)]
    raise ValueError(f"unknown method {config.method!r}")


def _jitted_steps(config, objective, modules, tx, d_tx, mesh) -> dict:
    """The run's step functions, jitted with the state replicated (and donated) and the batch sharded."""
    repl, batch = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    fns = {"supervised": steps.supervised_step(objective, modules.train, tx)}
    if config.method in setup.GAN_METHODS:
        fns["gan"] = steps.gan_step(objective, modules.train, tx, modules.d_train, d_tx)
        fns["critic"] = steps.critic_step(objective, modules.eval, modules.d_train, d_tx)
    jitted = {
        name: jax.jit(fn, in_shardings=(repl, batch), out_shardings=(repl, repl), donate_argnums=0)
        for name, fn in fns.items()
    }
    image_outputs = {"loss": repl, "sums": repl, "gray_rgb": batch, "pred_rgb": batch, "true_rgb": batch}
    jitted["eval"] = jax.jit(steps.eval_step(objective, modules.eval), in_shardings=(repl, batch), out_shardings=image_outputs)
    return jitted


def _local_rows(x: jax.Array) -> np.ndarray:
    """This host's rows of a batch-sharded array, in batch order."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards])


def evaluate(config, eval_fn, state, mesh, *, grid_path: Path | None = None) -> dict:
    """Validation loss and the foundation's metrics over ``train.eval_images`` images (full
    batches only, the same number on every host), and an image grid PNG from the first batch."""
    global_size = config.data.eval_batch_size
    num_batches = max(1, config.train.eval_images // global_size)
    local_size = global_size // jax.process_count()
    loader = _loader(config, config.data.eval_split, train=False, batch_size=global_size, num_epochs=1)
    epochs = max(1, math.ceil(num_batches * local_size / max(len(loader), 1)) + 1)
    loader = _loader(config, config.data.eval_split, train=False, batch_size=global_size, num_epochs=epochs)
    accumulator, losses = metrics.MetricAccumulator(), []
    for local in loader:
        if len(losses) == num_batches:
            break
        if len(local["rgb"]) != local_size:
            continue
        out = eval_fn(state, parallel.global_batch(local, mesh))
        accumulator.update(parallel.to_host(out["sums"]))
        losses.append(float(parallel.to_host(out["loss"])))
        if grid_path is not None and len(losses) == 1 and jax.process_index() == 0:
            rows = [_local_rows(out[k])[: config.train.grid_images] for k in ("gray_rgb", "pred_rgb", "true_rgb")]
            run_logging.save_image_grid(grid_path, *rows)
    if not losses:
        raise ValueError(f"{config.data.spec}:{config.data.eval_split}: no full validation batch of {local_size} images")
    values = {f"val_{k}": float(v) for k, v in accumulator.result().items() if np.ndim(v) == 0}
    return {"val_loss": float(np.mean(losses)), **values}


def _changed_fields(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two config dicts."""
    changed = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def _start(config, manager, resume: bool):
    """The step to start from: 0, or the latest checkpoint's when resuming."""
    latest = manager.latest_step()
    if latest is not None and not resume:
        raise FileExistsError(
            f"{manager.directory} already holds checkpoints (latest step {latest}): pass --resume to "
            f"continue that run, or choose a new workdir"
        )
    return 0 if latest is None else latest


def _check_training_data(config) -> None:
    """Refuse, before any work, a training split that cannot yield a batch (every image gray or bad):
    one batch is read from a throwaway loader in this process."""
    from colorjax.data import NoUsableImagesError

    loader = make_loader(
        config.data.spec, config.data.train_split, crop_size=config.data.crop_size,
        resize_size=config_lib.eval_size(config), batch_size=1, train=True,
        seed=config.seed, data_dir=config.data.data_dir, shard_index=jax.process_index(),
        shard_count=jax.process_count(), drop_gray=config.data.drop_gray,
    )
    try:
        next(iter(loader))
    except NoUsableImagesError as error:
        what = "colour image" if config.data.drop_gray else "readable image"
        raise ValueError(f"the training split yields no {what}: {error}") from None


@dataclasses.dataclass
class _Run:
    """What a run is built from (fresh, or restored from a checkpoint)."""

    model_config: dict
    prior: object
    model_fn: object
    tx: object
    schedule: object
    d_tx: object
    modules: state_lib.Modules
    state: dict
    iterator: object
    saved: dict | None = None


def _build(config, model_config, prior, num_steps, mesh, train_loader) -> _Run:
    model_fn = setup.model_factory(model_config, config.seed)
    tx, schedule, d_tx = _optimizers(config, num_steps)
    modules, state = state_lib.init_state(model_fn, tx, mesh, discriminator_fn=setup.discriminator_factory(config), d_tx=d_tx)
    return _Run(model_config, prior, model_fn, tx, schedule, d_tx, modules, state, train_loader())


def _restore_run(config, manager, step, num_steps, mesh, train_loader) -> _Run:
    """The run restored from ``step``; a :class:`~colorjax.checkpointing.CorruptCheckpointError`
    naming the step (and the file when it is known) if it cannot be trusted."""
    step_dir = manager.directory / str(step)
    try:
        checkpointing.verify_manifest(step_dir)
    except checkpointing.CorruptCheckpointError as error:
        raise checkpointing.CorruptCheckpointError(f"step {step} ({step_dir}) is corrupt: {error}") from None
    try:
        model_config, prior = checkpointing.restore_config_and_prior(manager, step)
        run = _build(config, model_config, prior, num_steps, mesh, train_loader)
        run.state, run.saved = state_lib.restore(manager, step, run.state, run.modules, mesh, run.iterator)
    except Exception as error:  # noqa: BLE001 - orbax / tensorstore / grain raise many kinds
        raise checkpointing.CorruptCheckpointError(
            f"step {step} ({step_dir}) cannot be restored: {checkpointing._first_line(error)}"
        ) from None
    bad = checkpointing.nonfinite_leaves(run.state)
    if bad:
        raise checkpointing.CorruptCheckpointError(
            f"step {step} ({step_dir}) holds NaN or infinity in {len(bad)} array(s), e.g. {bad[0]}"
        )
    return run


def _set_aside(manager, step: int, workdir: Path, folder: str) -> Path:
    """Move a checkpoint step out of the manager's reach (kept for inspection, never deleted)."""
    target = workdir / folder / str(step)
    n = 1
    while target.exists():
        target, n = workdir / folder / f"{step}.{n}", n + 1
    target.parent.mkdir(exist_ok=True)
    if jax.process_index() == 0:
        os.replace(manager.directory / str(step), target)
    return target


def _restore_newest_good(config, manager, workdir, num_steps, mesh, train_loader, say) -> tuple[int, _Run]:
    """Restore the newest checkpoint that restores and checks (manifest, finite arrays); a newer
    one that does not is named, moved to ``workdir/corrupt_checkpoints/`` and skipped."""
    problems = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            run = _restore_run(config, manager, step, num_steps, mesh, train_loader)
        except checkpointing.CorruptCheckpointError as error:
            target = _set_aside(manager, step, workdir, CORRUPT_DIR)
            problems.append(str(error))
            say(f"checkpoint {error}; moved to {target}, falling back to an earlier step")
            continue
        if problems:
            manager.reload()
            say(f"resuming from step {step}, the newest checkpoint that restores and holds finite values")
        return step, run
    raise checkpointing.CorruptCheckpointError(
        f"{manager.directory}: no checkpoint can be resumed ({'; '.join(problems)}): start a new run in another workdir"
    )


def _last_good(manager) -> str:
    step = manager.latest_step()
    return f"the last good checkpoint is step {step} in {manager.directory}" if step is not None else "no checkpoint was saved"


def _diverged(manager, workdir: Path, message: str, first_bad_step: int) -> NonFiniteLossError:
    """The error for a run that diverged at ``first_bad_step``: a checkpoint saved from the parameters
    that produced it (step ``first_bad_step - 1``, when one was) is moved to ``workdir/diverged/``."""
    moved = []
    for step in manager.all_steps():
        if step >= first_bad_step - 1:
            moved.append(f"step {step} -> {_set_aside(manager, step, workdir, DIVERGED_DIR)}")
    if moved:
        manager.reload()
    note = f"; checkpoints saved from diverged parameters were moved aside ({', '.join(moved)})" if moved else ""
    last = _last_good(manager)
    return NonFiniteLossError(f"{message}; training stopped{note}. {last[0].upper()}{last[1:]}")


def train(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict:
    """Train as ``config`` says, writing checkpoints, metrics and grids under ``workdir``.

    Returns a summary: steps, wall time, the last training loss, every validation record and the
    best checkpoint's step.
    """
    return _train(config, workdir, resume=resume)


def _train(config: ml_collections.ConfigDict, workdir, *, resume: bool) -> dict:
    parallel.initialize_distributed()
    config = ml_collections.ConfigDict(config.to_dict())
    config_lib.validate(config, jax.device_count(), jax.process_count())
    num_steps = total_steps(config)
    # The model traced abstractly at the crop size (placeholder bins): a backbone, head or size that
    # does not fit is refused here, before the workdir, the data or any compilation.
    probe = setup.model_config_of(config, np.zeros((2, 2), np.float32))
    stride, _ = setup.check_model(setup.model_factory(probe, config.seed), config.data.crop_size, 1)
    workdir = Path(workdir).absolute()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{workdir}: cannot create the workdir ({error.strerror or error})") from None
    lock = WorkdirLock(workdir, jax.process_index())  # one run per workdir; released however we exit
    try:
        return _train_locked(config, workdir, resume, num_steps, stride)
    finally:
        lock.release()


def _train_locked(config, workdir: Path, resume: bool, num_steps: int, stride: int) -> dict:
    manager = checkpointing.checkpoint_manager(
        workdir / checkpointing.TRAINING_SUBDIR, keep_last=config.train.keep_checkpoints,
        best_metric=config.train.best_metric, best_mode=config.train.best_mode,
    )
    try:
        return _run(config, workdir, manager, resume, num_steps, stride)
    finally:
        manager.close()


def _run(config, workdir: Path, manager, resume: bool, num_steps: int, stride: int) -> dict:
    start = _start(config, manager, resume)
    mesh = parallel.data_mesh()
    train_loader = lambda: iter(_loader(config, config.data.train_split, train=True, batch_size=config.data.batch_size))  # noqa: E731
    _check_training_data(config)
    say = print if jax.process_index() == 0 else (lambda text: None)

    # Bins, prior and state: restored when resuming (the newest checkpoint that checks), else the
    # bins and prior counted from the training data (classification) and the state initialised.
    if start:
        start, run = _restore_newest_good(config, manager, workdir, num_steps, mesh, train_loader, say)
    else:
        centres = None
        if config_lib.model_head(config) == "classification":
            centres, prior = priors.bins_and_prior(config, train_loader, mesh, stride)
        else:
            prior = None if not config.prior.path else priors.bins_and_prior(config, train_loader, mesh, 1)[1]
        run = _build(config, setup.model_config_of(config, centres), prior, num_steps, mesh, train_loader)
    model_config, prior, state, iterator, saved = run.model_config, run.prior, run.state, run.iterator, run.saved
    local_batch = config.data.batch_size // jax.device_count()
    output_stride, _ = setup.check_model(run.model_fn, config.data.crop_size, local_batch)
    objective = setup.build_objective(config, output_stride, model_config.get("centres"), prior)
    step_fns = _compiled_steps(config, objective, run, mesh, start, num_steps)

    log = run_logging.RunLog(workdir, total_steps=num_steps, start_step=start, enabled=jax.process_index() == 0,
                             progress_bar=config.train.progress_bar, tensorboard=config.train.tensorboard)
    if log.dropped_records:
        log.message(f"metrics.jsonl: dropped {log.dropped_records} record(s) written after step {start}")
    (workdir / "grids").mkdir(exist_ok=True)
    config_json = config.to_dict()
    if saved is not None and (changed := _changed_fields(saved["config"], json.loads(json.dumps(config_json)))):
        log.message(f"resuming step {start} with config fields changed since it was saved: {', '.join(changed)}")
    history, validations, pending, step = [], [], [], start
    t0 = time.perf_counter()
    try:
        if start == 0 and config.train.eval_every and config.train.eval_images > 0:  # the curve's first point
            val = evaluate(config, step_fns["eval"], state, mesh, grid_path=workdir / "grids" / "step_0000000.png")
            validations.append({"step": 0, **val})
            log.validation(0, val)
        while step < num_steps:
            phase = _phase(config, step)
            state, step_metrics = step_fns[phase](state, parallel.global_batch(next(iterator), mesh))
            step += 1
            pending.append((step, step_metrics))
            log.advance()
            is_checkpoint = step % config.train.checkpoint_every == 0 or step == num_steps
            is_eval = config.train.eval_images > 0 and (
                is_checkpoint or (config.train.eval_every and step % config.train.eval_every == 0)
            )
            if not (is_checkpoint or is_eval or step % config.train.log_every == 0):
                continue
            records = [(s, {k: float(v) for k, v in parallel.to_host(m).items()}) for s, m in pending]
            pending = []
            for s, values in records:
                if not all(math.isfinite(v) for v in values.values()):
                    raise _diverged(manager, workdir, f"step {s}: non-finite training metrics {values}", s)
            history += [{"step": s, "phase": _phase(config, s - 1), **v} for s, v in records]
            mean = {k: float(np.mean([v[k] for _, v in records if k in v])) for k in records[-1][1]}
            if config.method != "nogan":  # NoGAN's generator lr follows its own update count
                mean["learning_rate"] = float(run.schedule(step - 1))
            log.train(step, mean, config.data.batch_size)
            val = None
            if is_eval:
                grid = workdir / "grids" / f"step_{step:07d}.png"
                val = evaluate(config, step_fns["eval"], state, mesh, grid_path=grid)
                validations.append({"step": step, **val})
                log.validation(step, val)
                # The loss and the ranking metric must be finite (PSNR of identical images is +inf and
                # SSIM of crops below its window is NaN by definition; they are not checked).
                checked = {"val_loss", config.train.best_metric}
                bad = {k: v for k, v in val.items() if k in checked and not math.isfinite(v)}
                if bad:
                    raise _diverged(manager, workdir, f"step {step}: non-finite validation metrics {bad}", step + 1)
            if is_checkpoint:
                bad = checkpointing.nonfinite_leaves(state)
                if bad:
                    raise _diverged(manager, workdir, f"step {step}: NaN or infinity in {len(bad)} state array(s), "
                                    f"e.g. {bad[0]}", step + 1)
                state_lib.save(manager, step, state, model_config=model_config, prior=prior,
                               config_json=config_json, iterator=iterator, metrics=val)
        best_step = manager.best_step()
    finally:
        log.close()
    return {
        "workdir": str(workdir),
        "method": config.method,
        "steps": step,
        "start_step": start,
        "wall_time_s": time.perf_counter() - t0,
        "final_train_loss": history[-1]["loss"] if history else None,
        "train": history,
        "validation": validations,
        "best_step": best_step,
    }


def _compiled_steps(config, objective, run: _Run, mesh, start: int, num_steps: int) -> dict:
    """The jitted steps, those this run will call compiled now for the state and a batch's shape:
    a crop or batch whose step needs more memory than is free is refused here, with XLA's estimate,
    before the first step."""
    fns = _jitted_steps(config, objective, run.modules, run.tx, run.d_tx, mesh)
    crop = config.data.crop_size
    batch_sharding = parallel.batch_sharded(mesh)
    batch = lambda size: {"rgb": jax.ShapeDtypeStruct((size, crop, crop, 3), np.uint8, sharding=batch_sharding)}  # noqa: E731
    phases = sorted({_phase(config, s) for s in range(start, num_steps)})
    for phase in phases:
        fns[phase] = memory.compile_within_memory(fns[phase], (run.state, batch(config.data.batch_size)),
                                                  what=f"the {phase} training step at crop {crop}, batch {config.data.batch_size}")
    if config.train.eval_images > 0:
        size = config_lib.eval_size(config)
        eval_batch = {"rgb": jax.ShapeDtypeStruct((config.data.eval_batch_size, size, size, 3), np.uint8,
                                                  sharding=batch_sharding)}
        fns["eval"] = memory.compile_within_memory(fns["eval"], (run.state, eval_batch),
                                                   what=f"the validation step at {size} px, batch {config.data.eval_batch_size}")
    return fns
