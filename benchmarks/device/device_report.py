"""Figures and targets of a ``device_check.py`` report, and its Markdown (the README's accelerator
table is pasted from it)."""

from __future__ import annotations

MFU_TARGET = 0.40  # ECCV16 in bfloat16 at 176 px x 40
STALL_TARGET = 0.05  # the input pipeline's share of the step time


def _ok(report: dict, name: str) -> dict | None:
    part = report["parts"].get(name)
    return part["result"] if part and part["status"] == "ok" else None


def training_rows(report: dict) -> list[dict]:
    """One row per JAX training case, with MFU against the same run's matmul peak in its dtype."""
    peak = _ok(report, "peak") or {}
    rows = []
    for name, part in report["parts"].items():
        if part["function"] != "train_step" or part["status"] != "ok":
            continue
        r = dict(part["result"], case=name)
        flops_per_s = r["flops_per_step"] / r["step_s"]
        r["tflops"] = flops_per_s / 1e12
        r["mfu"] = flops_per_s / peak[r["dtype"]] if r["dtype"] in peak else None
        rows.append(r)
    return rows


def torch_rows(report: dict) -> list[dict]:
    rows = []
    for mode in ("eager", "compile"):
        result = _ok(report, f"torch_{mode}")
        rows += result["rows"] if result else []
    return rows


def summary(report: dict) -> dict:
    """The issue's targets, each ``{"value", "target", "met"}`` (met None when not measured)."""
    train = {(r["model"], r["size"], r["batch"], r["dtype"]): r for r in training_rows(report)}
    first_eccv = next((r for r in training_rows(report) if r["model"] == "eccv16"), None)
    targets = {}
    key = None if first_eccv is None else ("eccv16", first_eccv["size"], first_eccv["batch"], "bfloat16")
    bf16 = train.get(key)
    targets["eccv16_bf16_mfu"] = {"value": bf16 and bf16["mfu"], "target": f">= {MFU_TARGET:.0%}",
                                  "met": None if not bf16 or bf16["mfu"] is None else bf16["mfu"] >= MFU_TARGET}
    for mode in ("eager", "compile"):
        ratios = []
        for t in torch_rows(report):
            j = train.get(("eccv16", t["size"], t["batch"], t["dtype"]))
            if t["mode"] == mode and j:
                ratios.append(j["images_per_s"] / t["images_per_s"])
        targets[f"jax_over_torch_{mode}"] = {"value": min(ratios) if ratios else None, "target": "> 1 (JAX / PyTorch images/s)",
                                             "met": None if not ratios else min(ratios) > 1}
    real = _ok(report, "real_run")
    stall = real and real["runs"]["bfloat16"]["stall"]
    targets["input_stall"] = {"value": stall, "target": f"< {STALL_TARGET:.0%}",
                              "met": None if stall is None else stall < STALL_TARGET}
    comparison = real and real["comparison"]
    targets["bf16_follows_f32"] = {"value": comparison and comparison["gap"], "target": "|gap| <= float32's scatter",
                                   "met": None if not comparison else comparison["within_noise"]}
    tests = _ok(report, "tests")
    targets["device_tests"] = {"value": tests and tests["summary"], "target": "all pass",
                               "met": None if not tests else tests["returncode"] == 0}
    return targets


def _f(value, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value * scale, spec)


def _gib(value) -> str:
    return "-" if value is None else f"{value / 2**30:.2f}"


