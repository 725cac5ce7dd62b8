"""``train(config, workdir)``: one training run, top to bottom.

1. Check: the config is validated and the model traced once, abstractly, at the crop size, so that
   a head, backbone or size that does not fit is refused before the workdir, the data or any
   compilation.
2. Workdir: locked (one run per workdir) and given an orbax checkpoint manager.
3. Data: the training split must yield an image; this host reads its shard in local batches.
4. State: fresh (bins and colour prior counted from the training data, the model and optimizer
   state created replicated on the mesh) or restored from the newest checkpoint that restores and
   checks (a corrupt newer one is named and set aside).
5. Steps: jitted with the state replicated and the batch sharded, compiled now for the shapes the
   run will feed them (a step needing more memory than is free is refused with XLA's estimate).
6. Loop: a step per batch; records every ``log_every`` steps; validation every ``eval_every`` steps
   and at each checkpoint; a checkpoint every ``checkpoint_every`` steps and at the end, saved only
   when the state, the training losses and the validation loss are finite. A run that diverges
   stops with :class:`NonFiniteLossError`.

The config is read here only, apart from the modules this calls with parts of it: ``steps`` (the
step functions and their :class:`~colorjax.training.steps.Objective`), ``optim`` (optimizers and
schedules), ``init_from`` (a start from a trained model, freezing patterns), ``colorjax.data`` and ``priors`` (data and the colour prior), ``state`` and
``colorjax.checkpointing`` (checkpoints).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from colorjax import checkpointing, memory, metrics
from colorjax.data import NoUsableImagesError, make_loader
from colorjax.models.heads import rebalancing_logit_bias
from colorjax.training import config as config_lib
from colorjax.training import logging as run_logging
from colorjax.training import init_from, optim, parallel, priors, signals, steps
from colorjax.training import state as state_lib
from colorjax.training import workdir as workdir_lib
from colorjax.training.config import GAN_METHODS
from colorjax.training.simulated_hints import HintSampling


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""


# ---- the model and what it is trained against -----------------------------------------------------

def model_config_of(config: ml_collections.ConfigDict, centres=None) -> dict:
    """The JSON kwargs of ``build_model`` for this run (saved as the checkpoint's ``config``).
    ``centres`` None for a classification head means the model's default bins (Zhang's 313)."""
    m, head = config.model, config_lib.model_head(config)
    model_config = {"backbone": m.backbone, "head": head, "width": m.width, "activation": m.activation,
                    "batch_norm": m.batch_norm, "conv_algorithm": m.conv_algorithm, **m.options.to_dict()}
    if head == "classification" and centres is not None:
        model_config["centres"] = np.asarray(centres, np.float32).tolist()
    # What colorize and evaluate use when not told otherwise: the size the model was trained at and
    # the run's decoding.
    model_config[checkpointing.INFERENCE] = {"size": config_lib.eval_size(config), "temperature": config.bins.temperature,
                                             "prior_correction": config.bins.get("prior_correction", 0.0)}
    return model_config


def module_rngs(seed: int) -> nnx.Rngs:
    """Streams for building a module: parameters from an RBG key, because XLA compiles the unrolled
    threefry hash of every parameter's initialiser in tens of seconds on CPU and RngBitGenerator in
    a few; the streams a module keeps (dropout, RReLU) stay on the default PRNG, which is what
    ``load_model`` rebuilds."""
    return nnx.Rngs(params=jax.random.key(seed, impl="rbg"), dropout=jax.random.key(seed + 1), rrelu=jax.random.key(seed + 2))


def model_factory(model_config: dict, seed: int):
    """A function building the generator from ``seed`` (see :func:`module_rngs`)."""
    return lambda: checkpointing.build_model_from_config(model_config, module_rngs(seed))


def discriminator_factory(config: ml_collections.ConfigDict):
    """The PatchGAN builder for GAN methods, else None."""
    if config.method not in GAN_METHODS:
        return None
    from colorjax.models import PatchDiscriminator

    d = config.discriminator
    return lambda: PatchDiscriminator(n_layers=d.n_layers, width=d.width, conv_algorithm=config.model.conv_algorithm,
                                      rngs=module_rngs(config.seed + 3))


def check_model(model_fn, crop_size: int, batch_size: int = 1):
    """Build the model abstractly and trace one forward pass at ``crop_size``: a backbone, head or
    size that does not fit fails here, before anything compiles. ``(output_stride, output shape)``."""
    model = nnx.eval_shape(model_fn)
    model.train()
    graphdef, state = nnx.split(model)
    L = jax.ShapeDtypeStruct((batch_size, crop_size, crop_size, 1), jnp.float32)
    try:
        out = jax.eval_shape(lambda s, L: nnx.merge(graphdef, s)(L), state, L)
    except (ValueError, TypeError) as error:
        raise ValueError(f"the model does not fit a {crop_size} px crop: {error}") from error
    return model.output_stride, out.shape


def hint_options(config: ml_collections.ConfigDict) -> dict:
    """Objective fields of a model that takes hints: the hint sampling and the auxiliary
    classification branch (``model.options.class_bins``) with its weight; empty for other models."""
    from colorjax.models import BACKBONES
    from colorjax.models.siggraph17 import siggraph17_bins

    if not getattr(BACKBONES.get(config.model.backbone), "takes_hints", False):
        return {}
    h = config.hints
    options = {"hints": HintSampling(p=h.p, placement=h.placement), "hint_seed": config.seed + 4}
    class_bins = config.model.options.to_dict().get("class_bins", 0)
    if class_bins and config_lib.model_head(config) == "regression" and config.loss.class_weight > 0:
        bins = siggraph17_bins()
        if class_bins != len(bins):
            raise ValueError(f"model.options.class_bins = {class_bins}: the classification branch uses the "
                             f"{len(bins)} bins of the ab grid of 10 on [-110, 110]^2")
        options.update(class_weight=float(config.loss.class_weight), class_centres=bins)
    return options


def decode_logit_bias(config: ml_collections.ConfigDict, head: str, prior) -> np.ndarray | None:
    """The logit bias that validation decodes with: the prior correction the checkpoint saves for
    ``colorize`` and ``evaluate`` (``bins.prior_correction``), so the in-run scores are those of the
    saved decoding; None without one."""
    strength = config.bins.get("prior_correction", 0.0)
    if head != "classification" or not strength:
        return None
    return np.asarray(rebalancing_logit_bias(prior.weights, strength), np.float32)


def build_objective(config: ml_collections.ConfigDict, output_stride: int, centres, prior) -> steps.Objective:
    """The run's :class:`~colorjax.training.steps.Objective` from the config, its bins and its prior."""
    head, loss = config_lib.model_head(config), config.loss
    rebalance = head == "classification" and config.prior.rebalance
    vgg = None
    if loss.perceptual_weight > 0:
        vgg = checkpointing.vgg16_feature_fn(loss.vgg_checkpoint, loss.vgg_layers, config.model.conv_algorithm)
    return steps.Objective(
        head=head, output_stride=output_stride, pixel=loss.pixel, huber_delta=loss.huber_delta,
        centres=None if centres is None else np.asarray(centres, np.float32),
        class_weights=np.asarray(prior.weights, np.float32) if rebalance else None,
        k=config.bins.k, sigma=config.bins.sigma, temperature=config.bins.temperature,
        decode_logit_bias=decode_logit_bias(config, head, prior),
        perceptual_weight=loss.perceptual_weight, vgg_features=vgg, lambda_l1=loss.lambda_l1, gan=loss.gan,
        prior=prior, compute_dtype=config.train.compute_dtype,
        remat=config.train.remat, **hint_options(config),
    )


