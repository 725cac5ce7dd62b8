"""The measurements of ``device_check.py``, one function per part; each returns a JSON-able dict.

``device_check.py`` runs each part in a fresh process with a time limit (so a part that hangs,
runs out of memory or crashes costs only its own figures, and each part's peak device memory is
its own); with ``--dry-run`` they run in one process at tiny sizes on the CPU. JAX parts never
import torch, and PyTorch parts never import JAX, so neither framework's CUDA libraries or memory
pool sits beside the other's.
"""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# ---- helpers -------------------------------------------------------------------------------------

def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        if done.returncode == 0:
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("COLORJAX_COMMIT", "unknown")


def _device_memory_peak() -> float | None:
    """Peak bytes the JAX allocator has handed out on device 0 (None where it keeps no count: CPU)."""
    import jax

    stats = jax.devices()[0].memory_stats()
    return float(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _xla_memory(compiled) -> float:
    """Bytes the compiled step needs by XLA's own account: arguments, outputs and temporaries."""
    m = compiled.memory_analysis()
    return float(m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes - m.alias_size_in_bytes)


def _timed_loop(fn, repeats: int, sync) -> float:
    """Seconds per call of ``repeats`` back-to-back calls (dispatched asynchronously, synchronised once)."""
    started = time.perf_counter()
    out = None
    for _ in range(repeats):
        out = fn()
    sync(out)
    return (time.perf_counter() - started) / repeats


# ---- parts ---------------------------------------------------------------------------------------

def env() -> dict:
    """What ran: the device, the library versions, the commit."""
    import jax

    device = jax.devices()[0]
    info = {
        "device_kind": device.device_kind, "platform": device.platform, "device_count": jax.device_count(),
        "jax": jax.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "commit": _git_commit(), "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for name in ("flax", "optax", "orbax.checkpoint", "grain", "tensorflow_datasets", "torch"):
        spec = importlib.util.find_spec(name.split(".")[0])
        info[name] = None if spec is None else _version_of(name)
    return info


def _version_of(name: str) -> str | None:
    from importlib import metadata

    dist = {"orbax.checkpoint": "orbax-checkpoint", "tensorflow_datasets": "tensorflow-datasets"}.get(name, name)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def matmul_peak(size: int, repeats: int) -> dict:
    """Measured matmul rate (FLOP/s) of JAX on device 0, in float32 (the device's default
    precision: TF32 on NVIDIA GPUs since Ampere) and in bfloat16: the MFU denominators."""
    import jax
    import jax.numpy as jnp

    out = {"size": size}
    for dtype in ("float32", "bfloat16"):
        keys = jax.random.split(jax.random.key(0))
        a, b = (jax.random.normal(k, (size, size), dtype) for k in keys)
        dot = jax.jit(jnp.dot)
        dot(a, b).block_until_ready()
        seconds = min(_timed_loop(lambda: dot(a, b), repeats, jax.block_until_ready) for _ in range(3))
        out[dtype] = 2 * size**3 / seconds
    return out


def train_step(model: str, size: int, batch: int, width: float, dtype: str, repeats: int) -> dict:
    """The library's jitted training step (as ``colorjax train`` runs it) on one fixed batch:
    compile time, seconds per step, model FLOPs (XLA's count with direct convolutions), memory."""
    import jax

    from benchmarks.bench_models import jax_case

    train, state, _, _, rgb, _ = jax_case(model, size, batch, width, dtype)
    started = time.perf_counter()
    compiled = train.lower(state, rgb).compile()
    compile_s = time.perf_counter() - started
    flops = float(train.model_flops(state, rgb))  # with direct convolutions (jax_case)
    holder = {"state": state}

    def step():
        with jax.transfer_guard("disallow"):  # no hidden host round trip inside the step
            holder["state"], metrics = compiled(holder["state"], rgb)
        return metrics

    losses = [float(jax.device_get(step()["loss"])) for _ in range(2)]  # warm-up
    step_s = min(_timed_loop(step, repeats, jax.block_until_ready) for _ in range(2))
    last = float(jax.device_get(step()["loss"]))
    if not all(math.isfinite(v) for v in [*losses, last]):
        raise RuntimeError(f"{model} {size} px x {batch} {dtype}: non-finite loss {losses + [last]}")
    return {
        "model": model, "size": size, "batch": batch, "width": width, "dtype": dtype, "compile_s": compile_s,
        "step_s": step_s, "images_per_s": batch / step_s, "flops_per_step": flops,
        "peak_device_bytes": _device_memory_peak(), "xla_bytes": _xla_memory(compiled), "loss": last,
    }


def inference(size: int, batches: list[int], width: float, dtype: str, repeats: int) -> dict:
    """Latency of ECCV16's evaluation-mode prediction (L to ab, as ``colorjax colorize`` runs the
    model) for each batch size: median of ``repeats`` synchronised calls."""

    from benchmarks.bench_models import jax_case

    rows = []
    for batch in batches:
        _, state, make_infer, L, _, _ = jax_case("eccv16", size, batch, width, dtype)
        infer, model_state = make_infer(state)
        started = time.perf_counter()
        compiled = infer.lower(model_state, L).compile()
        compile_s = time.perf_counter() - started
        compiled(model_state, L).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compiled(model_state, L).block_until_ready()
            times.append(time.perf_counter() - t0)
        latency = statistics.median(times)
        rows.append({"size": size, "batch": batch, "dtype": dtype, "latency_ms": 1e3 * latency,
                     "images_per_s": batch / latency, "compile_s": compile_s})
    return {"rows": rows, "peak_device_bytes": _device_memory_peak()}


def torch_step(size: int, batch: int, width: float, dtypes: list[str], mode: str, repeats: int,
               compile_backend: str = "inductor") -> dict:
    """PyTorch's same-work ECCV16 Q-bin step (``bench_torch.py``) on this machine's GPU (else CPU),
    eager or under ``torch.compile``, float32 and bfloat16 autocast: seconds per step, the first
    call's time (compilation), peak memory."""
    import torch

    from benchmarks import bench_torch
    from colorjax.bins import zhang_bins

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)  # a dry run beside other work: OpenMP's spinning threads would stall it
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as XLA's default
        torch.backends.cudnn.benchmark = True
    sync = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    centres = zhang_bins()
    weights = np.random.default_rng(0).gamma(2.0, 0.5, len(centres)).astype(np.float32)
    rgb = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (batch, size, size, 3), np.uint8)).to(device)
    rows = []
    for dtype in dtypes:
        ref = bench_torch.ECCV16Classification(centres, weights, width=width, device=device)
        if mode == "compile":
            ref.compile(backend=compile_backend)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

        def step():
            with autocast:
                return ref.train_step(rgb)

        started = time.perf_counter()
        first = step()
        sync(first)
        first_s = time.perf_counter() - started
        step()
        step_s = min(_timed_loop(step, repeats, sync) for _ in range(2))
        loss = float(step().detach().cpu())
        rows.append({"size": size, "batch": batch, "dtype": dtype, "mode": mode, "step_s": step_s,
                     "images_per_s": batch / step_s, "first_call_s": first_s, "loss": loss,
                     "peak_device_bytes": float(torch.cuda.max_memory_allocated()) if device == "cuda" else None})
    return {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
            "rows": rows}


