"""benchmarks/device/device_check.py: the dry run end to end, failures and time-outs recorded instead of
fatal, and the report's figures and targets computed by hand."""

import importlib.util
import json

import pytest


from benchmarks.device import device_check, device_report


def test_failing_and_overrunning_parts_are_recorded_not_fatal(tmp_path, monkeypatch):
    plan = [("env", 60, "env", {}), ("broken", 60, "no_such_part", {}), ("late", 60, "env", {})]
    monkeypatch.setattr(device_check, "plan", lambda args: plan)
    times = iter([0.0, 0.0, 1.0])  # start, before "env", before "broken"; then the budget is gone
    monkeypatch.setattr(device_check, "clock", lambda: next(times, 10_000.0))
    assert device_check.main(["--dry-run", "--out", str(tmp_path), "--budget-s", "100"]) == 0
    report = json.loads((tmp_path / "device_check.json").read_text())
    parts = report["parts"]
    assert parts["env"]["status"] == "ok" and parts["env"]["result"]["platform"] == "cpu"
    assert parts["broken"]["status"] == "failed" and "no_such_part" in parts["broken"]["error"]
    assert parts["late"]["status"] == "skipped" and "budget" in parts["late"]["error"]
    markdown = (tmp_path / "device_check.md").read_text()
    assert "broken: failed" in markdown and "late: skipped" in markdown


def test_a_child_part_past_its_time_limit_is_a_timeout():
    with pytest.raises(TimeoutError, match="no result within"):
        device_check.run_part_in_child("env", {}, limit=0.05)


def _synthetic_report() -> dict:
    def ok(function, result):
        return {"function": function, "status": "ok", "result": result}

    step = dict(model="eccv16", size=176, batch=40, width=1.0, compile_s=12.0, peak_device_bytes=2**31,
                xla_bytes=2**30, loss=5.0)
    return {"dry_run": False, "parts": {
        "env": ok("env", {"device_kind": "NVIDIA H100", "platform": "gpu", "jax": "0", "commit": "abc"}),
        "peak": ok("matmul_peak", {"size": 8192, "float32": 400e12, "bfloat16": 800e12}),
        # 1.6e12 FLOP in 5 ms: 320 TFLOP/s, 40 % of the bfloat16 peak; 8 images / ms.
        "eccv16_176x40_bfloat16": ok("train_step", dict(step, dtype="bfloat16", step_s=0.005, images_per_s=8000.0,
                                                        flops_per_step=1.6e12)),
        # 1.6e12 FLOP in 20 ms: 80 TFLOP/s, 20 % of the float32 peak.
        "eccv16_176x40_float32": ok("train_step", dict(step, dtype="float32", step_s=0.020, images_per_s=2000.0,
                                                       flops_per_step=1.6e12)),
        "torch_eager": ok("torch_step", {"rows": [
            dict(size=176, batch=40, dtype="bfloat16", mode="eager", step_s=0.01, images_per_s=4000.0, first_call_s=1.0,
                 peak_device_bytes=None),
            dict(size=176, batch=40, dtype="float32", mode="eager", step_s=0.01, images_per_s=4000.0, first_call_s=1.0,
                 peak_device_bytes=None)]}),
        "torch_compile": {"function": "torch_step", "status": "failed", "error": "TimeoutError: no result"},
        "real_run": ok("real_run", {"config": "c.py", "spec": "s", "crop_size": 64, "batch_size": 16, "width": 1.0,
                                    "workers": 4, "comparison": {"gap": 0.01, "within_noise": True, "window_steps": 5,
                                                                 "common_steps": 25, "f32_noise_std": 0.2},
                                    "runs": {"bfloat16": {"dtype": "bfloat16", "steps": 25, "images_per_s": 900.0,
                                                          "stall": 0.07, "time_in_next": 0.01, "loss_first_tenth": 5.0,
                                                          "loss_last_tenth": 4.0, "compile_s": 3.0}}}),
    }}


def test_report_figures_and_targets_by_hand():
    report = _synthetic_report()
    rows = {r["dtype"]: r for r in device_report.training_rows(report)}
    assert rows["bfloat16"]["mfu"] == pytest.approx(0.40) and rows["bfloat16"]["tflops"] == pytest.approx(320)
    assert rows["float32"]["mfu"] == pytest.approx(0.20)
    targets = device_report.summary(report)
    assert targets["eccv16_bf16_mfu"]["met"] is True
    # JAX / PyTorch eager: bfloat16 8000 / 4000, float32 2000 / 4000: the smaller ratio decides.
    assert targets["jax_over_torch_eager"]["value"] == pytest.approx(0.5) and targets["jax_over_torch_eager"]["met"] is False
    assert targets["jax_over_torch_compile"]["met"] is None  # not measured
    assert targets["input_stall"]["met"] is False and targets["bf16_follows_f32"]["met"] is True
    markdown = device_report.markdown(report)
    assert "| eccv16_bf16_mfu | 0.400 | >= 40% | yes |" in markdown
    assert "| eccv16 | 176 | 40 | bfloat16 | 8000.0 | 5.00 | 320.0 | 40.0% | 2.00 | 1.00 | 12.0 |" in markdown
    assert "torch_compile: failed" in markdown


@pytest.mark.slow
def test_dry_run_runs_every_part_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    assert device_check.main(["--dry-run", "--out", str(out)]) == 0
    report = json.loads((out / "device_check.json").read_text())
    assert report["finished"]
    statuses = {name: part["status"] for name, part in report["parts"].items()}
    # PyTorch is an optional extra (the GPU machine has it): without it, its two parts record their
    # failure and everything else must still pass.
    needed = {n for n in statuses if importlib.util.find_spec("torch") is not None or not n.startswith("torch")}
    assert {statuses[n] for n in needed} == {"ok"}, {
        n: p.get("error") for n, p in report["parts"].items() if n in needed and p["status"] != "ok"}
    assert {"env", "peak", "tests", "real_run", "torch_eager", "torch_compile", "inference"} <= set(statuses)
    real = report["parts"]["real_run"]["result"]
    assert set(real["runs"]) == {"bfloat16", "float32"} and real["runs"]["float32"]["steps"] <= real["runs"]["bfloat16"]["steps"]
    tests = report["parts"]["tests"]["result"]
    assert tests["returncode"] == 0 and tests["counts"]["tests collected"] >= len(device_check.DEVICE_TESTS)
    assert "# Device check (dry run" in (out / "device_check.md").read_text()
