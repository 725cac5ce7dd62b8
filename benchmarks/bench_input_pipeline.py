"""Images per second of the input pipeline on ../shared/data/imagenet-samples (not a test).

    python -m benchmarks.bench_input_pipeline [--folder DIR] [--data-dir DIR]

Builds the folder into a TFDS dataset once (timed), then, for each crop size (64, 128, 256) and
worker count (0, 2), runs the training pipeline (shuffle, decode, shorter-side resize, random crop,
flip, gray check, batches of 32) for one full epoch of the train split after one warm-up batch, and
prints a Markdown table.  With 0 workers decoding still runs in grain's reader threads.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from colorjax.data import folder, make_loader
from experiments.configs.scales import SAMPLES



def images_per_second(spec, data_dir, crop_size, workers, batch_size=32) -> tuple[float, int, float]:
    loader = make_loader(spec, "train", crop_size=crop_size, batch_size=batch_size, train=True,
                         data_dir=data_dir, worker_count=workers)
    iterator = iter(loader)
    started = time.perf_counter()
    next(iterator)  # warm-up: worker start-up and the first reads
    warm_up = time.perf_counter() - started
    started, count = time.perf_counter(), 0
    while iterator.counters["images_seen"] < len(loader) + batch_size:
        count += next(iterator)["rgb"].shape[0]
    seconds = time.perf_counter() - started
    iterator.close()
    return count / seconds, count, warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=os.fspath(SAMPLES))
    parser.add_argument("--data-dir", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--crops", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or scratch
        started = time.perf_counter()
        record = folder.build_folder_dataset(args.folder, data_dir)
        print(f"build: {sum(record['examples'].values())} images {record['examples']}, "
              f"{len(record['skipped'])} skipped, {time.perf_counter() - started:.1f} s")
        print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n")
        print("| crop | workers | images/s | images timed | warm-up s |")
        print("|---|---|---|---|---|")
        for crop in args.crops:
            for workers in args.workers:
                rate, count, warm_up = images_per_second(args.folder, data_dir, crop, workers)
                print(f"| {crop} | {workers} | {rate:.0f} | {count} | {warm_up:.1f} |", flush=True)


if __name__ == "__main__":
    main()
