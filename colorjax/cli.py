"""The ``colorjax`` command line: one subcommand per task, each owned by the module that does it.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when its subcommand runs, so ``colorjax --help`` stays fast and a subcommand's heavy imports
(jax, tfds) are paid only by the commands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import os
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


# glibc's malloc backing its large blocks with transparent huge pages (glibc >= 2.35; older glibc and
# other C libraries ignore it): XLA's per-step temporaries then fault in 2 MiB at a time. On a 2-core
# EPYC the CPU recipe trains at 84-92 images/s with it and 72-76 without (docs/cpu_colorizer.md).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
NO_HUGE_PAGES = "COLORJAX_NO_HUGE_PAGES"  # set to 1 to run with the C library's defaults


def console() -> None:
    """The installed ``colorjax`` command: :func:`main` in a process started with huge pages for
    malloc (:data:`HUGE_PAGES_TUNABLE`). The tunable is read only when a process starts, so the
    command starts itself once more with it set, unless it is set already or :data:`NO_HUGE_PAGES`
    is; :func:`main` itself (the Python API's way in) never starts a process."""
    restart_with_huge_pages()
    sys.exit(main())


def restart_with_huge_pages() -> None:
    """Replace this process with ``python -m colorjax.cli ARGS`` and the tunable added to
    ``GLIBC_TUNABLES``; returns when that is not wanted (already set, opted out, not Linux) or not
    possible."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if sys.platform != "linux" or "glibc.malloc.hugetlb" in tunables or os.environ.get(NO_HUGE_PAGES, "0") != "0":
        return
    env = {**os.environ, "GLIBC_TUNABLES": ":".join(filter(None, [tunables, HUGE_PAGES_TUNABLE]))}
    try:
        os.execve(sys.executable, [sys.executable, "-m", "colorjax.cli", *sys.argv[1:]], env)
    except OSError:
        return


if __name__ == "__main__":
    sys.exit(main())
