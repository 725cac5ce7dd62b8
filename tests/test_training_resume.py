"""Exact resume after SIGKILL and after SIGTERM / SIGINT (which save the current step), the same
losses on 8 devices as on 1 (fresh and restored from a 1-device checkpoint), and two processes
training together through jax.distributed.

Child processes run ``CHILD`` below: a fresh interpreter is the only way to get a SIGKILL, a forced
device count or a second jax.distributed process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from colorjax.checkpointing import load_model
from colorjax.training import train
from colorjax.training.commands import load_config_file

pytestmark = pytest.mark.slow  # training processes killed and resumed: minutes on 2 CPU cores

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "experiments" / "configs" / "tiny_classification.py")
# Adam's first updates are close to lr * sign(gradient): a gradient element near zero whose sign
# depends on the summation order (1 vs 8 devices) would move by lr. A small lr keeps such
# reduction-order noise below the 1e-5 the device-count comparison asks for.
OVERRIDES = ["train.num_steps=6", "train.checkpoint_every=2", "train.eval_images=0", "optim.learning_rate=1e-5"]

# argv: workdir, JSON list of overrides, "fresh" | "resume", kill-after step (0: never), output JSON.
CHILD = """
import json, os, signal, sys
from colorjax.training import apply_overrides, state, train
from colorjax.training.commands import load_config_file

workdir, overrides, mode, kill_after, output = sys.argv[1:6]
if int(kill_after):
    save = state.save
    def save_then_die(manager, step, *args, **kwargs):
        save(manager, step, *args, **kwargs)
        if step == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
    state.save = save_then_die
config = apply_overrides(load_config_file(sys.argv[6]), json.loads(overrides))
summary = train(config, workdir, resume=mode == "resume")
with open(output, "w") as f:
    json.dump({"train": summary["train"], "devices": __import__("jax").device_count()}, f)
"""


@pytest.fixture(scope="module", autouse=True)
def _shared_compilation_cache(tmp_path_factory):
    """Children of this module reuse each other's XLA compilations (same programs, fresh processes):
    the 8-device resume below reuses the 8-device run's, which is why that test comes first."""
    global COMPILATION_CACHE
    COMPILATION_CACHE = str(tmp_path_factory.mktemp("xla_cache"))


COMPILATION_CACHE = None


