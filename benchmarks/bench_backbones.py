"""Forward time of each full-size backbone at 256 x 256 (batch 1, evaluation mode, jitted), with
the PyTorch reference ECCV16 beside it when torch is installed. Random weights (timing does not
depend on them); not a test.

    python -m benchmarks.bench_backbones [--backbones eccv16 unet pix2pix patchnet] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.models import build_model

SIZE = 256


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call in s, median of ``repeats`` further calls in s)."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def bench_jax(backbone: str, repeats: int) -> None:
    make = lambda: build_model(backbone, "classification", rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))  # noqa: E731
    model = nnx.jit(make)()
    model.eval()
    params = sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    forward = nnx.jit(lambda m, L: m(L))
    L = jnp.full((1, SIZE, SIZE, 1), 50.0)
    first, run = timed(lambda: forward(model, L), repeats)
    print(f"jax   {backbone:9s} {params / 1e6:6.2f} M params  first call {first:6.2f} s  forward {run * 1e3:8.1f} ms")


def bench_torch_eccv16(repeats: int) -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch comparison skipped")
        return
    from tests.fixtures.torch_reference import ECCV16Torch

    net = ECCV16Torch().eval()
    L = torch.full((1, 1, SIZE, SIZE), 50.0)
    with torch.no_grad():
        first, run = timed(lambda: net(L)[0], repeats)
    print(f"torch eccv16    {torch.get_num_threads()} threads        first call {first:6.2f} s  forward {run * 1e3:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description="forward time of the full-size backbones at 256 px")
    parser.add_argument("--backbones", nargs="+", default=["eccv16", "unet", "pix2pix", "patchnet"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"devices {jax.devices()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for backbone in args.backbones:
        bench_jax(backbone, args.repeats)
    if "eccv16" in args.backbones:
        bench_torch_eccv16(args.repeats)


if __name__ == "__main__":
    main()
