"""Experiment configs and scripts, importable as the package ``experiments``.

Config files are passed by path (``colorjax train --config experiments/zhang_classification.py``);
``colorjax.training.commands.load_config_file`` loads a file that sits in this package as its
module, so the configs import their siblings package-relatively (``from .scales import ...``).
Scripts run from the repository root as modules: ``python -m experiments.run_table zhang ...``.
"""
