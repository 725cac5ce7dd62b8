"""``colorjax colorize INPUT... --checkpoint DIR --out DIR``: colorize image and video files, folders and globs."""

from __future__ import annotations

import argparse
import sys

from colorjax.inference.colorize import OUTPUT_FORMATS
from colorjax.inference.colorizer import DEFAULT_BATCH, DEFAULT_SIZE, DEFAULT_TEMPERATURE


def inference_options_are_valid(args: argparse.Namespace, command: str) -> bool:
    """Check --size, --model-size, --batch-size, --temperature, --prior-correction and --max-images
    (shared with ``colorjax evaluate``) by :mod:`colorjax.validation`'s rules; say why not.
    ``None`` (not given) passes: the checkpoint's own inference defaults are used."""
    from colorjax import validation

    try:
        for option in ("size", "model_size", "batch_size", "max_images"):
            validation.optional(validation.count, getattr(args, option, None), "--" + option.replace("_", "-"))
        validation.optional(validation.temperature, args.temperature, "--temperature")
        validation.optional(validation.prior_correction, getattr(args, "prior_correction", None), "--prior-correction")
    except validation.ArgumentError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image and video files, folders (recursive) or glob patterns")
    parser.add_argument("--checkpoint", required=True, help="a saved model or a training workdir")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument(
        "--temperature", type=float, default=None,
        help="annealed-mean temperature for Q-bin models: 1 = mean (dull), 0 = mode (vivid); default: the "
             f"checkpoint's (saved by training), else the paper's {DEFAULT_TEMPERATURE}",
    )
    parser.add_argument("--size", type=int, default=None,
                        help=f"the side the model sees; default: the size it was trained at (saved in the checkpoint), "
                             f"else the paper's {DEFAULT_SIZE}")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images per device call")
    parser.add_argument("--prior-correction", type=float, default=None,
                        help="Q-bin models: decode p / w**S, undoing S of the class rebalancing (0: as trained; "
                             "default: the checkpoint's)")
    parser.add_argument("--format", choices=sorted(OUTPUT_FORMATS), default="png", help="output file format")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that already exist (default: keep them and count them as skipped)")
    parser.add_argument("--temporal", choices=("none", "flow"), default="flow",
                        help="videos: 'flow' carries the previous frame's colours along optical flow (less flicker), "
                             "'none' colorizes each frame on its own")
    parser.add_argument(
        "--hints", default=None, metavar="JSON",
        help="user hints for a user-guided (siggraph17) model: points with a colour (see colorjax.hints)",
    )


def run(args: argparse.Namespace) -> int:
    """Colorize every input; exit 1 when any input failed (each failure is printed with its reason)."""
    if not inference_options_are_valid(args, "colorize"):
        return 2
    from colorjax.hints import load_hints
    from colorjax.inference.colorize import check_output_folder, check_outputs_spare_inputs
    from colorjax.inference.colorizer import Colorizer, NonFiniteOutputError
    from colorjax.inference.video import check_video_outputs_spare_inputs, colorize_media, find_media, is_video

    try:
        todo = find_media(args.inputs)  # fail on a missing input or an unusable --out before loading the model
        check_outputs_spare_inputs([entry for entry in todo if not is_video(entry[0])], args.out, args.format)
        check_video_outputs_spare_inputs(todo, args.out)
        check_output_folder(args.out)
        hints = None if args.hints is None else load_hints(args.hints)
        if hints is not None:
            hints.check_applies_to(path for path, _ in todo)
        colorizer = Colorizer.from_checkpoint(
            args.checkpoint, step=args.step, size=args.size, temperature=args.temperature,
            prior_correction=args.prior_correction, batch_size=args.batch_size,
        )
        if hints is not None:
            from colorjax.hints import check_takes_hints

            check_takes_hints(colorizer.model)
    except (FileNotFoundError, ValueError) as error:
        print(f"colorize: {error}", file=sys.stderr)
        return 2
    try:
        summary = colorize_media(
            colorizer, args.inputs, args.out, fmt=args.format, temporal=args.temporal, progress=not args.no_progress,
            overwrite=args.overwrite, hints=hints,
            on_error=lambda path, reason: print(f"skipped {path}: {reason}", file=sys.stderr),
        )
    except NonFiniteOutputError as error:
        print(f"colorize: {args.checkpoint}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # refused before any work (e.g. hints given with a video)
        print(f"colorize: {error}", file=sys.stderr)
        return 2
    print(f"{summary} -> {args.out}")
    return 1 if summary.failed else 0