def pytest_run(tests: list[str], timeout_s: float, collect_only: bool = False) -> dict:
    """The listed tests, run with pytest on this machine's default JAX device; children that the
    resume test starts use it too (``COLORJAX_TEST_CHILD_PLATFORMS``)."""
    env = {**os.environ, "COLORJAX_TEST_CHILD_PLATFORMS": os.environ.get("COLORJAX_TEST_CHILD_PLATFORMS", ""),
           "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # the resume test's children share the device
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # -m "": the listed tests whether or not they are marked slow (the default run leaves those out)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "",
               *(["--collect-only"] if collect_only else []), *tests]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    counts = {}
    for word in ("passed", "failed", "skipped", "error", "errors", "tests collected"):
        for part in summary.replace(",", " ,").split(","):
            tokens = part.split()
            if len(tokens) >= 2 and " ".join(tokens[1:]).startswith(word) and tokens[0].isdigit():
                counts[word] = int(tokens[0])
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {"tests": tests, "returncode": done.returncode, "summary": summary, "counts": counts,
            "failures": failures, "seconds": time.perf_counter() - started,
            "tail": (done.stdout + done.stderr)[-3000:] if done.returncode else ""}


# ---- the real run --------------------------------------------------------------------------------

def real_run(config_file: str, overrides: list[str], seconds: float, compare_seconds: float,
             window: float = 0.2) -> dict:
    """A training config with the real input pipeline, first in bfloat16 for ``seconds``, then in
    float32 for as many steps (at most ``compare_seconds``), from the same initial state, prior and
    data order: images/s, the input stall, a falling loss, and bfloat16 against float32.

    Stall = 1 - (seconds per step on one batch already on the device) / (seconds per step fed by
    the loader): the slowdown that the input pipeline causes, as ``bench_stall.py`` defines it."""

    from colorjax.training import apply_overrides, parallel, trainer
    from colorjax.training.commands import load_config_file

    config = apply_overrides(load_config_file(config_file), overrides)
    mesh = parallel.data_mesh()
    stride, _ = trainer.check_model(trainer.model_factory(trainer.model_config_of(config), config.seed), config.data.crop_size)
    make_iterator = lambda: iter(trainer.loader(config, config.data.train_split, train=True,  # noqa: E731
                                                batch_size=config.data.batch_size))
    started = time.perf_counter()
    centres, prior = trainer.bins_and_prior(config, make_iterator, mesh, stride)
    prior_s = time.perf_counter() - started
    runs = {}
    runs["bfloat16"] = _timed_run(config, "bfloat16", centres, prior, make_iterator, mesh, seconds, None)
    runs["float32"] = _timed_run(config, "float32", centres, prior, make_iterator, mesh, compare_seconds,
                                 runs["bfloat16"]["steps"])
    out = {"config": config_file, "overrides": overrides, "spec": config.data.spec, "crop_size": config.data.crop_size,
           "batch_size": config.data.batch_size, "width": config.model.width, "workers": config.data.worker_count,
           "prior_s": prior_s, "runs": {k: {n: v for n, v in r.items() if n != "losses"} for k, r in runs.items()}}
    out["comparison"] = compare_curves(runs["bfloat16"]["losses"], runs["float32"]["losses"], window)
    out["curves"] = {k: _thin(r["losses"], 50) for k, r in runs.items()}
    return out


