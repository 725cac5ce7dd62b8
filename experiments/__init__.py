"""Experiments, importable as the package ``experiments``.

- ``experiments/configs/``: training configs (paper rows, recipes), passed by path
  (``colorjax train --config experiments/configs/zhang_classification.py``).
- ``experiments/*.py``: table runners, reports and diagnostics, run from the repository root as
  modules (``python -m experiments.run_table zhang ...``).

Benchmarks and the device tools live in ``benchmarks/``; the PyTorch reference that makes the test
fixtures in ``tests/fixtures/``.
"""