# ---- steps and data --------------------------------------------------------------------------------

def total_steps(config: ml_collections.ConfigDict) -> int:
    """Steps of the run: ``train.num_steps``, or for NoGAN its whole schedule when that is 0."""
    if config.method == "nogan" and config.train.num_steps <= 0:
        return optim.nogan_num_steps(config)
    return config.train.num_steps


def phase(config: ml_collections.ConfigDict, step: int) -> str:
    """Which step function runs at global step ``step``."""
    match config.method:
        case "regression" | "classification":
            return "supervised"
        case "pix2pix":
            return "gan"
        case "nogan":
            return {"generator": "supervised", "critic": "critic", "gan": "gan"}[optim.nogan_phase(step, config)]
    raise ValueError(f"unknown method {config.method!r}")


def jitted_steps(config, objective, modules: state_lib.Modules, tx, d_tx, mesh, statistics=()) -> dict:
    """The run's step functions, jitted with the state replicated (and donated) and the batch sharded;
    the batch statistics among ``statistics`` (paths) that ``optim.freeze`` matches stay as they were."""
    repl, batch = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    fns = {"supervised": steps.supervised_step(objective, modules.train, tx)}
    if config.method in GAN_METHODS:
        fns["gan"] = steps.gan_step(objective, modules.train, tx, modules.d_train, d_tx)
        fns["critic"] = steps.critic_step(objective, modules.eval, modules.d_train, d_tx)
    fns = {name: init_from.keep_frozen_statistics(fn, config.optim, statistics) for name, fn in fns.items()}
    jitted = {name: jax.jit(fn, in_shardings=(repl, batch), out_shardings=(repl, repl), donate_argnums=0)
              for name, fn in fns.items()}
    images = {"loss": repl, "sums": repl, "gray_rgb": batch, "pred_rgb": batch, "true_rgb": batch}
    jitted["eval"] = jax.jit(steps.eval_step(objective, modules.eval), in_shardings=(repl, batch), out_shardings=images)
    return jitted


