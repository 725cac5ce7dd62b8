"""``colorjax colorize INPUT... --checkpoint DIR --out DIR``: colorize files, folders and globs."""

from __future__ import annotations

import argparse
import sys

from colorjax.inference.colorize import DEFAULT_SIZE, DEFAULT_TEMPERATURE, OUTPUT_FORMATS


def inference_options_are_valid(args: argparse.Namespace, command: str) -> bool:
    """Check --size, --batch-size and --temperature (shared with ``colorjax evaluate``); say why not."""
    if args.size <= 0 or args.batch_size <= 0 or args.temperature < 0:
        print(f"{command}: --size and --batch-size must be positive and --temperature >= 0", file=sys.stderr)
        return False
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) or glob patterns")
    parser.add_argument("--checkpoint", required=True, help="a saved model or a training workdir")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument(
        "--temperature", type=float, default=DEFAULT_TEMPERATURE,
        help="annealed-mean temperature for Q-bin models: 1 = mean (dull), 0 = mode (vivid); paper default 0.38",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="the side the model sees (paper: 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per device call")
    parser.add_argument("--format", choices=sorted(OUTPUT_FORMATS), default="png", help="output file format")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--hints", default=None, metavar="JSON",
        help="user hints for a user-guided (siggraph17) model: points with a colour (see colorjax.hints)",
    )


def run(args: argparse.Namespace) -> int:
    """Colorize every input; exit 1 when any input failed (each failure is printed with its reason)."""
    if not inference_options_are_valid(args, "colorize"):
        return 2
    from colorjax.checkpointing import load_model
    from colorjax.inference.colorize import check_size, checkpoint_directory, colorize_files, find_images

    from colorjax.hints import check_takes_hints, load_hints

    try:
        find_images(args.inputs)  # fail on a missing input before loading the model
        hints = None if args.hints is None else load_hints(args.hints)
        model, _, _ = load_model(checkpoint_directory(args.checkpoint), args.step)
        check_size(model, args.size)
        if hints is not None:
            check_takes_hints(model)
    except (FileNotFoundError, ValueError) as error:
        print(f"colorize: {error}", file=sys.stderr)
        return 2
    summary = colorize_files(
        model, args.inputs, args.out, size=args.size, temperature=args.temperature, batch_size=args.batch_size,
        fmt=args.format, progress=not args.no_progress, hints=hints,
        on_error=lambda path, reason: print(f"skipped {path}: {reason}", file=sys.stderr),
    )
    print(f"{summary} -> {args.out}")
    return 1 if summary.failed else 0
