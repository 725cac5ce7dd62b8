"""Input-pipeline stall of a real training run on ../shared/data/imagenet-samples (not a test).

    /work/venv/bin/python experiments/bench_stall.py [--steps 40] [--width 0.25] [--workers 0] [--cache-mb 1024]

The run is ``experiments/imagenet_samples_classification.py`` (ECCV16 Q-bin classifier, 64 px crops,
batch 16; ``--width`` and ``--workers`` override its model width and grain worker count): the
library's loader (shuffle, decode, resize, random crop, flip, gray drop) feeding the library's jitted
classification step with the loop's shardings and state donation, written as ``loop.py`` runs it
(fetch, ``global_batch``, dispatch; no host synchronisation until a log step). Three timings of
``--steps`` steps each, after warm-up and compilation:

- ``pipelined, first epoch``: as the loop runs (the next batch is fetched while the step
  computes), over the rest of the first epoch, when every image is decoded;
- ``pipelined``: the same over ``--steps`` later steps, when the decoded-image cache
  (``data.cache_mb``, default 1024 MB; ``--cache-mb 0`` turns it off) serves the images;
- ``compute only``: the same steps on one batch already on the device (no input pipeline);
- ``blocking``: each step waited for before the next fetch; ``wait`` is the time spent in ``next()``.

Stall fraction = 1 - compute only / pipelined: the slowdown the input pipeline causes. On a CPU
"device" it has two parts: waiting in ``next()`` for a batch, and grain's decoding threads taking
cycles from the same cores as the step (which no overlap can hide). ``time in next()`` shows the
first part. Every step runs under ``jax.transfer_guard("disallow")``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import tempfile
import time

import jax
import numpy as np
import optax

from colorjax.bins import zhang_bins
from colorjax.data import make_loader
from colorjax.prior import ColourPrior
from colorjax.training import optim, parallel, setup, steps
from colorjax.training import state as state_lib

HERE = pathlib.Path(__file__).resolve().parent


def _run_config():
    spec = importlib.util.spec_from_file_location("run_config", HERE / "imagenet_samples_classification.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.data.spec = os.fspath(HERE.parents[1] / "shared" / "data" / "imagenet-samples")
    return config


def build(config):
    """The run's jitted classification step and initial state (a random prior: speed only)."""
    mesh = parallel.data_mesh()
    centres = zhang_bins()
    model_fn = setup.model_factory(setup.model_config_of(config, centres), config.seed)
    stride, _ = setup.check_model(model_fn, config.data.crop_size, config.data.batch_size)
    counts = np.random.default_rng(0).gamma(0.5, 1.0, len(centres)) + 1e-3
    objective = setup.build_objective(config, stride, centres, ColourPrior.from_counts(counts, centres))
    tx = optim.make_optimizer(config.optim, optax.constant_schedule(config.optim.learning_rate))
    modules, state = state_lib.init_state(model_fn, tx, mesh)
    repl, sharded = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    step = jax.jit(steps.supervised_step(objective, modules.train, tx), in_shardings=(repl, sharded),
                   out_shardings=(repl, repl), donate_argnums=0)
    return step, state, mesh


def timed(step, state, batches, n: int, *, blocking: bool):
    """``(state, total seconds, seconds inside next())`` for ``n`` steps over ``batches``."""
    wait, pending = 0.0, []
    started = time.perf_counter()
    for _ in range(n):
        fetch = time.perf_counter()
        batch = next(batches)
        wait += time.perf_counter() - fetch
        with jax.transfer_guard("disallow"):
            state, metrics = step(state, batch)
        pending.append(metrics)
        if blocking:
            jax.block_until_ready(metrics)
    jax.block_until_ready(pending)
    return state, time.perf_counter() - started, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--width", type=float, default=None, help="model width (default: the run's 0.25)")
    parser.add_argument("--workers", type=int, default=None, help="grain worker processes (default: the run's)")
    parser.add_argument("--cache-mb", type=float, default=None, help="decoded-image cache (default: the config's)")
    parser.add_argument("--data-dir", default=None, help="where the folder dataset is built (default: temporary)")
    args = parser.parse_args()
    config = _run_config()
    if args.width is not None:
        config.model.width = args.width
    if args.workers is not None:
        config.data.worker_count = args.workers
    if args.cache_mb is not None:
        config.data.cache_mb = args.cache_mb
    with tempfile.TemporaryDirectory() as scratch:
        loader = make_loader(config.data.spec, config.data.train_split, crop_size=config.data.crop_size,
                             batch_size=config.data.batch_size, train=True, seed=config.seed,
                             data_dir=args.data_dir or scratch, worker_count=config.data.worker_count,
                             drop_gray=config.data.drop_gray, cache_mb=config.data.cache_mb)
        step, state, mesh = build(config)
        host_batches = iter(loader)
        device_batches = (parallel.global_batch(b, mesh) for b in host_batches)
        first = next(device_batches)
        state, compiled_s, _ = timed(step, state, iter([first]), 1, blocking=True)
        state, _, _ = timed(step, state, device_batches, 3, blocking=True)  # warm-up the pipeline too
        first_epoch = max(1, len(loader) // config.data.batch_size - 4)  # the rest of epoch 1
        state, first_s, first_wait = timed(step, state, device_batches, first_epoch, blocking=False)
        state, pipelined, pipelined_wait = timed(step, state, device_batches, args.steps, blocking=False)
        fixed = iter(lambda: first, None)
        state, compute, _ = timed(step, state, fixed, args.steps, blocking=False)
        state, blocking, wait = timed(step, state, device_batches, args.steps, blocking=True)
    n, b = args.steps, config.data.batch_size
    print(f"imagenet-samples, ECCV16 width {config.model.width}, {config.data.crop_size} px, batch {b}, "
          f"{config.data.worker_count} grain workers, decoded-image cache {config.data.cache_mb:g} MB, "
          f"{n} steps per timing ({first_epoch} in the first epoch), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; first step (compile) {compiled_s:.1f} s")
    print("| timing | s/step | images/s | time in next() |")
    print("|---|---|---|---|")
    rows = (("pipelined, first epoch (as loop.py)", first_s, first_wait, first_epoch),
            ("pipelined, later epochs (as loop.py)", pipelined, pipelined_wait, n),
            ("compute only", compute, 0.0, n), ("blocking, later epochs", blocking, wait, n))
    for name, total, waited, steps_ in rows:
        print(f"| {name} | {total / steps_:.3f} | {steps_ * b / total:.1f} | {100 * waited / total:.1f}% |")
    per_step = compute / n
    print(f"stall fraction (1 - compute only / pipelined): {100 * max(0.0, 1 - per_step / (pipelined / n)):.1f}% "
          f"in later epochs, {100 * max(0.0, 1 - per_step / (first_s / first_epoch)):.1f}% in the first epoch; "
          f"{100 * max(0.0, 1 - per_step / (blocking / n)):.1f}% when blocking")


if __name__ == "__main__":
    main()