def _child(workdir, overrides, *, mode="fresh", kill_after=0, devices=None, env=None, wait=True):
    # COLORJAX_TEST_CHILD_PLATFORMS="" (benchmarks/device/device_check.py) runs the children on the accelerator.
    platforms = os.environ.get("COLORJAX_TEST_CHILD_PLATFORMS", "cpu")
    environment = {**os.environ, "JAX_PLATFORMS": platforms, "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE, **(env or {})}
    if devices:
        environment["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    output = Path(workdir).with_suffix(".json")
    command = [sys.executable, "-c", CHILD, str(workdir), json.dumps(overrides), mode, str(kill_after), str(output), TINY]
    process = subprocess.Popen(command, env=environment, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return (process, output) if not wait else _finish(process, output)


def _finish(process, output):
    log, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        return process.returncode, log
    return 0, json.loads(output.read_text())


def _losses(records):
    return {r["step"]: r["loss"] for r in records}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """6 steps on one device in this process: the reference losses."""
    from colorjax.training import apply_overrides

    config = apply_overrides(load_config_file(TINY), OVERRIDES)
    return _losses(train(config, tmp_path_factory.mktemp("uninterrupted"))["train"])


def test_eight_devices_match_one_device(tmp_path, uninterrupted):
    code, result = _child(tmp_path / "eight", [*OVERRIDES, "train.num_steps=5", "train.checkpoint_every=5"], devices=8)
    assert code == 0 and result["devices"] == 8, result
    eight = _losses(result["train"])
    np.testing.assert_allclose([eight[s] for s in range(1, 6)], [uninterrupted[s] for s in range(1, 6)], rtol=1e-5, atol=1e-5)


def test_sigkill_then_resume_gives_the_same_losses(tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    code, _ = _child(workdir, OVERRIDES, kill_after=4)
    assert code == -9  # killed by SIGKILL right after the step-4 checkpoint
    saved = sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert saved == ["2", "4"]
    shutil.copytree(workdir, tmp_path / "copy")  # for the device-count test below

    from colorjax.training import apply_overrides

    resumed = train(apply_overrides(load_config_file(TINY), OVERRIDES), workdir, resume=True)
    assert resumed["start_step"] == 4
    killed = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    losses = {**_losses([r for r in killed if r["split"] == "train"]), **_losses(resumed["train"])}
    assert losses == uninterrupted  # bitwise: every step, before and after the kill

    if os.environ.get("COLORJAX_TEST_CHILD_PLATFORMS", "cpu") != "cpu":
        return  # on an accelerator: 8 forced devices exist only on the CPU platform
    # the 1-device step-4 checkpoint restored on 8 devices continues with the same losses
    code, result = _child(tmp_path / "copy", OVERRIDES, mode="resume", devices=8)
    assert code == 0 and result["devices"] == 8, result
    eight = _losses(result["train"])
    assert sorted(eight) == [5, 6]
    np.testing.assert_allclose([eight[5], eight[6]], [uninterrupted[5], uninterrupted[6]], rtol=1e-5, atol=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_and_checkpoint_together(tmp_path):
    overrides = ["train.num_steps=3", "train.checkpoint_every=3", "data.eval_batch_size=2", "train.eval_images=2"]
    address = f"127.0.0.1:{_free_port()}"
    children = [
        _child(tmp_path / "run", overrides, wait=False,
               env={"COLORJAX_COORDINATOR": address, "COLORJAX_NUM_PROCESSES": "2", "COLORJAX_PROCESS_ID": str(i)})
        for i in range(2)
    ]
    # both write the same summary path; the process outputs are checked through their return codes
    results = [_finish(process, output) for process, output in children]
    assert [code for code, _ in results] == [0, 0], results
    assert results[0][1]["devices"] == 2  # one CPU device per process, one global mesh
    step_dir = tmp_path / "run" / "checkpoints" / "3"
    assert sorted(p.name for p in (step_dir / "data").glob("process_*.json")) == ["process_0-of-2.json", "process_1-of-2.json"]
    states = [json.loads((step_dir / "data" / f"process_{i}-of-2.json").read_text()) for i in range(2)]
    assert all(s["counts"]["images_yielded"] == 3 * 4 for s in states)  # 3 steps of 4 rows per process
    model, _, prior = load_model(tmp_path / "run")
    assert prior is not None and float(prior.counts.sum()) > 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in records if r["split"] == "train")


# RReLU draws a random negative slope per element in training: the run consumes the module's rrelu
# RNG stream every step, so an exact resume must restore that stream's position too.
STOCHASTIC = [*OVERRIDES, "model.activation=rrelu", "train.num_steps=4", "train.checkpoint_every=2"]


@pytest.mark.slow
def test_sigkill_then_resume_is_exact_with_a_stochastic_backbone(tmp_path):

    from colorjax.training import apply_overrides

    reference = _losses(train(apply_overrides(load_config_file(TINY), STOCHASTIC), tmp_path / "reference")["train"])
    model, _, _ = load_model(tmp_path / "reference")
    model.train()
    L = np.linspace(0, 100, 2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32, 1)
    assert not np.allclose(np.asarray(model(L)), np.asarray(model(L)))  # two draws of the slopes differ

    workdir = tmp_path / "run"
    code, _ = _child(workdir, STOCHASTIC, kill_after=2)
    assert code == -9  # killed by SIGKILL right after the step-2 checkpoint
    resumed = train(apply_overrides(load_config_file(TINY), STOCHASTIC), workdir, resume=True)
    assert resumed["start_step"] == 2
    killed = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in killed if r["split"] == "train"] == [1, 2, 3, 4]  # no step twice
    assert {**_losses([r for r in killed if r["split"] == "train"]), **_losses(resumed["train"])} == reference


# argv: a marker file, then `colorjax train`'s arguments. From its third step on the child writes the
# marker and takes a second per step, so that the test's signal lands while it trains.
SIGNALLED_CHILD = """
import sys, time
from pathlib import Path
from colorjax.cli import main
from colorjax.training import logging as run_logging

marker, advance, done = Path(sys.argv[1]), run_logging.RunLog.advance, [0]
def slow_advance(self, *args, **kwargs):
    advance(self, *args, **kwargs)
    done[0] += 1
    if done[0] >= 3:
        marker.write_text(str(done[0]))
        time.sleep(1.0)
run_logging.RunLog.advance = slow_advance
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_the_current_step_and_resume_is_exact(tmp_path, uninterrupted, signum):
    workdir, marker = tmp_path / "run", tmp_path / "marker"
    overrides = [*OVERRIDES, "train.checkpoint_every=6"]  # no regular checkpoint before the last step
    environment = {**os.environ, "JAX_PLATFORMS": os.environ.get("COLORJAX_TEST_CHILD_PLATFORMS", "cpu"),
                   "JAX_COMPILATION_CACHE_DIR": COMPILATION_CACHE}
    command = [sys.executable, "-c", SIGNALLED_CHILD, str(marker), "train", "--config", TINY, "--workdir", str(workdir),
               *(f"--config.{o}" for o in overrides)]
    process = subprocess.Popen(command, env=environment, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)  # the run is at step 3 or just after it
    log, _ = process.communicate(timeout=300)
    assert process.returncode == 128 + signum, log
    stopped = [line for line in log.splitlines() if "stopped by" in line]
    assert len(stopped) == 1 and "Traceback" not in log, log
    step = int(stopped[0].split(" at step ")[1].split(":")[0])
    assert 3 <= step < 6
    assert stopped[0] == (f"colorjax train: stopped by {signal.Signals(signum).name} at step {step}: checkpoint saved in "
                          f"{workdir / 'checkpoints' / str(step)}; --resume continues from it")
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [step]

    from colorjax.training import apply_overrides

    resumed = train(apply_overrides(load_config_file(TINY), overrides), workdir, resume=True)
    assert resumed["start_step"] == step
    stopped_run = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stopped_run if r["split"] == "train"] == list(range(1, 7))  # every step once
    assert {**_losses([r for r in stopped_run if r["split"] == "train"]), **_losses(resumed["train"])} == uninterrupted
