"""``colorjax colorize FOLDER --checkpoint DIR`` on mixed-size photos against the model alone (not a test).

    python -m benchmarks.bench_colorize [--config small full] [--photos 200] [--rounds 3]
        [--batch-size 8] [--format png] [--folder ../shared/data/imagenet-samples]

Configurations (ECCV16 Q-bin, randomly initialised: the rates do not depend on the weights, except
through how many predicted colours fall outside the sRGB gamut):

- ``small``: width 1/4 at ``--size 64``;
- ``full``: full width at ``--size 256`` (the paper's inference size).

Each configuration writes a checkpoint (``save_model``), runs the command once on a few other
photos (compilation, excluded from both figures), then alternates, in the same process, for
``--rounds`` rounds (the order swapped every round, so that a change in the machine's load falls
on both):

- model only: the jitted prediction the command uses, on ready fixed-shape batches of L at the
  model's size (as many batches as the folder needs), results brought back to the host;
- folder: the whole command over the first ``--photos`` photos of the folder (sorted by name; the
  imagenet samples are mixed sizes, median 500 x 375): loading the checkpoint, decoding, L, both
  resizes, the model, the full-resolution Lab -> sRGB with gamut fitting, encoding and writing.

It prints each round's rates, the CPU time per image (all threads of the process: where the model
and the host work share the cores, the ratio cannot pass model CPU / folder CPU), the load average (1 minute) at its start, the ratio (folder / model
only), the number of XLA compilations during the timed rounds (0 expected: no photo size compiles
anything), and a Markdown row per configuration. On a shared machine compare ratios, not rates.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax import cli
from colorjax.checkpointing import save_model
from colorjax.inference import Colorizer
from colorjax.models import build_model
from experiments.configs.scales import SAMPLES

CONFIGS = {"small": {"size": 64, "width": 0.25}, "full": {"size": 256, "width": 1.0}}
TEMPERATURE = 0.38


def count_compilations() -> list[str]:
    """A list that grows by one entry per XLA backend compilation from now on."""
    compiled: list[str] = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **kw: compiled.append(event) if event == "/jax/core/compile/backend_compile_duration" else None)
    return compiled


def link_photos(photos: list[pathlib.Path], folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir()
    for p in photos:
        os.symlink(p.resolve(), folder / p.name)
    return folder


def bench(name: str, photos: list[pathlib.Path], args, compiled: list[str]) -> dict:
    size, width = CONFIGS[name]["size"], CONFIGS[name]["width"]
    timed_photos, warm_photos = photos[: args.photos], photos[args.photos : args.photos + args.batch_size]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        checkpoint = scratch / "checkpoint"
        model_config = {"backbone": "eccv16", "head": "classification", "width": width}
        save_model(checkpoint, build_model(**model_config, rngs=nnx.Rngs(0)), model_config)
        timed, warm = link_photos(timed_photos, scratch / "photos"), link_photos(warm_photos, scratch / "warm")
        options = ["--checkpoint", str(checkpoint), "--size", str(size), "--temperature", str(TEMPERATURE),
                   "--batch-size", str(args.batch_size), "--format", args.format, "--no-progress", "--overwrite"]
        command = lambda inputs, out: ["colorize", str(inputs), "--out", str(out), *options]  # noqa: E731
        assert cli.main(command(warm, scratch / "out_warm")) == 0  # compile everything once

        colorizer = Colorizer.from_checkpoint(checkpoint, size=size, temperature=TEMPERATURE, batch_size=args.batch_size)
        L = jnp.asarray(np.random.default_rng(0).uniform(0, 100, (args.batch_size, size, size, 1)), jnp.float32)
        np.asarray(colorizer.predict_ab(L))
        batches = -(-len(timed_photos) // args.batch_size)

        def model_only() -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(batches):
                np.asarray(colorizer.predict_ab(L))  # to the host, as colorize needs it
            images = batches * args.batch_size
            return images / (time.perf_counter() - started), 1e3 * (time.process_time() - cpu) / images

        def folder() -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            assert cli.main(command(timed, scratch / "out")) == 0
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert len(list((scratch / "out").iterdir())) == len(timed_photos)
            return len(timed_photos) / seconds, 1e3 * cpu / len(timed_photos)

        compiled.clear()
        rounds = []
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            first, second = (model_only, folder) if r % 2 == 0 else (folder, model_only)
            measured = {first.__name__: first(), second.__name__: second()}
            rates = {key: rate for key, (rate, _) in measured.items()}
            cpu_ms = {key: ms for key, (_, ms) in measured.items()}
            rounds.append({"load": load, **rates, "ratio": rates["folder"] / rates["model_only"], "cpu_ms": cpu_ms})
            print(f"  {name} round {r + 1}: model only {rates['model_only']:.2f} images/s, folder {rates['folder']:.2f} "
                  f"images/s, ratio {rounds[-1]['ratio']:.2f}, load average {load:.1f}; CPU ms per image: model only "
                  f"{cpu_ms['model_only']:.0f}, folder {cpu_ms['folder']:.0f}", flush=True)
    result = {
        "name": name, "size": size, "width": width, "photos": len(timed_photos), "rounds": rounds,
        "compilations": len(compiled),
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "model_only": statistics.median(r["model_only"] for r in rounds),
        "folder": statistics.median(r["folder"] for r in rounds),
        "loads": [r["load"] for r in rounds],
        "cpu_ms": {key: statistics.median(r["cpu_ms"][key] for r in rounds) for key in ("model_only", "folder")},
    }
    print(f"{name}: ECCV16 width {width} at {size} px: median ratio {result['ratio']:.2f} "
          f"(folder {result['folder']:.2f} / model only {result['model_only']:.2f} images/s), "
          f"{result['compilations']} XLA compilations in the timed rounds; CPU ms per image (all threads): "
          f"model only {result['cpu_ms']['model_only']:.0f}, folder {result['cpu_ms']['folder']:.0f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", choices=sorted(CONFIGS), default=["small", "full"])
    parser.add_argument("--folder", type=pathlib.Path, default=SAMPLES)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--format", default="png", choices=("png", "jpg"))
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    if len(photos) < args.photos + args.batch_size:
        raise SystemExit(f"{args.folder}: {len(photos)} photos, need {args.photos + args.batch_size}")
    compiled = count_compilations()
    print(f"{jax.devices()[0].device_kind}, {os.cpu_count()} cores, batch {args.batch_size}, {args.format} output, "
          f"{args.photos} photos, {args.rounds} rounds", flush=True)
    results = [bench(name, photos, args, compiled) for name in args.config]
    print("\n| configuration | photos | model-only images/s | folder images/s | ratio (median of rounds) | rounds' ratios | load average |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ratios = [x["ratio"] for x in r["rounds"]]
        print(f"| ECCV16 width {r['width']:g}, {r['size']} px, batch {args.batch_size}, {args.format} | {r['photos']} | "
              f"{r['model_only']:.1f} | {r['folder']:.1f} | **{r['ratio']:.2f}** | "
              f"{', '.join(f'{x:.2f}' for x in ratios)} | {', '.join(f'{x:.1f}' for x in r['loads'])} |")


if __name__ == "__main__":
    main()
