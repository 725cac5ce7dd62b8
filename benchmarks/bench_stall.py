"""Input-pipeline stall of a real training run on ../shared/data/imagenet-samples (not a test).

    python -m benchmarks.bench_stall [--steps 80] [--width 0.25] [--workers 0] [--cache-mb 1024]

The run is ``experiments/configs/imagenet_samples_classification.py`` (ECCV16 Q-bin classifier, 64 px crops,
batch 16; ``--width`` and ``--workers`` override its model width and grain worker count): the
library's loader (shuffle, decode, resize, random crop, flip, gray drop) feeding the library's jitted
classification step as the loop builds it (``trainer.training_steps``: its shardings and state donation)
(fetch, ``global_batch``, dispatch; no host synchronisation until a log step). Three timings,
after warm-up and compilation:

- ``first epoch``: as the loop runs (the next batch is fetched while the step computes), over the
  rest of the first epoch, when every image is decoded;
- ``later epochs``: the same over ``--steps`` later steps, when the decoded-image cache
  (``data.cache_mb``, default 1024 MB; ``--cache-mb 0`` turns it off) serves the images;
- ``blocking``: each step waited for before the next fetch; ``time in next()`` is the time spent
  fetching.

Each is timed in rounds alternating with as many ``compute only`` steps (the same step on one batch
already on the device: no input pipeline), and stall = 1 - compute only / pipelined: the slowdown
the input pipeline causes. On a CPU "device" it has two parts: waiting in ``next()`` for a batch, and grain's decoding threads taking
cycles from the same cores as the step (which no overlap can hide). ``time in next()`` shows the
first part. Every step runs under ``jax.transfer_guard("disallow")``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import numpy as np

from colorjax.bins import zhang_bins
from colorjax.data import make_loader
from colorjax.prior import ColourPrior
from colorjax.training import parallel, trainer
from experiments.configs import imagenet_samples_classification

def build(config):
    """The run's jitted classification step and initial state (a random prior: speed only)."""
    mesh = parallel.data_mesh()
    centres = zhang_bins()
    model_config = trainer.model_config_of(config, centres)
    stride, _ = trainer.check_model(trainer.model_factory(model_config, config.seed), config.data.crop_size,
                                    config.data.batch_size)
    counts = np.random.default_rng(0).gamma(0.5, 1.0, len(centres)) + 1e-3
    built = trainer.training_steps(config, model_config, ColourPrior.from_counts(counts, centres), stride,
                                   config.train.num_steps, mesh)
    step, state = built.fns["supervised"], built.state
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
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--width", type=float, default=None, help="model width (default: the run's 0.25)")
    parser.add_argument("--workers", type=int, default=None, help="grain worker processes (default: the run's)")
    parser.add_argument("--cache-mb", type=float, default=None, help="decoded-image cache (default: the config's)")
    parser.add_argument("--data-dir", default=None, help="where the folder dataset is built (default: temporary)")
    args = parser.parse_args()
    config = imagenet_samples_classification.get_config()  # the sample photos (experiments/configs/scales.py SAMPLES)
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
        fixed = iter(lambda: first, None)
        state, compiled_s, _ = timed(step, state, iter([first]), 1, blocking=True)
        state, _, _ = timed(step, state, device_batches, 3, blocking=True)  # warm-up the pipeline too
        per_round = max(1, (len(loader) // config.data.batch_size - 4) // ROUNDS)  # the rest of epoch 1
        state, cold = alternating(step, state, device_batches, fixed, per_round, blocking=False)
        state, warm = alternating(step, state, device_batches, fixed, max(1, args.steps // ROUNDS), blocking=False)
        state, blocking = alternating(step, state, device_batches, fixed, max(1, args.steps // ROUNDS), blocking=True)
    b = config.data.batch_size
    print(f"imagenet-samples, ECCV16 width {config.model.width}, {config.data.crop_size} px, batch {b}, "
          f"{config.data.worker_count} grain workers, decoded-image cache {config.data.cache_mb:g} MB, "
          f"{ROUNDS} rounds of pipelined / compute-only segments per timing, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; first step (compile) {compiled_s:.1f} s")
    print("| timing | steps | s/step pipelined | s/step compute only | time in next() | stall |")
    print("|---|---|---|---|---|---|")
    for name, (steps_, pipelined, waited, compute) in (("first epoch (decoding), as trainer.py", cold),
                                                       ("later epochs, as trainer.py", warm),
                                                       ("later epochs, blocking", blocking)):
        stall = max(0.0, 1 - compute / pipelined)
        print(f"| {name} | {steps_} | {pipelined / steps_:.3f} | {compute / steps_:.3f} | "
              f"{100 * waited / pipelined:.1f}% | {100 * stall:.1f}% |")


ROUNDS = 8


def alternating(step, state, batches, fixed, per_round: int, *, blocking: bool):
    """``(state, (steps, pipelined s, s in next(), compute-only s))`` over ``ROUNDS`` rounds of
    ``per_round`` pipelined steps followed by as many compute-only steps: the slow drifts of a
    shared machine fall on both timings alike."""
    pipelined = waited = compute = 0.0
    for _ in range(ROUNDS):
        state, seconds, wait = timed(step, state, batches, per_round, blocking=blocking)
        pipelined, waited = pipelined + seconds, waited + wait
        state, seconds, _ = timed(step, state, fixed, per_round, blocking=False)
        compute += seconds
    return state, (ROUNDS * per_round, pipelined, waited, compute)


if __name__ == "__main__":
    main()
