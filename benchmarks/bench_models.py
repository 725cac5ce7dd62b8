"""Training throughput and inference latency of ECCV16 (Q-bin head) and pix2pix, colorjax (JAX)
against PyTorch eager, measured side by side in one run (not a test).

    python -m benchmarks.bench_models [--quick] [--grid 64x1,64x4,...] [--repeats 3]
        [--conv-algorithm auto|direct|winograd] [--no-hugepages] [--compute-dtype bfloat16]

For each model, crop size and batch size: the library's own jitted training step (the one
``colorjax train`` runs: uint8 RGB in, Lab conversion, gray mask, soft-encoding and rebalancing
inside the step, state donated) and the same work in PyTorch (``bench_torch.py``), each framework in
a fresh process per case (see :func:`in_subprocess`), one warm-up step then ``--repeats`` timed
steps each, median; inference (evaluation mode, L to ab at the output resolution) likewise.

Also: XLA compile time; the train step's model FLOPs from XLA's cost analysis of the step with
direct convolutions (Winograd layers do fewer multiplications for the same model, so MFU counts the
model's); model FLOP utilisation against the measured peak of a float32 matmul on the same device
(the faster of JAX's and PyTorch's); the peak resident memory above the resident state during the
timed steps (after ``malloc_trim``), for both; and the share of the JAX step that its fused
preprocessing (Lab conversion, gray mask, and for the Q-bin head soft-encoding and rebalancing
weights) would take alone. Every steady-state JAX step runs under ``jax.transfer_guard("disallow")``:
a hidden host transfer inside the step fails the run. Ratios are JAX / PyTorch (> 1: JAX faster).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import platform
import json
import re
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from colorjax.bins import soft_encode, zhang_bins
from colorjax.models import layers, winograd
from colorjax.prior import ColourPrior
from colorjax.training import config as config_lib
from colorjax.training import losses, parallel, precision, steps, trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the worker runs as a module from here

DEFAULT_GRID = "64x1,64x4,64x16,128x4,256x1"
QUICK_GRID = "64x1,64x8,128x4"
MATMUL_SIZE = 4096
_LIBC = ctypes.CDLL("libc.so.6")


# ---- measurement helpers -------------------------------------------------------------------------

def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def measure(fn, repeats: int) -> tuple[float, float]:
    """``(median seconds per call, peak RSS MiB above the resident baseline)`` after one warm-up."""
    fn()
    gc.collect()
    _LIBC.malloc_trim(0)  # return freed heap to the OS, so the timed calls' allocations show in RSS
    baseline = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), (_rss_kib("VmHWM") - baseline) / 1024


def matmul_peak(framework: str, repeats: int = 5) -> float:
    """Measured float32 matmul rate (FLOP/s) of ``framework`` (jax or torch) on this device."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE), np.float32) for _ in range(2))
    if framework == "jax":
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        dot = jax.jit(jnp.dot)
        seconds, _ = measure(lambda: dot(ja, jb).block_until_ready(), repeats)
    else:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        seconds, _ = measure(lambda: torch.mm(ta, tb), repeats)
    return 2 * MATMUL_SIZE**3 / seconds


def _compile(fn, *args):
    started = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - started


def _memory_mib(compiled) -> float:
    stats = compiled.memory_analysis()
    return (stats.temp_size_in_bytes + stats.output_size_in_bytes + stats.argument_size_in_bytes
            - stats.alias_size_in_bytes) / 2**20


# ---- the two models, JAX side --------------------------------------------------------------------

def _flops(analysis) -> float:
    """FLOPs from a cost analysis: a dict, or (some jax versions and backends) a list of one dict."""
    return float((analysis[0] if isinstance(analysis, (list, tuple)) else analysis)["flops"])


def _prior(centres: np.ndarray) -> ColourPrior:
    """A non-uniform prior (random counts), so that no rebalancing weight folds into a constant."""
    counts = np.random.default_rng(0).gamma(0.5, 1.0, len(centres)).astype(np.float32) + 1e-3
    return ColourPrior.from_counts(counts, centres)