def markdown(report: dict) -> str:
    env = _ok(report, "env") or {}
    peak = _ok(report, "peak") or {}
    lines = [f"# Device check{' (dry run: tiny sizes on the CPU)' if report['dry_run'] else ''}", ""]
    lines.append(f"Device: {env.get('device_kind', '?')} ({env.get('platform', '?')}), jax {env.get('jax', '?')}, "
                 f"torch {env.get('torch', '-')}, {env.get('cpu_count', '?')} host cores; commit "
                 f"{str(env.get('commit', '?'))[:12]}; {env.get('date_utc', '?')}.")
    if peak:
        lines.append(f"Measured matmul peak ({peak['size']}^3): float32 (device default precision) "
                     f"{peak['float32'] / 1e12:.1f} TFLOP/s, bfloat16 {peak['bfloat16'] / 1e12:.1f} TFLOP/s.")
    lines += ["", "## Targets", "", "| target | value | wanted | met |", "|---|---|---|---|"]
    for name, t in report.get("summary", summary(report)).items():
        value = t["value"]
        shown = f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"| {name} | {shown} | {t['target']} | {'-' if t['met'] is None else ('yes' if t['met'] else 'NO')} |")
    lines += ["", "## Training step (JAX, the library's jitted step)", "",
              "| model | px | batch | dtype | images/s | step ms | TFLOP/s | MFU | peak device GiB | XLA GiB | compile s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in training_rows(report):
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {r['dtype']} | {r['images_per_s']:.1f} | "
                     f"{1e3 * r['step_s']:.2f} | {r['tflops']:.1f} | {_f(r['mfu'], '.1%')} | {_gib(r['peak_device_bytes'])} | "
                     f"{_gib(r['xla_bytes'])} | {r['compile_s']:.1f} |")
    rows = torch_rows(report)
    if rows:
        lines += ["", "## PyTorch, the same work (bench_torch.py)", "",
                  "| mode | px | batch | dtype | images/s | step ms | first call s | peak device GiB |", "|---|---|---|---|---|---|---|---|"]
        for t in rows:
            lines.append(f"| {t['mode']} | {t['size']} | {t['batch']} | {t['dtype']} | {t['images_per_s']:.1f} | "
                         f"{1e3 * t['step_s']:.2f} | {t['first_call_s']:.1f} | {_gib(t['peak_device_bytes'])} |")
    inference = _ok(report, "inference")
    if inference:
        lines += ["", "## Inference (ECCV16, L to ab)", "", "| px | batch | dtype | latency ms | images/s | compile s |",
                  "|---|---|---|---|---|---|"]
        for r in inference["rows"]:
            lines.append(f"| {r['size']} | {r['batch']} | {r['dtype']} | {r['latency_ms']:.2f} | {r['images_per_s']:.1f} | "
                         f"{r['compile_s']:.1f} |")
    real = _ok(report, "real_run")
    if real:
        lines += ["", f"## Real run: {real['config']} on {real['spec']}, {real['crop_size']} px, batch "
                  f"{real['batch_size']}, width {real['width']}, {real['workers']} grain workers", "",
                  "| dtype | steps | images/s | stall | time in next() | loss first / last tenth | compile s |",
                  "|---|---|---|---|---|---|---|"]
        for r in real["runs"].values():
            lines.append(f"| {r['dtype']} | {r['steps']} | {r['images_per_s']:.0f} | {r['stall']:.1%} | {r['time_in_next']:.1%} | "
                         f"{r['loss_first_tenth']:.3f} / {r['loss_last_tenth']:.3f} | {r['compile_s']:.1f} |")
        c = real["comparison"]
        lines.append(f"\nbfloat16 - float32 mean loss over the last {c['window_steps']} of {c['common_steps']} common steps: "
                     f"{c['gap']:+.4f} (float32's scatter there {c['f32_noise_std']:.4f}).")
    tests = _ok(report, "tests")
    if tests:
        lines += ["", f"## Tests on the device: {tests['summary']}"] + [f"- {f}" for f in tests["failures"]]
    problems = [(n, p) for n, p in report["parts"].items() if p["status"] != "ok"]
    if problems:
        lines += ["", "## Parts not measured", ""]
        lines += [f"- {n}: {p['status']}: {p.get('error', '')[:400]}" for n, p in problems]
    return "\n".join(lines) + "\n"
