"""``colorize`` on a folder of mixed-size photos against the model alone (not a test).

    python -m experiments.bench_colorize [--photos 200] [--size 64] [--width 0.25] [--batch-size 8]
        [--format png] [--folder ../shared/data/imagenet-samples]

A randomly initialised ECCV16 Q-bin model (the rates do not depend on the weights) colorizes the
first ``--photos`` photos of the folder (sorted by name; mixed sizes, median 500 x 375 for the
imagenet samples) with ``colorize_files``, as ``colorjax colorize`` does: decode, L, resize,
model, full-resolution Lab to sRGB, encode, write. After a warm-up on other photos (compilation
excluded from both figures) it prints:

- model only: the jitted prediction on batches of L already at ``--size``, on the device;
- folder: ``colorize_files`` over the photos, end to end, and its share of the model-only rate.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.inference import colorize_files
from colorjax.inference.colorize import predict_ab_batch
from colorjax.models import build_model
from colorjax.models.layers import for_inference
from experiments.scales import SAMPLES



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=pathlib.Path, default=SAMPLES)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--format", default="png", choices=("png", "jpg"))
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if len(photos) < args.photos + args.batch_size:
        raise SystemExit(f"{args.folder}: {len(photos)} photos, need {args.photos + args.batch_size}")
    model = build_model("eccv16", "classification", width=args.width, rngs=nnx.Rngs(0))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        timed, warm = scratch / "photos", scratch / "warm"
        timed.mkdir(), warm.mkdir()
        for p in photos[: args.photos]:
            os.symlink(p.resolve(), timed / p.name)
        for p in photos[args.photos : args.photos + args.batch_size]:
            os.symlink(p.resolve(), warm / p.name)
        options = dict(size=args.size, batch_size=args.batch_size, fmt=args.format, progress=False)
        colorize_files(model, [warm], scratch / "out_warm", **options)  # compile everything once

        inference_model = for_inference(model)
        L = jnp.asarray(np.random.default_rng(0).uniform(0, 100, (args.batch_size, args.size, args.size, 1)), jnp.float32)
        predict_ab_batch(inference_model, L, 0.38).block_until_ready()
        batches = -(-args.photos // args.batch_size)
        started = time.perf_counter()
        for _ in range(batches):
            np.asarray(predict_ab_batch(inference_model, L, 0.38))  # to the host, as colorize needs it
        model_rate = batches * args.batch_size / (time.perf_counter() - started)

        started = time.perf_counter()
        summary = colorize_files(model, [timed], scratch / "out", **options)
        folder_seconds = time.perf_counter() - started
    folder_rate = len(summary.written) / folder_seconds
    print(f"ECCV16 width {args.width} at {args.size} px, batch {args.batch_size}, {args.format} output, "
          f"{jax.devices()[0].device_kind}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"model only: {model_rate:.1f} images/s ({batches} batches of {args.batch_size})")
    print(f"folder:     {folder_rate:.1f} images/s ({len(summary.written)} photos written, {len(summary.failed)} failed, "
          f"{folder_seconds:.1f} s) = {100 * folder_rate / model_rate:.0f}% of the model-only rate")


if __name__ == "__main__":
    main()