def model_config(model: str, size: int, width: float, compute_dtype: str | None = None, conv_algorithm: str = "auto"):
    """The training config of a benchmark case (Zhang's classifier, or pix2pix at ``size``)."""
    config = config_lib.get_config()
    config.data.crop_size = size
    config.model.conv_algorithm = conv_algorithm
    config.model.width = config.discriminator.width = width
    if model == "pix2pix":
        config.method, config.model.backbone, config.model.head = "pix2pix", "pix2pix", "regression"
        config.model.options.num_downs = int(math.log2(size))  # innermost level at 1 x 1, as unet_256
        config.optim.learning_rate, config.optim.b1, config.optim.b2 = 2e-4, 0.5, 0.999
        config.optim.weight_decay = 0.0
    if compute_dtype is not None:
        config.train.compute_dtype = compute_dtype
    return config


def jax_case(model: str, size: int, batch: int, width: float, compute_dtype: str | None = None,
             conv_algorithm: str = "auto"):
    """``(train step, initial state, inference-model maker, L batch, rgb batch, objective)`` for one
    case, its 3 x 3 layers running ``conv_algorithm``; ``make_infer(state)`` gives ``(jitted fn, its
    model state)``, the model prepared as ``colorjax colorize`` prepares it
    (:func:`colorjax.models.layers.for_inference`)."""
    config = model_config(model, size, width, compute_dtype, conv_algorithm)
    mesh = parallel.data_mesh()
    centres = zhang_bins() if model == "eccv16" else None
    mconf = trainer.model_config_of(config, centres)
    stride, _ = trainer.check_model(trainer.model_factory(mconf, config.seed), size, batch)
    prior = None if centres is None else _prior(centres)
    built = trainer.training_steps(config, mconf, prior, stride, 1000, mesh)
    modules, state, objective, phase = built.modules, built.state, built.objective, trainer.phase(config, 0)
    train = built.fns[phase]
    # The model's FLOPs: XLA's count for the same step and state with every convolution direct
    # (Winograd does fewer multiplications for the same model; MFU counts the model's).
    direct = model_config(model, size, width, compute_dtype, "direct")

    def model_flops(state, batch):
        steps_direct = trainer.training_steps(direct, trainer.model_config_of(direct, centres), prior, stride, 1000, mesh)
        return _flops(steps_direct.fns[phase].lower(state, batch).cost_analysis())

    train.model_flops = model_flops

    def make_infer(state):
        # copies: the training step donates (deletes) the state's buffers
        params, rest = jax.tree.map(jnp.copy, (state["params"], state["rest"]))
        if compute_dtype == "bfloat16":
            params = precision.cast_floating(params, jnp.bfloat16)
        graphdef, model_state = nnx.split(layers.for_inference(nnx.merge(modules.eval, params, rest, copy=True)))

        def infer(model_state, L):
            if compute_dtype == "bfloat16":
                L = L.astype(jnp.bfloat16)
            return nnx.merge(graphdef, model_state).predict_ab(L).astype(jnp.float32)

        return jax.jit(infer), model_state

    rgb, L = _inputs(size, batch)
    rgb, L = parallel.global_batch({"rgb": rgb}, mesh), jax.device_put(L, parallel.batch_sharded(mesh))
    return train, state, make_infer, L, rgb, objective


def preprocessing(objective: steps.Objective):
    """The part of the step before the network: Lab, gray mask, and for the Q-bin head the target
    on the output grid, its soft-encoding and rebalancing weights (timed alone for its share)."""

    def prep(batch):
        L, ab, colourful = steps.lab_batch(batch["rgb"])
        if objective.head != "classification":
            return L, ab, colourful
        size = ab.shape[1] // objective.output_stride
        true_ab = steps.at_output(ab, (size, size), objective.output_stride)
        target = soft_encode(true_ab, objective.centres, objective.k, objective.sigma)
        return L, target, losses.rebalancing_weights(true_ab, objective.centres, objective.class_weights), colourful

    return jax.jit(prep)


def torch_case(model: str, size: int, width: float):
    from benchmarks import bench_torch  # torch only where PyTorch runs: the JAX cases never load it

    if model == "eccv16":
        centres = zhang_bins()
        # Random positive rebalancing weights (numpy, so that this process runs no JAX computation).
        weights = np.random.default_rng(0).gamma(2.0, 0.5, len(centres)).astype(np.float32)
        return bench_torch.ECCV16Classification(centres, weights, width=width)
    return bench_torch.Pix2Pix(int(math.log2(size)), width=width)


def _inputs(size: int, batch: int):
    """The same uint8 RGB batch and L batch (NHWC numpy) for both frameworks."""
    rng = np.random.default_rng(size * 100 + batch)
    return rng.integers(0, 256, (batch, size, size, 3), np.uint8), rng.uniform(0, 100, (batch, size, size, 1)).astype(np.float32)


