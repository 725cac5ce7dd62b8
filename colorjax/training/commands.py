"""``colorjax train --config experiments/configs/NAME.py --workdir DIR [--resume] [--config.FIELD=VALUE ...]``.

The config file is Python with ``get_config()`` returning an ml_collections ConfigDict built from
:func:`colorjax.training.config.get_config`. ``--config.a.b=value`` overrides are parsed by
ml_collections' ``config_flags`` against that (locked) ConfigDict and unknown fields are refused,
before anything is built.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import ml_collections

OVERRIDE_PREFIX = "--config."


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """``get_config()`` of the Python file ``path``, with a clear error when it has none.

    ``FILE.py:ARG`` passes ARG to ``get_config`` (ml_collections' convention), e.g.
    ``experiments/configs/zhang_classification.py:tiny`` for a config's tiny scale.
    """
    name, separator, argument = path.partition(".py:")
    file = Path(name + ".py" if separator else name)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: config file not found")
    try:
        module = load_config_module(file)
    except SyntaxError as error:
        raise ValueError(f"{file}:{error.lineno}: syntax error in the config file: {error.msg}") from None
    except Exception as error:  # noqa: BLE001 - any failure of the user's file is reported as its own
        raise ValueError(f"{file}: the config file failed to load: {type(error).__name__}: {error}") from None
    if not hasattr(module, "get_config"):
        raise ValueError(f"{file}: a config file must define get_config() returning a ConfigDict")
    try:
        config = module.get_config(argument) if argument else module.get_config()
    except Exception as error:  # noqa: BLE001 - e.g. a bad argument, a typo in a field name
        raise ValueError(f"{file}: get_config({argument!r}) failed: {type(error).__name__}: {error}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"{file}: get_config() returned {type(config).__name__}, not an ml_collections.ConfigDict")
    return config


def load_config_module(file: Path):
    """Execute the Python file ``file`` as a module. A file inside a package folder (one with an
    ``__init__.py``, like ``experiments/configs/``) becomes that package's module (the packages
    above it loaded too: ``experiments.configs.NAME``), so that it can import its siblings
    package-relatively (``from .scales import apply_scale``) without touching sys.path."""
    folders, folder = [], file.resolve().parent
    while (folder / "__init__.py").is_file() and folder.name.isidentifier():
        folders.insert(0, folder)
        folder = folder.parent
    package_name, parent = "", None
    for folder in folders:
        package_name = f"{package_name}.{folder.name}" if package_name else folder.name
        package = sys.modules.get(package_name)
        if package is None or folder.as_posix() not in [Path(p).resolve().as_posix() for p in getattr(package, "__path__", [])]:
            spec = importlib.util.spec_from_file_location(package_name, folder / "__init__.py",
                                                          submodule_search_locations=[str(folder)])
            package = importlib.util.module_from_spec(spec)
            sys.modules[package_name] = package
            spec.loader.exec_module(package)
            if parent is not None:
                setattr(parent, folder.name, package)  # as an import binds a subpackage to its parent
        parent = package
    name = f"{package_name}.{file.stem}" if package_name else f"colorjax_experiment_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="experiment file (Python, defines get_config()); FILE.py:ARG calls get_config(ARG)")
    parser.add_argument("--workdir", required=True, help="directory for checkpoints, metrics.jsonl, TensorBoard, grids")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    parser.epilog = "Override any config field with --config.FIELD=VALUE, e.g. --config.train.num_steps=500."
    parser.set_defaults(config_overrides=[])
    _accept_overrides(parser)


def _accept_overrides(parser: argparse.ArgumentParser) -> None:
    """Collect ``--config.a.b=value`` arguments (argparse has no pattern options)."""
    parse_known = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        namespace, rest = parse_known(args, namespace)
        overrides, unknown = [], []
        for arg in rest:
            (overrides if arg.startswith(OVERRIDE_PREFIX) else unknown).append(arg)
        namespace.config_overrides = [a[len(OVERRIDE_PREFIX):] for a in overrides]
        return namespace, unknown

    parser.parse_known_args = parse_known_args


def run(args: argparse.Namespace) -> int:
    from colorjax.training import NonFiniteLossError, apply_overrides, train
    from colorjax.training.signals import TrainingInterrupted
    from colorjax.training.workdir import WorkdirBusyError

    try:
        config = apply_overrides(load_config_file(args.config), args.config_overrides)
        summary = train(config, args.workdir, resume=args.resume)
    except TrainingInterrupted as error:  # SIGTERM / SIGINT: a checkpoint at the current step, one line
        print(f"colorjax train: {error}", file=sys.stderr)
        return error.exit_code
    except (FileNotFoundError, FileExistsError, ValueError, NonFiniteLossError, WorkdirBusyError) as error:
        print(f"colorjax train: {error}", file=sys.stderr)
        return 1
    brief = {k: summary[k] for k in ("workdir", "method", "steps", "wall_time_s", "final_train_loss", "best_step")}
    brief["last_validation"] = summary["validation"][-1] if summary["validation"] else None
    print(json.dumps(brief, indent=2))
    return 0