def _thin(values: list[float], points: int) -> list[list[float]]:
    """``[step, mean loss]`` over ``points`` equal segments of the curve."""
    chunks = np.array_split(np.asarray(values), min(points, len(values)))
    steps = np.cumsum([len(c) for c in chunks])
    return [[int(s), float(c.mean())] for s, c in zip(steps, chunks)]


def compare_curves(bf16: list[float], f32: list[float], window: float = 0.2) -> dict:
    """bfloat16 against float32 over their common steps: the mean loss of the last ``window`` of
    them, and the scatter (standard deviation) of float32's per-step losses there; the two follow
    each other within noise when the gap of the means is below that scatter."""
    n = min(len(bf16), len(f32))
    width = max(1, int(n * window))
    a, b = np.asarray(bf16[n - width:n]), np.asarray(f32[n - width:n])
    noise = float(b.std()) if width > 1 else float("nan")
    gap = float(a.mean() - b.mean())
    return {"common_steps": n, "window_steps": width, "bf16_mean": float(a.mean()), "f32_mean": float(b.mean()),
            "gap": gap, "f32_noise_std": noise, "within_noise": bool(abs(gap) <= noise)}


def _timed_run(config, dtype, centres, prior, make_iterator, mesh, seconds, max_steps) -> dict:
    import jax
    import ml_collections

    from colorjax.training import parallel, trainer

    config = ml_collections.ConfigDict(config.to_dict())
    config.train.compute_dtype = dtype
    model_config = trainer.model_config_of(config, centres)
    model_fn = trainer.model_factory(model_config, config.seed)
    stride, _ = trainer.check_model(model_fn, config.data.crop_size, config.data.batch_size // jax.device_count())
    built = trainer.training_steps(config, model_config, prior, stride, config.train.num_steps, mesh)
    state, step_fn = built.state, built.fns[trainer.phase(config, 0)]
    iterator = make_iterator()
    first = parallel.global_batch(next(iterator), mesh)
    t0 = time.perf_counter()
    state, metrics = step_fn(state, first)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    losses, waited, steps = [metrics["loss"]], 0.0, 1
    limit = max_steps or float("inf")
    started = time.perf_counter()
    while steps < limit and time.perf_counter() - started < seconds:
        fetch = time.perf_counter()
        host = next(iterator)
        waited += time.perf_counter() - fetch
        state, metrics = step_fn(state, parallel.global_batch(host, mesh))
        losses.append(metrics["loss"])
        steps += 1
        if steps > 8:
            losses[-8].block_until_ready()  # at most 8 steps in flight, as a real loop's logging keeps it
    jax.block_until_ready(losses)
    pipelined_s = (time.perf_counter() - started) / max(1, steps - 1)
    compute_steps = max(2, min(steps // 4, 200))
    holder = {"state": state}

    def fixed_step():
        holder["state"], m = step_fn(holder["state"], first)
        return m

    compute_s = _timed_loop(fixed_step, compute_steps, jax.block_until_ready)
    iterator.close() if hasattr(iterator, "close") else None
    values = [float(v) for v in jax.device_get(losses)]
    tenth = max(1, len(values) // 10)
    first_mean, last_mean = float(np.mean(values[:tenth])), float(np.mean(values[-tenth:]))
    return {
        "dtype": dtype, "steps": steps, "compile_s": compile_s, "pipelined_step_s": pipelined_s,
        "compute_only_step_s": compute_s, "images_per_s": config.data.batch_size / pipelined_s,
        "stall": max(0.0, 1 - compute_s / pipelined_s), "time_in_next": waited / (pipelined_s * max(1, steps - 1)),
        "loss_first_tenth": first_mean, "loss_last_tenth": last_mean, "loss_fell": last_mean < first_mean,
        "finite": all(math.isfinite(v) for v in values), "peak_device_bytes": _device_memory_peak(),
        "losses": values,
    }
