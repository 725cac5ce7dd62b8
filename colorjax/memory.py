"""Will a compiled program (a training step, the colour prior's count, evaluation's metrics) fit? An
estimate from XLA's own memory analysis, checked before the work starts, so that a crop or batch
too large is refused with a number instead of the kernel killing the process (or the accelerator
running out) part way through.

The estimate is what the step needs beyond the state already resident on the device: XLA's
temporaries (activations kept for the backward pass, gradients, workspace) plus its outputs not
aliased to donated inputs, plus the batch. It is compared with the memory free now: on an
accelerator ``bytes_limit - bytes_in_use`` of the device, on the CPU the host's ``MemAvailable``
(or the cgroup's remaining limit when lower), shared by every local CPU device.
"""

from __future__ import annotations

import jax

GIB = 2**30
# Allocator fragmentation and the host-side copies around a step: keep this fraction in hand.
HEADROOM = 0.9


def _cgroup_free_bytes() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return int(limit) - int(f.read().strip())
    except (OSError, ValueError):
        return None


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    cgroup = _cgroup_free_bytes()
    return available if cgroup is None else min(available, cgroup)


def available_bytes(device: jax.Device) -> int | None:
    """Free memory for one device's share of a step, or None when it cannot be told."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    host = _host_available_bytes()
    if host is None:
        return None
    return host // max(1, jax.local_device_count())  # CPU devices share the host's memory


def step_bytes(compiled) -> tuple[int, dict] | None:
    """``(bytes needed beyond the resident arguments, the analysis' parts)`` of a compiled step."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    parts = {name: int(getattr(analysis, f"{name}_size_in_bytes", 0) or 0)
             for name in ("argument", "output", "alias", "temp", "generated_code")}
    need = parts["temp"] + max(0, parts["output"] - parts["alias"]) + parts["generated_code"]
    return need, parts


TRAINING_ADVICE = ("lower data.batch_size or data.crop_size, or set train.remat=blocks or "
                   "train.compute_dtype=bfloat16")


def compile_within_memory(jitted, args: tuple, *, what: str, available: int | None = None, resident: int = 1,
                          advice: str = TRAINING_ADVICE):
    """Compile ``jitted`` for ``args`` (arrays or ``jax.ShapeDtypeStruct``) and return the compiled
    step; a ValueError with the estimate (and ``advice``) when it needs more than the free memory.

    ``args[resident:]`` (the batch) is not resident yet and counts towards the need; the first
    ``resident`` arguments (a training step's state) already are.
    """
    compiled = jitted.lower(*args).compile()
    estimate = step_bytes(compiled)
    device = jax.local_devices()[0]
    available = available_bytes(device) if available is None else available
    if estimate is None or available is None:
        return compiled
    need, parts = estimate
    batch = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(args[resident:])) // max(1, jax.device_count())
    need += batch
    if need > HEADROOM * available:
        raise ValueError(
            f"{what} needs about {need / GIB:.2f} GiB per device (XLA's estimate: {parts['temp'] / GIB:.2f} GiB "
            f"of temporaries, {parts['output'] / GIB:.2f} GiB of outputs, {parts['argument'] / GIB:.2f} GiB of "
            f"state and batch) but {available / GIB:.2f} GiB is free on {device.platform}: {advice}"
        )
    return compiled
