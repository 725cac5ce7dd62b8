"""``colorjax convert eccv16|siggraph17|vgg16 FILE.pth --out DIR``: PyTorch weights to an orbax checkpoint.

The ECCV16 and SIGGRAPH17 checkpoints load with :func:`colorjax.checkpointing.load_model` (and so with
``colorjax colorize``); the VGG16 one with :func:`colorjax.checkpointing.load_vgg16`.
"""

from __future__ import annotations

import argparse
import os
import sys

from colorjax.models.vgg16 import PERCEPTUAL_LAYERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=("eccv16", "siggraph17", "vgg16"), help="which network the file holds")
    parser.add_argument("file", help="PyTorch .pth state dict (read without torch, tensors only)")
    parser.add_argument("--out", required=True, help="new (or empty) directory for the orbax checkpoint")
    parser.add_argument(
        "--layers", nargs="+", default=list(PERCEPTUAL_LAYERS),
        help="vgg16: the layers the feature extractor returns (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from colorjax.convert.mapping import ConversionError, check_state_dict
    from colorjax.convert.pth_reader import PthError, load_pth

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        print(f"colorjax convert: {args.out}: --out is a file; give a new (or empty) directory", file=sys.stderr)
        return 2
    if os.path.isdir(args.out) and os.listdir(args.out):
        print(f"colorjax convert: {args.out}: output directory is not empty", file=sys.stderr)
        return 2
    if args.network == "vgg16":
        from colorjax.models.vgg16 import check_layer_names

        try:
            check_layer_names(args.layers)
        except ValueError as error:
            print(f"colorjax convert: --layers: {error}", file=sys.stderr)
            return 2
    try:
        state = load_pth(args.file)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        summary = _convert(args, check_state_dict(state, args.file))
    except (PthError, ConversionError, FileNotFoundError) as error:
        print(f"colorjax convert: {error}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, KeyError, IndexError) as error:  # a readable file the converter cannot use
        print(f"colorjax convert: {args.file}: not a usable {args.network} state dict "
              f"({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {summary}")
    return 0


def _convert(args: argparse.Namespace, state: dict) -> str:
    import jax
    import numpy as np
    from flax import nnx

    if args.network in ("eccv16", "siggraph17"):
        from colorjax.checkpointing import INFERENCE, save_model
        from colorjax.convert.eccv16 import convert_eccv16
        from colorjax.convert.siggraph17 import convert_siggraph17

        convert = convert_eccv16 if args.network == "eccv16" else convert_siggraph17
        model, config, report = convert(state, args.file)
        if config.get("release_projection"):
            # Decode by default exactly as the PyTorch release does: 110 * softmax(logits) @ model_out,
            # at T = 1 relative to its own logits, whether or not Caffe's 2.606 scale was folded in.
            config = {**config, INFERENCE: {"temperature": 1.0, "decoding": "release"}}
        save_model(args.out, model, config)
    else:
        from colorjax.convert.vgg16 import convert_vgg16
        from colorjax.checkpointing import save_vgg16

        model, width = convert_vgg16(state, args.file, layers=args.layers)
        save_vgg16(args.out, model, width)
        report = {"width": width, "layers": list(model.layers)}
    count = int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
    return ", ".join(f"{key} {value}" for key, value in {"parameters": count, **report}.items())