def _compiled_steps(config, fns: dict, state, mesh, start: int, num_steps: int) -> dict:
    """The steps this run will call, compiled now for the state and a batch's shape."""
    sharding = parallel.batch_sharded(mesh)
    batch = lambda n, side: {"rgb": jax.ShapeDtypeStruct((n, side, side, 3), np.uint8, sharding=sharding)}  # noqa: E731
    crop, size, d = config.data.crop_size, config_lib.eval_size(config), config.data
    n = config.nogan  # phases repeat after NoGAN's pre-training: one span of steps shows them all
    span = n.generator_steps + n.critic_steps + n.gan_steps if config.method == "nogan" else 1
    for name in sorted({phase(config, s) for s in range(start, min(num_steps, start + span))}):
        fns[name] = memory.compile_within_memory(fns[name], (state, batch(d.batch_size, crop)),
                                                 what=f"the {name} training step at crop {crop}, batch {d.batch_size}")
    if config.train.eval_images > 0:
        fns["eval"] = memory.compile_within_memory(fns["eval"], (state, batch(d.eval_batch_size, size)),
                                                   what=f"the validation step at {size} px, batch {d.eval_batch_size}")
    return fns


def loader(config, split: str, *, train: bool, batch_size: int, num_epochs=None, quick: bool = False):
    """This host's shard of ``split`` in local batches of ``batch_size / process_count``: training
    crops of ``crop_size`` from images scaled to the eval size, evaluation at the eval size. ``quick``:
    no worker processes and no cache (a loader read once)."""
    d, size = config.data, config_lib.eval_size(config)
    return make_loader(
        d.spec, split, crop_size=d.crop_size if train else size, resize_size=size,
        batch_size=batch_size // jax.process_count(), train=train, seed=config.seed, data_dir=d.data_dir,
        shard_index=jax.process_index(), shard_count=jax.process_count(), num_epochs=num_epochs,
        worker_count=0 if quick else d.worker_count, drop_gray=d.drop_gray if train else False,
        cache_mb=d.cache_mb if train and not quick else 0,
    )


def _check_training_data(config) -> None:
    """Refuse a training split that cannot yield an image (every image gray or bad), before any work."""
    try:
        next(iter(loader(config, config.data.train_split, train=True, batch_size=jax.process_count(), quick=True)))
    except NoUsableImagesError as error:
        what = "colour image" if config.data.drop_gray else "readable image"
        raise ValueError(f"the training split yields no {what}: {error}") from None


