"""``colorjax evaluate``: a checkpoint or a baseline on a dataset split -> JSON, Markdown and a grid PNG.

The rebalanced AuC needs a colour prior (Zhang et al. weight each pixel by the inverse prior of its
ground-truth bin). Its source, in order: ``--prior FILE``; the prior saved in the checkpoint; else
one counted here on (at most 10k images of) the ``--prior-split`` (train) split of the same data over
Zhang's 313 bins. The record says which was used; rows of one table should share one prior file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from colorjax.evaluation.baselines import BASELINES
from colorjax.inference.colorizer import DEFAULT_SIZE, DEFAULT_TEMPERATURE
from colorjax.inference.commands import inference_options_are_valid

DEFAULT_BATCH = 16
# Images counted for a prior when none is given: a whole small dataset, a fixed sample of ImageNet.
PRIOR_MAX_IMAGES = 10_000
# Bytes per pixel of a batch's inputs alone (uint8 RGB, Lab, predicted ab, predicted Lab) and the
# share of free memory above which the metrics' memory is estimated (by compiling them) first.
INPUT_BYTES_PER_PIXEL = 3 + 12 + 8 + 12
SCREEN_FRACTION = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="a saved model or a training workdir")
    what.add_argument("--baseline", choices=BASELINES, help="evaluate a baseline instead (no checkpoint)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--data", required=True,
                        help='"embedded", an image folder, a TFDS name, or a colour video (its gray version is colorized)')
    parser.add_argument("--data-dir", default=None, help="where built / prepared datasets live")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, help="record path: writes OUT.json, OUT.md and OUT_grid.png")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="centre-crop side of the evaluation images")
    parser.add_argument("--model-size", type=int, default=None,
                        help="the side the model sees (L resized to it, ab lifted back onto the crop's L, as "
                             "colorize does); default: the size saved in the checkpoint, else --size")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--temperature", type=float, default=None,
                        help=f"annealed-mean T for Q-bin models; default: the checkpoint's, else {DEFAULT_TEMPERATURE}")
    parser.add_argument("--max-images", type=int, default=None, help="stop after this many images")
    parser.add_argument("--prior-correction", type=float, default=None,
                        help="Q-bin models: decode p / w**S, undoing S of the class rebalancing (default: the checkpoint's)")
    parser.add_argument("--prior", default=None,
                        help="a saved ColourPrior (.npz) or a checkpoint whose prior to use, for the rebalanced AuC "
                             "and the lightness baseline's table")
    parser.add_argument("--prior-split", default="train", help="split to count a prior on when none is given")


def run(args: argparse.Namespace) -> int:
    if not inference_options_are_valid(args, "evaluate"):
        return 2
    from colorjax.inference.video import is_video

    if is_video(args.data):  # a colour video: colorize its gray version, per frame and along the flow
        return _run_video(args)
    try:
        record = evaluate_to_file(
            checkpoint=args.checkpoint, step=args.step, baseline=args.baseline, data=args.data,
            data_dir=args.data_dir, split=args.split, out=args.out, size=args.size, batch_size=args.batch_size,
            temperature=args.temperature, max_images=args.max_images, prior_path=args.prior,
            prior_split=args.prior_split, model_size=args.model_size, prior_correction=args.prior_correction,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        return 2
    print(f"{int(record['metrics']['num_images'])} images in {record['metrics']['wall_s']} s -> {args.out}")
    return 0


def _run_video(args: argparse.Namespace) -> int:
    from colorjax.evaluation.video import evaluate_video_to_file

    try:
        check_report_writable(args.out)
        prior, source = (None, None) if args.prior is None else resolve_prior(args.prior, None, None, None, None, None)
        record = evaluate_video_to_file(
            checkpoint=args.checkpoint, step=args.step, data=args.data, out=args.out, model_size=args.model_size,
            temperature=args.temperature, batch_size=args.batch_size, max_frames=args.max_images, prior=prior,
            prior_source=source, prior_correction=args.prior_correction,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"evaluate: {error}", file=sys.stderr)
        return 2
    print(f"{record['frames']} frames in {record['wall_s']} s -> {args.out}")
    return 0


def evaluate_to_file(
    *, checkpoint=None, step=None, baseline=None, data, split="test", out, size=DEFAULT_SIZE, batch_size=DEFAULT_BATCH,
    temperature=None, max_images=None, prior_path=None, prior_split="train", data_dir=None, model_size=None,
    prior_correction=None,
) -> dict:
    """Evaluate a checkpoint or a baseline and write its record; returns the record (a dict).

    ``temperature`` and ``model_size`` default to the checkpoint's saved inference settings (else
    0.38 and ``size``): a model trained at 64 px is run at 64 px on L resized from the ``size`` crop,
    and its ab lifted back onto the crop's full-resolution L, the path ``colorjax colorize`` takes.
    """
    from colorjax.data import make_loader
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import evaluate, model_predictor
    from colorjax.evaluation.report import write_report

    from colorjax.validation import inference_arguments

    if (checkpoint is None) == (baseline is None):
        raise ValueError("give exactly one of a checkpoint and a baseline")
    inference_arguments(size=size, model_size=model_size, batch_size=batch_size, max_images=max_images,
                        temperature=temperature)
    check_evaluation_fits(size, batch_size)
    check_report_writable(out)  # before the work, so that a result is never computed and then lost
    record = {"data": data, "split": split, "size": size, "batch_size": batch_size, "checkpoint": None,
              "baseline": baseline, "temperature": None}
    saved_prior = None
    if checkpoint is not None:
        from colorjax.inference.colorizer import Colorizer

        # The model sees --model-size, else the size saved in the checkpoint, else the crop itself.
        colorizer = Colorizer.from_checkpoint(checkpoint, step=step, size=model_size, temperature=temperature,
                                              prior_correction=prior_correction, batch_size=batch_size,
                                              default_size=size)
        saved_prior, model_config = colorizer.prior, colorizer.model_config
        predictor = model_predictor(colorizer)
        record.update(checkpoint=str(checkpoint), step=step, temperature=colorizer.temperature,
                      model_size=colorizer.size, prior_correction=colorizer.prior_correction,
                      model={k: v for k, v in model_config.items() if k != "centres"})
    prior, record["prior_source"] = resolve_prior(prior_path, saved_prior, data, prior_split, size, data_dir)
    if baseline is not None:
        predictor = baseline_predictor(baseline, prior=prior)
    loader = make_loader(data, split, crop_size=size, batch_size=batch_size, train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    metrics, rows = evaluate(predictor, loader, prior=prior, max_images=max_images)
    record["metrics"] = metrics
    record["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    write_report(out, record, rows)
    return record


def check_evaluation_fits(size: int, batch_size: int, *, available: int | None = None) -> None:
    """A ValueError, before any work, when one batch's metrics at ``size`` x ``size`` would need more
    than the free memory (XLA's estimate of the compiled metrics, :mod:`colorjax.memory`). Batches
    whose inputs alone take under :data:`SCREEN_FRACTION` of the free memory skip the compile."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from colorjax import memory
    from colorjax.bins import zhang_bins
    from colorjax.metrics import batch_metric_sums_lab
    from colorjax.prior import ColourPrior

    available = memory.available_bytes(jax.local_devices()[0]) if available is None else available
    if available is None or batch_size * size * size * INPUT_BYTES_PER_PIXEL < SCREEN_FRACTION * available:
        return
    centres = zhang_bins()
    prior = ColourPrior.from_counts(np.ones(len(centres)), centres)  # any prior: the shapes decide the memory
    lab = jax.ShapeDtypeStruct((batch_size, size, size, 3), jnp.float32)
    memory.compile_within_memory(
        jax.jit(lambda pred, true: batch_metric_sums_lab(pred, true, prior=prior)), (lab, lab), resident=0,
        available=available, what=f"evaluating batches of {batch_size} crops of {size} x {size}",
        advice="lower --batch-size or --size")


def check_report_writable(out) -> None:
    """A ValueError when the record's files (``OUT.json``, ``OUT.md``, ``OUT_grid.png``) cannot be
    written: a folder in their place, a parent that is a file, or a folder that is not writable."""
    from colorjax.evaluation.report import report_paths
    from colorjax.inference.colorize import probe_writable

    paths = report_paths(out)
    for path in paths.values():
        if path.is_dir():
            raise ValueError(f"{path}: --out would write this file, but it is a folder")
    parent = paths["json"].parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{parent}: --out's folder is a file")
    try:
        probe_writable(parent)
    except OSError as error:
        raise ValueError(f"{Path(out)}: the record cannot be written in {parent} ({error.strerror or error})") from None


def resolve_prior(prior_path, saved_prior, data, split, size, data_dir):
    """``(prior, description)`` from a file, else the checkpoint's, else counted on ``split``."""
    from colorjax.prior import ColourPrior

    if prior_path is not None and Path(prior_path).is_dir():  # a checkpoint: its saved prior
        from colorjax.checkpointing import load_prior

        return load_prior(prior_path), f"checkpoint {prior_path}"
    if prior_path is not None:
        return ColourPrior.load(prior_path), f"file {prior_path}"
    if saved_prior is not None:
        return saved_prior, "checkpoint"
    return count_prior(data, split, size=size, data_dir=data_dir), f"counted on {data}:{split} (313 bins)"


def count_prior(data, split, *, size=DEFAULT_SIZE, batch_size=DEFAULT_BATCH, data_dir=None, centres=None,
                max_images=PRIOR_MAX_IMAGES):
    """Zhang's colour prior (313 bins, smoothed) of the first ``max_images`` images of ``data``'s ``split``."""
    import itertools

    import jax
    import numpy as np

    from colorjax import color
    from colorjax.bins import zhang_bins
    from colorjax.data import make_loader
    from colorjax.prior import LIGHTNESS_LEVELS, ColourPrior, count_bins_over, lightness_ab_sums

    centres = zhang_bins() if centres is None else centres
    loader = make_loader(data, split, crop_size=size, batch_size=batch_size, train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    batches = itertools.islice(loader, -(-max_images // batch_size))
    lightness_sums = np.zeros((LIGHTNESS_LEVELS, 3))
    sums_of = jax.jit(lambda lab: lightness_ab_sums(lab[..., 0], lab[..., 1:]))

    def ab_batches():  # the lightness baseline's sums over the same pixels as the bin counts
        for batch in batches:
            lab = color.rgb_uint8_to_lab(batch["rgb"])
            lightness_sums[:] += np.asarray(sums_of(lab), np.float64)
            yield lab[..., 1:]

    counts, images = count_bins_over(ab_batches(), centres)
    return ColourPrior.from_counts(counts, centres, num_images=images, lightness_sums=lightness_sums)
