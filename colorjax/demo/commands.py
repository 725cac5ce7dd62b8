"""``colorjax demo --checkpoint DIR [--port N]``: a local colorization page for a checkpoint."""

from __future__ import annotations

import argparse
import logging
import sys

from colorjax.demo.engine import DEFAULT_MAX_PIXELS
from colorjax.demo.server import DEFAULT_HOST, DEFAULT_PORT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a saved model or a training workdir")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on {DEFAULT_HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: this machine only)")
    parser.add_argument("--size", type=int, default=None,
                        help="the side the model sees (default: the training crop size, else 256)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="larger uploads are refused from their header (default 50 million)")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C. A checkpoint that cannot load is reported in the log and on the page."""
    from colorjax import validation

    try:
        validation.optional(validation.count, args.size, "--size")
        validation.count(args.max_pixels, "--max-pixels")
        validation.port(args.port)
    except validation.ArgumentError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    from colorjax.demo.server import serve

    try:
        serve(args.checkpoint, host=args.host, port=args.port, step=args.step, size=args.size,
              max_pixels=args.max_pixels)
    except ImportError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