# ---- one framework, one case: run in its own process ---------------------------------------------

def jax_measure(model, size, batch, width, repeats, compute_dtype, conv_algorithm="auto") -> dict:
    bf16 = compute_dtype == "bfloat16"
    train, state, make_infer, L, rgb, objective = jax_case(model, size, batch, width, compute_dtype if bf16 else None,
                                                           conv_algorithm)
    prep = preprocessing(objective)
    train_c, train_compile = _compile(train, state, rgb)
    infer, infer_state = make_infer(state)
    infer_c, infer_compile = _compile(infer, infer_state, L)
    model_flops = train.model_flops(state, rgb)  # counted with direct convolutions (jax_case)
    holder = {"state": state}

    def jax_train():
        with jax.transfer_guard("disallow"):
            holder["state"], metrics = train_c(holder["state"], rgb)
        jax.block_until_ready(metrics)

    def jax_infer():
        with jax.transfer_guard("disallow"):
            ab = infer_c(infer_state, L)
        ab.block_until_ready()

    jt, jt_mem = measure(jax_train, repeats)
    ji, _ = measure(jax_infer, repeats)
    jp, _ = measure(lambda: jax.block_until_ready(prep(rgb)), repeats)
    loss = float(jax.device_get(train_c(holder["state"], rgb)[1]["loss"]))
    if not math.isfinite(loss):
        raise RuntimeError(f"{model} {size}x{batch}: non-finite JAX loss {loss}")
    return {"train_s": jt, "infer_s": ji, "prep_s": jp, "mem": jt_mem, "xla_mem": _memory_mib(train_c),
            "compile_s": [train_compile, infer_compile], "flops": model_flops}


def torch_measure(model, size, batch, width, repeats, compute_dtype, conv_algorithm=None) -> dict:
    import torch

    ref = torch_case(model, size, width)
    rgb, L = _inputs(size, batch)
    rgb_t, L_t = torch.from_numpy(rgb), torch.from_numpy(L).permute(0, 3, 1, 2).contiguous()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute_dtype == "bfloat16"):
        tt, tt_mem = measure(lambda: ref.train_step(rgb_t), repeats)
        ti, _ = measure(lambda: ref.infer(L_t), repeats)
    return {"train_s": tt, "infer_s": ti, "mem": tt_mem}


def peak_measure(framework: str) -> dict:
    return {"flops_per_s": matmul_peak(framework)}


def worker(args) -> None:
    """One measurement in this fresh process, printed as one JSON line."""
    import torch

    torch.set_num_threads(os.cpu_count())  # XLA:CPU uses every core; PyTorch the same number
    if args.worker.endswith("peak"):
        result = peak_measure(args.worker.split("-")[0])
    else:
        model, size, batch = args.case.split(",")
        fn = jax_measure if args.worker == "jax" else torch_measure
        result = fn(model, int(size), int(batch), args.width, args.repeats, args.compute_dtype, args.conv_algorithm)
    print("RESULT " + json.dumps(result), flush=True)


