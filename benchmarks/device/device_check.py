"""The accelerator check: correctness tests, training and inference speed, PyTorch beside it, and
a real training run, in one command with a time budget; writes ``device_check.json`` and
``device_check.md`` into the output folder.

On a GPU machine (the wheels and the data copy made beforehand by ``prepare_device.py``)::

    bash benchmarks/device/device_check.sh OUT_DIR        # installs the wheels offline, then runs this

or, where colorjax and its dependencies are importable already::

    python -m benchmarks.device.device_check --out OUT_DIR [--data .devdata] [--budget-s 450] [--only a,b]

On any machine, in seconds, at tiny sizes on the CPU (the test suite runs this)::

    python -m benchmarks.device.device_check --dry-run --out /tmp/dc

Parts, in order of priority (each in a fresh process with its own time limit; one that fails or
runs out of time is recorded with its error, and the rest still run; when the budget runs short
the remaining parts are recorded as skipped):

1. ``env``: device, versions, commit, date;
2. ``peak``: the device's measured matmul rate in float32 and bfloat16 (the MFU denominators);
3. ``eccv16_*``: the ECCV16 Q-bin training step at Zhang et al.'s 176 px x 40 and at 256 px x 32, in
   float32 and bfloat16: images/s, step time, MFU, peak device memory, compile time;
4. ``tests``: the bfloat16, remat, loss and resume tests on this device (pytest);
5. ``real_run``: a training config (default ``experiments/configs/imagenet_samples_classification.py`` at
   full width, on the carried data) with the real input pipeline: images/s, stall, falling loss,
   bfloat16 against float32;
6. ``torch_eager`` and ``torch_compile``: PyTorch's same-work step (``bench_torch.py``) at 176 x 40;
7. ``pix2pix_*``: the pix2pix step at 256 px x 1 and x 16;
8. ``inference``: ECCV16 prediction latency at 256 px, batch 1 and 32.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Tests whose numbers depend on the device's arithmetic: bfloat16 against float32, rematerialised
# against plain steps, the first loss against numpy, bitwise resume after SIGKILL (its children on
# this device too). The 8-device sharding tests force 8 host devices, so they run on the CPU only.
DEVICE_TESTS = [
    "tests/test_training_precision.py",
    "tests/test_training_remat.py",
    "tests/test_training_methods.py::test_classification_first_loss_and_prior_match_numpy",
    "tests/test_training_methods.py::test_pix2pix_trains_with_alternating_updates",
    "tests/test_training_resume.py::test_sigkill_then_resume_gives_the_same_losses",
]
REAL_CONFIG = "experiments/configs/imagenet_samples_classification.py"
# The carried data copy (prepare_device.py data): part of tiny-imagenet-64's train split.
DATA_NAME = "tiny_imagenet_64"
# The real run: full width, grain workers for a 16-core host, a schedule long enough to stay near
# the peak learning rate for the few thousand steps of a short run.
REAL_OVERRIDES = ["model.width=1.0", "data.worker_count=4", "train.num_steps=20000", "train.progress_bar=false"]


clock = time.monotonic  # the budget's clock (a test replaces it)


def plan(args) -> list[tuple[str, float, str, dict]]:
    """``(part name, time limit s, device_parts function, keyword arguments)`` in priority order.

    A dry run keeps every function and the report but runs each kind of case once, at 16 px with
    1/32-width networks (seconds each on a CPU)."""
    dry = args.dry_run
    width, repeats = (1 / 32, 2) if dry else (1.0, 20)
    parts = [("env", 60, "env", {}),
             ("peak", 60, "matmul_peak", {"size": 128 if dry else 8192, "repeats": 2 if dry else 10})]
    eccv = [("176x40", 176, 40, "bfloat16"), ("176x40", 176, 40, "float32"),
            ("256x32", 256, 32, "bfloat16"), ("256x32", 256, 32, "float32")]
    for label, size, batch, dtype in eccv[:1] if dry else eccv:
        parts.append((f"eccv16_{label}_{dtype}", 90, "train_step",
                      {"model": "eccv16", "size": 16 if dry else size, "batch": 2 if dry else batch, "width": width,
                       "dtype": dtype, "repeats": repeats}))
    parts.append(("tests", 150, "pytest_run", {"tests": DEVICE_TESTS, "timeout_s": 145, "collect_only": dry}))
    data = args.data or (None if dry else str(REPO / ".devdata"))
    overrides = list(REAL_OVERRIDES) + (["model.width=0.03125", "data.batch_size=2", "data.worker_count=0",
                                         "prior.images=4", "data.crop_size=16"] if dry else [])
    overrides += [f"data.spec={DATA_NAME}", f"data.data_dir={data}"] if data else ["data.spec=embedded"]
    overrides += args.real_override
    parts.append(("real_run", 240, "real_run", {"config_file": args.config, "overrides": overrides,
                                               "seconds": 1 if dry else args.real_seconds,
                                               "compare_seconds": 1 if dry else args.real_seconds * 0.6}))
    for mode, limit in (("eager", 60), ("compile", 180)):
        parts.append((f"torch_{mode}", limit, "torch_step",
                      {"size": 16 if dry else 176, "batch": 2 if dry else 40, "width": width,
                       "dtypes": ["float32"] if dry else ["bfloat16", "float32"], "mode": mode, "repeats": repeats,
                       "compile_backend": "aot_eager" if dry else "inductor"}))
    for label, batch in (("256x1", 1),) if dry else (("256x1", 1), ("256x16", 16)):
        parts.append((f"pix2pix_{label}", 90, "train_step",
                      {"model": "pix2pix", "size": 32 if dry else 256, "batch": batch, "width": width,
                       "dtype": "float32", "repeats": repeats}))
    parts.append(("inference", 90, "inference", {"size": 16 if dry else 256, "batches": [2] if dry else [1, 32],
                                                 "width": width, "dtype": "float32", "repeats": 3 if dry else 20}))
    if args.only:
        wanted = args.only.split(",")
        parts = [p for p in parts if any(p[0] == w or p[0].startswith(w + "_") for w in wanted)]
    return parts


def run_part_in_process(function: str, kwargs: dict) -> dict:
    from benchmarks.device import device_parts

    return getattr(device_parts, function)(**kwargs)


def run_part_in_child(function: str, kwargs: dict, limit: float) -> dict:
    """``function(**kwargs)`` in a fresh interpreter, killed after ``limit`` seconds."""
    command = [sys.executable, "-m", "benchmarks.device.device_check", "--child", json.dumps({"function": function, "kwargs": kwargs})]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as error:
        tail = (error.stderr or b"")[-1500:]
        raise TimeoutError(f"no result within {limit:.0f} s; stderr tail: "
                           f"{tail.decode(errors='replace') if isinstance(tail, bytes) else tail}") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"exit code {done.returncode}; stderr tail:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def child_main(payload: str) -> None:
    request = json.loads(payload)
    result = run_part_in_process(request["function"], request["kwargs"])
    print("RESULT " + json.dumps(result), flush=True)


def run_all(args) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"dry_run": args.dry_run, "budget_s": args.budget_s, "parts": {}}
    deadline = clock() + args.budget_s
    in_process = args.dry_run and not args.subprocess
    for name, limit, function, kwargs in plan(args):
        left = deadline - clock()
        entry = {"function": function, "kwargs": kwargs, "limit_s": limit}
        if left < min(limit, 20):
            entry.update(status="skipped", error=f"budget: {left:.0f} s left of {args.budget_s:.0f}")
        else:
            started = time.perf_counter()
            try:
                result = (run_part_in_process(function, kwargs) if in_process
                          else run_part_in_child(function, kwargs, min(limit, left)))
                entry.update(status="ok", result=result)
            except Exception as error:  # noqa: BLE001 - one part's failure is a finding, not the end
                entry.update(status="failed", error=f"{type(error).__name__}: {error}"[-4000:],
                             traceback=traceback.format_exc()[-2000:] if in_process else None)
            entry["seconds"] = time.perf_counter() - started
        report["parts"][name] = entry
        print(f"[device_check] {name}: {entry['status']} ({entry.get('seconds', 0):.1f} s)"
              + (f" {entry['error'][:300]}" if "error" in entry else ""), flush=True)
        write_outputs(report, out)  # after every part: a killed run still leaves what it measured
    report["finished"] = True
    write_outputs(report, out)
    return report


def write_outputs(report: dict, out: Path) -> None:
    from benchmarks.device import device_report

    report["summary"] = device_report.summary(report)
    (out / "device_check.json").write_text(json.dumps(report, indent=1))
    (out / "device_check.md").write_text(device_report.markdown(report))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for device_check.json and device_check.md")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU, in seconds")
    parser.add_argument("--subprocess", action="store_true", help="with --dry-run: each part in its own process too")
    parser.add_argument("--data", default=None, help=f"TFDS data dir holding {DATA_NAME} (default: .devdata; "
                        "dry run: the embedded photos)")
    parser.add_argument("--config", default=REAL_CONFIG, help="training config of the real run (FILE.py[:ARG])")
    parser.add_argument("--real-override", action="append", default=[], metavar="FIELD=VALUE",
                        help="extra config override for the real run (repeatable)")
    parser.add_argument("--real-seconds", type=float, default=100.0,
                        help="bfloat16 real run length; float32 then runs as many steps, at most 0.6 of this")
    parser.add_argument("--budget-s", type=float, default=420.0, help="all parts together, s (default 420: 8 minutes with the install)")
    parser.add_argument("--only", default=None, help="comma-separated part names or prefixes (eccv16, torch, ...)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    if not args.out:
        parser.error("--out is required")
    if args.dry_run:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    report = run_all(args)
    failed = [n for n, p in report["parts"].items() if p["status"] != "ok"]
    print(f"[device_check] wrote {args.out}/device_check.json and .md; not ok: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
