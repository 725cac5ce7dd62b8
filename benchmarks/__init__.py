"""Speed benchmarks, run from the repository root as modules (``python -m benchmarks.bench_models``);
``benchmarks/README.md`` lists them and their results. ``benchmarks/device/``: the accelerator check."""