def worker_environment(args) -> dict:
    """The environment of both frameworks' processes. PyTorch's OpenMP threads wait passively
    (``OMP_WAIT_POLICY=PASSIVE``): on these two shared cores their default spinning made one ECCV16
    forward at 64 px take 870 ms instead of 71. With ``--hugepages`` (the default) glibc's malloc
    backs its large blocks with transparent huge pages (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``,
    glibc >= 2.35, THP in ``madvise`` or ``always`` mode): XLA:CPU allocates its temporaries afresh
    each step, and first-touch page faults on 4 KiB pages (~95,000 per ECCV16 step at 64 px x 16)
    cost both frameworks time."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    if args.hugepages:
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1"]))
    return env


def in_subprocess(args, worker_kind: str, case: str = "") -> dict:
    """Run one measurement in a fresh interpreter (environment: :func:`worker_environment`), so
    neither framework's thread pool sits beside the other's."""
    command = [sys.executable, "-m", "benchmarks.bench_models", "--worker", worker_kind, "--case", case, "--width", str(args.width),
               "--repeats", str(args.repeats), "--compute-dtype", args.compute_dtype,
               "--conv-algorithm", args.conv_algorithm]
    env = worker_environment(args)
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{worker_kind} {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def run_case(args, model: str, size: int, batch: int, peak_flops: float) -> dict:
    case = f"{model},{size},{batch}"
    j, t = in_subprocess(args, "jax", case), in_subprocess(args, "torch", case)
    return {
        "model": model, "size": size, "batch": batch,
        "jax_train_ips": batch / j["train_s"], "torch_train_ips": batch / t["train_s"],
        "jax_infer_ms": 1e3 * j["infer_s"], "torch_infer_ms": 1e3 * t["infer_s"],
        "prep_share": j["prep_s"] / j["train_s"], "compile_s": j["compile_s"], "gflop": j["flops"] / 1e9,
        "mfu": j["flops"] / j["train_s"] / peak_flops, "jax_mem": j["mem"], "xla_mem": j["xla_mem"],
        "torch_mem": t["mem"],
    }


HEADER = (
    "| model | px | batch | train img/s JAX | PyTorch | ratio | infer ms JAX | PyTorch | ratio "
    "| Lab+encode share | compile s train/infer | train GFLOP/step | MFU | step MiB JAX (XLA) | PyTorch |"
)


def row(r: dict) -> str:
    return (
        f"| {r['model']} | {r['size']} | {r['batch']} | {r['jax_train_ips']:.2f} | {r['torch_train_ips']:.2f} "
        f"| {r['jax_train_ips'] / r['torch_train_ips']:.2f} | {r['jax_infer_ms']:.0f} | {r['torch_infer_ms']:.0f} "
        f"| {r['torch_infer_ms'] / r['jax_infer_ms']:.2f} | {100 * r['prep_share']:.1f}% | {r['compile_s'][0]:.1f} / {r['compile_s'][1]:.1f} "
        f"| {r['gflop']:.1f} | {100 * r['mfu']:.0f}% | {r['jax_mem']:.0f} ({r['xla_mem']:.0f}) | {r['torch_mem']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"grid {QUICK_GRID}, 2 repeats")
    parser.add_argument("--grid", default=None, help=f"comma-separated PXxBATCH (default {DEFAULT_GRID})")
    parser.add_argument("--models", default="eccv16,pix2pix")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier of both models")
    parser.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"),
                        help="bfloat16: JAX train.compute_dtype=bfloat16 against torch.autocast(bfloat16)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per figure (default 3)")
    parser.add_argument("--conv-algorithm", default="auto", choices=winograd.ALGORITHMS,
                        help="JAX's 3 x 3 layers: auto (Winograd F(2x2,3x3) for float32 on CPU), direct, winograd")
    parser.add_argument("--hugepages", action=argparse.BooleanOptionalAction, default=True,
                        help="both frameworks with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (see worker_environment)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--case", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    grid = args.grid or (QUICK_GRID if args.quick else DEFAULT_GRID)
    args.repeats = repeats = args.repeats or (2 if args.quick else 3)
    cases = [tuple(int(v) for v in item.split("x")) for item in grid.split(",")]
    import torch

    threads = os.cpu_count()
    started = time.perf_counter()
    jax_peak = in_subprocess(args, "jax-peak")["flops_per_s"]
    torch_peak = in_subprocess(args, "torch-peak")["flops_per_s"]
    print(f"device: {jax.devices()[0].device_kind} ({platform.machine()}, {threads} cores), jax {jax.__version__}, "
          f"torch {torch.__version__} ({threads} threads, OMP_WAIT_POLICY=PASSIVE), each framework in its own "
          f"process, load average at start "
          f"{os.getloadavg()[0]:.1f}")
    peak = max(jax_peak, torch_peak)
    print(f"float32 matmul {MATMUL_SIZE}^3: JAX {jax_peak / 1e9:.0f} GFLOP/s, PyTorch {torch_peak / 1e9:.0f} "
          f"GFLOP/s (MFU = JAX train step FLOPs / step time / the larger of the two)")
    print(f"compute {args.compute_dtype}, width {args.width}, JAX 3x3 convolutions: {args.conv_algorithm}, "
          f"malloc huge pages: {'on' if args.hugepages else 'off'} (both frameworks), {repeats} timed steps "
          f"per figure (median), ratios > 1: JAX faster\n", flush=True)
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for model in args.models.split(","):
        for size, batch in cases:
            result = run_case(args, model, size, batch, peak)
            print(row(result), flush=True)
    print(f"\nwall time {time.perf_counter() - started:.0f} s, load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
