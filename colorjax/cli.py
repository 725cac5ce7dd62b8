"""The ``colorjax`` command line: one subcommand per task, each owned by the module that does it.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``colorjax --help`` stays fast and a subcommand's heavy imports
(jax, tfds) are paid only by the commands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module that owns it, one-line help)
SUBCOMMANDS = {
    "data": ("colorjax.data.commands", "build, convert and inspect datasets"),
    "convert": ("colorjax.convert.commands", "convert PyTorch weights (ECCV16, SIGGRAPH17, VGG16) to orbax"),
    "train": ("colorjax.training.commands", "train a model from an experiment config"),
    "colorize": ("colorjax.inference.commands", "colorize images, folders and globs (with --hints: user-guided)"),
    "evaluate": ("colorjax.evaluation.commands", "evaluate a checkpoint or a baseline on a dataset"),
    "table": ("colorjax.evaluation.tables", "write the papers' tables from checkpoints"),
    "demo": ("colorjax.demo.commands", "serve a local colorization page for a checkpoint"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, str | None]:
    parser = argparse.ArgumentParser(prog="colorjax", description="Automatic image colorization in JAX.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # import only the module of the subcommand that runs
            importlib.import_module(module_name).add_arguments(sub_parser)
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, chosen = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module_name = SUBCOMMANDS[args.command][0]
    return int(importlib.import_module(module_name).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
