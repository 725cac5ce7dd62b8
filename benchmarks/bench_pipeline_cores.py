"""Images per second per CPU core of the training input pipeline, and what a 16-core GPU host
would feed against what the GPU step consumes (not a test).

    nice -n 19 python -m benchmarks.bench_pipeline_cores [--images 256] [--crops 176 256]
        [--workers 0 1 2] [--device-check OUT/device_check.json]

The path is the library's training loader on the imagenet-samples photos (full-size JPEGs, median
500 x 375), as an ImageNet run reads them: JPEG decode (at reduced DCT scale where the crop
allows), shorter side scaled to the crop, random crop, flip, gray check, batches of 32; no
decoded-image cache (an ImageNet epoch never sees a photo twice). Per core = images / CPU seconds
(user + system) of the main process and its grain worker processes over the timed images: unlike
a wall-clock rate, it holds on a machine shared with other work.

The projection multiplies the best per-core rate by 16 (the GPU machine's cores, all of them for
decoding: an upper bound) and sets it against the images/s of the ECCV16 bfloat16 step at that
crop from a device check's JSON when given, else the estimate from the step's FLOPs (XLA's count)
at 40 % MFU of an H100's dense bfloat16 peak.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time

import psutil

from colorjax.data import folder, make_loader
from experiments.configs.scales import SAMPLES

HERE = pathlib.Path(__file__).resolve().parent
HOST_CORES = 16  # the GPU machine lent to this project: one H100 / H200 and 16 CPU cores
H100_BF16_DENSE_FLOPS = 989e12  # NVIDIA H100 SXM datasheet: 989 TFLOP/s dense BF16 tensor core
ESTIMATE_MFU = 0.40


def cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(spec, data_dir, crop: int, workers: int, images: int, batch: int = 32) -> dict:
    loader = make_loader(spec, "train", crop_size=crop, batch_size=batch, train=True, data_dir=data_dir,
                         worker_count=workers, cache_mb=0)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up, first reads
    me = psutil.Process()
    cpu0, wall0, count = cpu_seconds(me), time.perf_counter(), 0
    while count < images:
        count += next(iterator)["rgb"].shape[0]
    cpu, wall = cpu_seconds(me) - cpu0, time.perf_counter() - wall0
    iterator.close() if hasattr(iterator, "close") else None
    return {"crop": crop, "workers": workers, "images": count, "cpu_s": cpu, "wall_s": wall,
            "per_core": count / cpu, "wall_rate": count / wall}


def step_rate_needed(crop: int, device_check: pathlib.Path | None) -> tuple[float, str]:
    """Images/s the GPU's ECCV16 bfloat16 step consumes at ``crop`` (measured or estimated)."""
    if device_check is not None:
        report = json.loads(device_check.read_text())
        for part in report["parts"].values():
            r = part.get("result") or {}
            if part["function"] == "train_step" and r.get("model") == "eccv16" and r.get("size") == crop \
                    and r.get("dtype") == "bfloat16":
                return r["images_per_s"], f"measured ({report['parts']['env']['result']['device_kind']})"
    from benchmarks.bench_models import jax_case

    train, state, _, _, rgb, _ = jax_case("eccv16", crop, 1, 1.0, "bfloat16", conv_algorithm="direct")
    flops = train.model_flops(state, rgb)
    return ESTIMATE_MFU * H100_BF16_DENSE_FLOPS / flops, f"estimated ({flops / 1e9:.0f} GFLOP per image at 40% MFU of H100 bf16)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=os.fspath(SAMPLES))
    parser.add_argument("--images", type=int, default=256, help="timed images per case")
    parser.add_argument("--crops", type=int, nargs="+", default=[176, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", default=None, help="where the folder dataset is built (default: temporary)")
    parser.add_argument("--device-check", type=pathlib.Path, default=None, help="device_check.json for the step rate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or scratch
        folder.ensure_folder_dataset(args.folder, data_dir)
        print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.images} images per case\n")
        print("| crop | workers | images/s per core (CPU time) | wall images/s here | CPU s |")
        print("|---|---|---|---|---|")
        best = {}
        for crop in args.crops:
            for workers in args.workers:
                r = measure(args.folder, data_dir, crop, workers, args.images)
                best[crop] = max(best.get(crop, 0.0), r["per_core"])
                print(f"| {crop} | {workers} | {r['per_core']:.0f} | {r['wall_rate']:.0f} | {r['cpu_s']:.1f} |", flush=True)
    print(f"\n| crop | {HOST_CORES} cores x best per core | GPU step consumes | keeps up |\n|---|---|---|---|")
    for crop in args.crops:
        need, source = step_rate_needed(crop, args.device_check)
        supply = HOST_CORES * best[crop]
        print(f"| {crop} | {supply:.0f} | {need:.0f} ({source}) | {'yes' if supply >= need else f'no: {supply / need:.0%}'} |")


if __name__ == "__main__":
    main()
