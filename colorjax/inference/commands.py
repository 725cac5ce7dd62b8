"""``colorjax colorize INPUT... --checkpoint DIR --out DIR``: colorize image and video files, folders and globs."""

from __future__ import annotations

import argparse
import sys

from colorjax.inference.colorize import DEFAULT_SIZE, DEFAULT_TEMPERATURE, OUTPUT_FORMATS


def inference_options_are_valid(args: argparse.Namespace, command: str) -> bool:
    """Check --size, --batch-size and --temperature (shared with ``colorjax evaluate``); say why not.
    ``None`` (not given) passes: the checkpoint's own inference defaults are used."""
    sizes = [v for v in (args.size, getattr(args, "model_size", None)) if v is not None]
    if any(v <= 0 for v in sizes) or args.batch_size <= 0 or (args.temperature is not None and args.temperature < 0):
        print(f"{command}: --size and --batch-size must be positive and --temperature >= 0", file=sys.stderr)
        return False
    return True


def resolve_inference_options(model_config: dict, size: int | None, temperature: float | None) -> tuple[int, float]:
    """``(size, temperature)``: each as given, else the checkpoint's saved default, else the paper's."""
    from colorjax.checkpointing import inference_defaults

    saved = inference_defaults(model_config)
    size = size if size is not None else saved["size"] or DEFAULT_SIZE
    temperature = temperature if temperature is not None else saved["temperature"]
    return size, DEFAULT_TEMPERATURE if temperature is None else temperature


def apply_prior_correction(model, model_config: dict, prior, strength: float | None) -> float:
    """Set a Q-bin model's rebalancing correction (:meth:`ClassificationHead.correct_for_rebalancing`):
    ``strength`` as given, else the checkpoint's saved one, else 0; returns the strength used."""
    from colorjax.checkpointing import inference_defaults

    strength = strength if strength is not None else inference_defaults(model_config)["prior_correction"] or 0.0
    if strength and model.head_kind == "classification":
        if prior is None:
            raise ValueError("a rebalancing correction needs the colour prior saved with the checkpoint")
        model.head.correct_for_rebalancing(prior.weights, strength)
    return float(strength)


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
    parser.add_argument("--batch-size", type=int, default=8, help="images per device call")
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
    from colorjax.checkpointing import load_model
    from colorjax.inference.colorize import (
        NonFiniteOutputError, check_output_folder, check_outputs_spare_inputs, check_size, checkpoint_directory,
    )
    from colorjax.inference.video import check_video_outputs_spare_inputs, colorize_media, find_media, is_video

    from colorjax.hints import check_takes_hints, load_hints

    try:
        todo = find_media(args.inputs)  # fail on a missing input or an unusable --out before loading the model
        check_outputs_spare_inputs([entry for entry in todo if not is_video(entry[0])], args.out, args.format)
        check_video_outputs_spare_inputs(todo, args.out)
        check_output_folder(args.out)
        hints = None if args.hints is None else load_hints(args.hints)
        model, model_config, prior = load_model(checkpoint_directory(args.checkpoint), args.step)
        args.size, args.temperature = resolve_inference_options(model_config, args.size, args.temperature)
        apply_prior_correction(model, model_config, prior, args.prior_correction)
        check_size(model, args.size)
        if hints is not None:
            check_takes_hints(model)
    except (FileNotFoundError, ValueError) as error:
        print(f"colorize: {error}", file=sys.stderr)
        return 2
    try:
        summary = colorize_media(
            model, args.inputs, args.out, size=args.size, temperature=args.temperature, batch_size=args.batch_size,
            fmt=args.format, temporal=args.temporal, progress=not args.no_progress, overwrite=args.overwrite, hints=hints,
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