def evaluate(config, eval_fn, state, mesh, *, grid_path: Path | None = None) -> dict:
    """Validation loss and the foundation's metrics over ``train.eval_images`` images (full
    batches only, the same number on every host), and an image grid PNG from the first batch."""
    global_size = config.data.eval_batch_size
    num_batches = max(1, config.train.eval_images // global_size)
    local_size = global_size // jax.process_count()
    one_epoch = len(loader(config, config.data.eval_split, train=False, batch_size=global_size, num_epochs=1))
    epochs = max(1, math.ceil(num_batches * local_size / max(one_epoch, 1)) + 1)
    accumulator, losses = metrics.MetricAccumulator(), []
    for local in loader(config, config.data.eval_split, train=False, batch_size=global_size, num_epochs=epochs):
        if len(losses) == num_batches:
            break
        if len(local["rgb"]) != local_size:
            continue
        out = eval_fn(state, parallel.global_batch(local, mesh))
        accumulator.update(parallel.to_host(out["sums"]))
        losses.append(float(parallel.to_host(out["loss"])))
        if grid_path is not None and len(losses) == 1 and jax.process_index() == 0:
            rows = [parallel.local_rows(out[k])[: config.train.grid_images] for k in ("gray_rgb", "pred_rgb", "true_rgb")]
            run_logging.save_image_grid(grid_path, *rows)
    if not losses:
        raise ValueError(f"{config.data.spec}:{config.data.eval_split}: no full validation batch of {local_size} images")
    values = {f"val_{k}": float(v) for k, v in accumulator.result().items() if np.ndim(v) == 0}
    return {"val_loss": float(np.mean(losses)), **values}


# ---- the state: fresh or restored --------------------------------------------------------------------

@dataclasses.dataclass
class _Run:
    """What a run is built from (fresh, or restored from a checkpoint)."""

    model_config: dict
    prior: object
    schedule: object
    fns: dict  # the jitted steps
    state: dict
    iterator: object
    saved: dict | None = None  # the restored checkpoint's train_state JSON


@dataclasses.dataclass
class TrainingSteps:
    """A run's steps for one model config, as :func:`training_steps` makes them."""

    fns: dict  # the jitted steps by name (:func:`jitted_steps`), compiled on their first call
    state: dict  # the replicated initial state
    modules: state_lib.Modules
    objective: steps.Objective
    schedule: object  # the generator's learning-rate schedule


def training_steps(config, model_config: dict, prior, stride: int, num_steps: int, mesh) -> TrainingSteps:
    """Optimizers, the replicated initial state and the jitted steps for ``model_config`` (not yet
    compiled): the one way the training loop, the benchmarks and the device check make a run's steps.
    ``stride`` is the model's output stride (:func:`check_model`); ``fns[phase(config, step)]`` is
    the step that trains at ``step``."""
    tx, schedule, d_tx = optim.optimizers(config, num_steps)
    model_fn, d_fn = model_factory(model_config, config.seed), discriminator_factory(config)
    modules, state = state_lib.init_state(model_fn, tx, mesh, discriminator_fn=d_fn, d_tx=d_tx)
    objective = build_objective(config, stride, model_config.get("centres"), prior)
    fns = jitted_steps(config, objective, modules, tx, d_tx, mesh, init_from.statistic_paths(model_fn))
    return TrainingSteps(fns, state, modules, objective, schedule)


def _build(config, model_config, prior, stride, num_steps, mesh, iterator) -> _Run:
    """The run's :func:`training_steps` with its data iterator."""
    built = training_steps(config, model_config, prior, stride, num_steps, mesh)
    return _Run(model_config, prior, built.schedule, built.fns, built.state, iterator)


def bins_and_prior(config, train_iterator, mesh, stride: int, centres=None):
    """``(centres, prior)`` of a fresh run: counted from the training data at the output ``stride``
    for a classification head (or loaded from ``prior.path``); a regression run has centres None and
    the prior of ``prior.path``, or None."""
    head, p = config_lib.model_head(config), config.prior
    if head == "regression" and not p.path:
        return None, None
    centres, prior = priors.bins_and_prior(
        train_iterator, mesh, stride, images=p.images, batch_size=config.data.batch_size, kind=config.bins.kind,
        grid=config.bins.grid, smoothing_sigma=p.smoothing_sigma, lam=p.lam, path=p.path, centres=centres)
    return (centres if head == "classification" else None), prior


def _restore(config, manager, step, stride, num_steps, mesh, train_iterator) -> _Run:
    """The run restored from ``step``; a :class:`~colorjax.checkpointing.CorruptCheckpointError`
    naming the step (and the file when it is known) if it cannot be trusted."""
    where = f"step {step} ({manager.directory / str(step)})"
    try:
        checkpointing.verify_manifest(manager.directory / str(step))
    except checkpointing.CorruptCheckpointError as error:
        raise checkpointing.CorruptCheckpointError(f"{where} is corrupt: {error}") from None
    try:
        model_config, prior = checkpointing.restore_config_and_prior(manager, step)
        run = _build(config, model_config, prior, stride, num_steps, mesh, train_iterator())
        run.state, run.saved = state_lib.restore(manager, step, run.state, mesh, run.iterator)
    except Exception as error:  # noqa: BLE001 - orbax / tensorstore / grain raise many kinds
        raise checkpointing.CorruptCheckpointError(f"{where} cannot be restored: {checkpointing._first_line(error)}") from None
    if bad := checkpointing.nonfinite_leaves(run.state):
        raise checkpointing.CorruptCheckpointError(f"{where} holds NaN or infinity in {len(bad)} array(s), e.g. {bad[0]}")
    return run


def _restore_newest_good(config, manager, workdir, stride, num_steps, mesh, train_iterator, say) -> tuple[int, _Run]:
    """Restore the newest checkpoint that restores and checks (manifest, finite arrays); a newer
    one that does not is named, moved to ``workdir/corrupt_checkpoints/`` and skipped."""
    problems = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            run = _restore(config, manager, step, stride, num_steps, mesh, train_iterator)
        except checkpointing.CorruptCheckpointError as error:
            target = workdir_lib.set_aside(manager, step, workdir, workdir_lib.CORRUPT_DIR)
            problems.append(str(error))
            say(f"checkpoint {error}; moved to {target}, falling back to an earlier step")
            continue
        if problems:
            manager.reload()
            say(f"resuming from step {step}, the newest checkpoint that restores and holds finite values")
        return step, run
    raise checkpointing.CorruptCheckpointError(
        f"{manager.directory}: no checkpoint can be resumed ({'; '.join(problems)}): start a new run in another workdir")


def _diverged(manager, workdir: Path, message: str, first_bad_step: int) -> NonFiniteLossError:
    """The error for a run that diverged at ``first_bad_step``: checkpoints saved from the parameters
    that produced it (step ``first_bad_step - 1`` on) are moved to ``workdir/diverged/``."""
    moved = workdir_lib.set_aside_from(manager, first_bad_step - 1, workdir, workdir_lib.DIVERGED_DIR)
    note = f"; checkpoints saved from diverged parameters were moved aside ({', '.join(moved)})" if moved else ""
    step = manager.latest_step()
    last = f"The last good checkpoint is step {step} in {manager.directory}" if step is not None else "No checkpoint was saved"
    return NonFiniteLossError(f"{message}; training stopped{note}. {last}")


# ---- the run -------------------------------------------------------------------------------------------

def train(config: ml_collections.ConfigDict, workdir, *, resume: bool = False) -> dict:
    """Train as ``config`` says, writing checkpoints, metrics and grids under ``workdir``.

    Returns a summary: steps, wall time, the last training loss, every validation record and the
    best checkpoint's step.
    """
    # 1. Check, before the workdir, the data or any compilation.
    parallel.initialize_distributed()
    config = ml_collections.ConfigDict(config.to_dict())
    config_lib.validate(config, jax.device_count(), jax.process_count())
    config, start_from = init_from.prepare(config, resume=resume)  # train.init_from: read, not yet loaded
    num_steps, t = total_steps(config), config.train
    centres = start_from.centres(config) if start_from else None
    model_fn = model_factory(model_config_of(config, centres), config.seed)
    stride, _ = check_model(model_fn, config.data.crop_size)
    init_from.check_patterns(config, model_fn, start_from)

    # 2. Workdir: one run per workdir, released however we exit.
    workdir = Path(workdir).absolute()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{workdir}: cannot create the workdir ({error.strerror or error})") from None
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(workdir_lib.WorkdirLock(workdir, jax.process_index()))
        interrupts = cleanup.enter_context(signals.StopOnSignals())  # SIGTERM / SIGINT: see signals.py
        manager = checkpointing.checkpoint_manager(workdir / checkpointing.TRAINING_SUBDIR, keep_last=t.keep_checkpoints,
                                                   best_metric=t.best_metric, best_mode=t.best_mode)
        cleanup.callback(manager.close)
        if (start := manager.latest_step() or 0) and not resume:
            raise FileExistsError(f"{manager.directory} already holds checkpoints (latest step {start}): pass --resume "
                                  f"to continue that run, or choose a new workdir")

        # 3. Data.
        mesh = parallel.data_mesh()
        train_iterator = lambda: iter(loader(config, config.data.train_split, train=True, batch_size=config.data.batch_size))  # noqa: E731
        _check_training_data(config)
        say = print if jax.process_index() == 0 else (lambda text: None)

        # 4. State.
        if start:
            start, run = _restore_newest_good(config, manager, workdir, stride, num_steps, mesh, train_iterator, say)
        elif start_from:
            centres, prior = start_from.bins_and_prior(
                config, centres, lambda kept: bins_and_prior(config, train_iterator, mesh, stride, centres=kept))
            run = _build(config, model_config_of(config, centres), prior, stride, num_steps, mesh, train_iterator())
            run.state = start_from.load_into(run.state, parallel.replicated(mesh))
            say(f"starting from {start_from.directory} step {start_from.step}: "
                f"{json.dumps(start_from.record(workdir, config))}")
        else:
            centres, prior = bins_and_prior(config, train_iterator, mesh, stride)
            run = _build(config, model_config_of(config, centres), prior, stride, num_steps, mesh, train_iterator())
        state, iterator = run.state, run.iterator

        # 5. Steps, compiled now.
        fns = _compiled_steps(config, run.fns, state, mesh, start, num_steps)

        # 6. The loop.
        log = run_logging.RunLog(workdir, total_steps=num_steps, start_step=start, enabled=jax.process_index() == 0,
                                 progress_bar=t.progress_bar, tensorboard=t.tensorboard)
        cleanup.callback(log.close)
        if log.dropped_records:
            log.message(f"metrics.jsonl: dropped {log.dropped_records} record(s) written after step {start}")
        (workdir / "grids").mkdir(exist_ok=True)
        config_json = config.to_dict()
        if run.saved and (changed := config_lib.changed_fields(run.saved["config"], json.loads(json.dumps(config_json)))):
            log.message(f"resuming step {start} with config fields changed since it was saved: {', '.join(changed)}")
        history, validations, pending, step = [], [], [], start
        t0 = time.perf_counter()

        def validation(step: int) -> dict:
            val = evaluate(config, fns["eval"], state, mesh, grid_path=workdir / "grids" / f"step_{step:07d}.png")
            validations.append({"step": step, **val})
            log.validation(step, val)
            return val

        if start == 0 and t.eval_every and t.eval_images > 0:  # the curve's first point
            validation(0)
        interrupts.defer()  # from here a signal is acted on after the step: a checkpoint at that step
        while step < num_steps:
            state, step_metrics = fns[phase(config, step)](state, parallel.global_batch(next(iterator), mesh))
            step += 1
            pending.append((step, step_metrics))
            log.advance()
            is_checkpoint = step % t.checkpoint_every == 0 or step == num_steps
            is_eval = t.eval_images > 0 and (is_checkpoint or (t.eval_every and step % t.eval_every == 0))
            stopping = interrupts.received is not None
            if not (is_checkpoint or is_eval or stopping or step % t.log_every == 0):
                continue
            records = [(s, {k: float(v) for k, v in parallel.to_host(m).items()}) for s, m in pending]
            pending = []
            for s, values in records:
                if not all(math.isfinite(v) for v in values.values()):
                    raise _diverged(manager, workdir, f"step {s}: non-finite training metrics {values}", s)
            history += [{"step": s, "phase": phase(config, s - 1), **v} for s, v in records]
            mean = {k: float(np.mean([v[k] for _, v in records if k in v])) for k in records[-1][1]}
            if config.method != "nogan":  # NoGAN's generator lr follows its own update count
                mean["learning_rate"] = float(run.schedule(step - 1))
            log.train(step, mean, config.data.batch_size)
            val = None
            if is_eval:
                val = validation(step)
                # The loss and the ranking metric must be finite (PSNR of identical images is +inf and
                # SSIM of crops below its window is NaN by definition; they are not checked).
                bad = {k: v for k, v in val.items() if k in {"val_loss", t.best_metric} and not math.isfinite(v)}
                if bad:
                    raise _diverged(manager, workdir, f"step {step}: non-finite validation metrics {bad}", step + 1)
            if is_checkpoint or stopping:
                if bad := checkpointing.nonfinite_leaves(state):
                    raise _diverged(manager, workdir, f"step {step}: NaN or infinity in {len(bad)} state array(s), "
                                    f"e.g. {bad[0]}", step + 1)
                state_lib.save(manager, step, state, model_config=run.model_config, prior=run.prior,
                               config_json=config_json, iterator=iterator, metrics=val)
            if stopping:
                raise interrupts.stopped(step, manager.directory / str(step))
        best_step = manager.best_step()
    return {
        "workdir": str(workdir), "method": config.method, "steps": step, "start_step": start,
        "wall_time_s": time.perf_counter() - t0, "final_train_loss": history[-1]["loss"] if history else None,
        "train": history, "validation": validations, "best_step": best_step,
    }
