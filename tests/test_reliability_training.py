"""Training that loses nothing and reports nothing false: divergence, gray-only data, a second run on
one workdir, corrupt checkpoints on resume, metrics.jsonl after a resume, configs refused before work."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from colorjax import checkpointing
from colorjax.data import NoUsableImagesError, make_loader
from colorjax.training import train
from colorjax.training import commands as train_commands
from colorjax.training import config as config_lib
from colorjax import memory
from colorjax.training.commands import load_config_file
from colorjax.training.logging import RunLog
from colorjax.training.workdir import WorkdirBusyError, WorkdirLock

pytestmark = pytest.mark.slow  # each test trains, resumes or diverges a run: minutes on 2 CPU cores

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "experiments" / "configs" / "tiny_classification.py")
REGRESSION = ["method=regression", "model.head=regression"]


@contextmanager
def deadline(seconds: int):
    """Fail (rather than hang the suite) when the body spins longer than ``seconds``."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _steps(workdir) -> list[int]:
    return sorted(int(p.name) for p in (Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())


def _strict_records(path) -> list[dict]:
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return [json.loads(line, parse_constant=refuse) for line in Path(path).read_text().splitlines()]


def _cli(argv) -> int:
    parser = argparse.ArgumentParser()
    train_commands.add_arguments(parser)
    return train_commands.run(parser.parse_args(argv))


# 1. A diverged model is never saved, never best, and the command fails.
@pytest.mark.slow
def test_a_diverged_resume_is_not_saved_ranked_or_reported_as_success(tmp_path, capsys):
    workdir = tmp_path / "run"
    base = [f"--config.{o}" for o in ["train.num_steps=2", "train.checkpoint_every=2"]]
    assert _cli(["--config", TINY, "--workdir", str(workdir), *base]) == 0
    capsys.readouterr()
    # Checkpoints every step: the step-3 one would hold the 1e30 parameters of the first update.
    diverge = ["--config.optim.learning_rate=1e30", "--config.train.num_steps=5", "--config.train.checkpoint_every=1"]
    assert _cli(["--config", TINY, "--workdir", str(workdir), "--resume", *diverge]) == 1
    error = capsys.readouterr().err
    assert "non-finite" in error and "last good checkpoint is step 2" in error and "step None" not in error
    assert _steps(workdir) == [2]  # nothing after the 1e30 update was kept
    manager = checkpointing.checkpoint_manager(workdir / "checkpoints", read_only=True, best_metric="val_loss")
    assert manager.best_step() == 2
    model, _, _ = checkpointing.load_model(workdir)  # the kept checkpoint is finite
    assert not checkpointing.nonfinite_leaves(nnx.to_pure_dict(nnx.state(model)))


def test_best_step_ignores_a_checkpoint_whose_metric_is_not_finite(tmp_path):
    from colorjax.models import build_model

    config = {"backbone": "eccv16", "head": "regression", "width": 1 / 16}
    model = build_model(**config, rngs=nnx.Rngs(0))
    manager = checkpointing.checkpoint_manager(tmp_path, keep_last=5, best_metric="val_loss")
    for step, loss in [(1, 2.0), (2, float("nan")), (3, 3.0)]:
        args = checkpointing.ocp.args.Composite(**checkpointing.model_save_args(nnx.state(model), config))
        manager.save(step, args=args, metrics={"val_loss": loss}, force=True)
    manager.wait_until_finished()
    assert manager.best_step() == 1  # NaN compares false both ways: it must rank last, not first


# 2. A training split with no colour image is refused before any work, and no loader spins forever.
def _gray_folder(root: Path) -> str:
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        (root / split).mkdir(parents=True)
        for i in range(3):
            gray = rng.integers(0, 256, (40, 40), dtype=np.uint8)
            Image.fromarray(np.repeat(gray[..., None], 3, -1)).save(root / split / f"{i}.png")
    return str(root)


def test_gray_only_training_split_is_refused_and_does_not_spin(tiny_config, tmp_path):
    spec = _gray_folder(tmp_path / "gray")
    with deadline(120):
        loader = make_loader(spec, "train", crop_size=32, batch_size=2, train=True, data_dir=str(tmp_path / "d"))
        with pytest.raises(NoUsableImagesError, match="3 images gave no usable image.*3 gray dropped"):
            next(iter(loader))
        for method in ([], REGRESSION):  # prior counting first (classification), or none (regression)
            started = time.perf_counter()
            with pytest.raises(ValueError, match="training split yields no colour image"):
                train(tiny_config(*method, "data.spec=" + spec, f"data.data_dir={tmp_path / 'd'}"), tmp_path / "w")
            assert time.perf_counter() - started < 60
            assert not (tmp_path / "w" / "checkpoints").exists() or not _steps(tmp_path / "w")
    # A single pass of evaluation data that is all gray still simply ends.
    one_pass = make_loader(spec, "train", crop_size=32, batch_size=2, train=False, data_dir=str(tmp_path / "d"))
    assert list(one_pass) == []


# 4. One run per workdir.
HOLD_LOCK = """
import sys, time
from colorjax.training.workdir import WorkdirLock

lock = WorkdirLock(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_run_on_a_locked_workdir_is_refused_and_a_crash_frees_it(tiny_config, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(workdir)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirBusyError, match=f"in use by another training run \\(process {holder.pid} "):
            train(tiny_config(*REGRESSION), workdir)
        assert not (workdir / "checkpoints").exists()  # refused before the checkpoint manager was made
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    WorkdirLock(workdir).release()  # the kernel released the killed holder's lock


# 5, 6. Corrupt checkpoints on resume; metrics.jsonl after a resume.
def _largest_file(directory: Path) -> Path:
    return max((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.slow
def test_resume_names_corrupt_checkpoints_and_falls_back_exactly(tiny_config, tmp_path, capsys):
    overrides = ["train.num_steps=6", "train.checkpoint_every=2", "train.eval_images=0"]
    workdir = tmp_path / "run"
    first = {r["step"]: r["loss"] for r in train(tiny_config(*overrides), workdir)["train"]}
    assert _steps(workdir) == [2, 4, 6]
    flipped = _largest_file(workdir / "checkpoints" / "6" / "model")  # one flipped byte in the parameters
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x40
    flipped.write_bytes(bytes(data))
    truncated = workdir / "checkpoints" / "4" / "train_state" / "metadata"
    if not truncated.exists():
        truncated = _largest_file(workdir / "checkpoints" / "4" / "optimizer")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    with pytest.raises(checkpointing.CorruptCheckpointError, match=f"{flipped}.*CRC-32"):
        checkpointing.load_model(workdir)  # colorize and evaluate load through this
    capsys.readouterr()

    resumed = train(tiny_config(*overrides), workdir, resume=True)
    out = capsys.readouterr().out
    assert f"step 6 ({workdir / 'checkpoints' / '6'})" in out and str(flipped.name) in out
    assert f"step 4 ({workdir / 'checkpoints' / '4'})" in out and str(truncated.name) in out
    assert "resuming from step 2" in out
    assert resumed["start_step"] == 2 and _steps(workdir) == [2, 4, 6]
    assert sorted(p.name for p in (workdir / "corrupt_checkpoints").iterdir()) == ["4", "6"]
    assert {r["step"]: r["loss"] for r in resumed["train"]} == {s: first[s] for s in (3, 4, 5, 6)}  # bitwise

    records = _strict_records(workdir / "metrics.jsonl")
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)) and [s for s, split in keys if split == "train"] == [1, 2, 3, 4, 5, 6]


def test_metrics_jsonl_is_strict_json_with_null_for_non_finite_values(tmp_path):
    log = RunLog(tmp_path, total_steps=2, start_step=0, enabled=True, progress_bar=False, tensorboard=False)
    log.train(1, {"loss": float("nan"), "grad_norm": float("inf")}, batch_size=2)
    log.validation(1, {"val_loss": 1.5, "val_psnr": float("inf")})
    log.close()
    train_record, validation = _strict_records(tmp_path / "metrics.jsonl")
    assert train_record["loss"] is None and train_record["grad_norm"] is None
    assert validation == {"step": 1, "split": "validation", "val_loss": 1.5, "val_psnr": None}
    with open(tmp_path / "metrics.jsonl", "a") as f:  # a line cut short by a kill, then a resume at step 1
        f.write('{"step": 2, "split": "train", "lo')
    RunLog(tmp_path, total_steps=3, start_step=1, enabled=True, progress_bar=False, tensorboard=False).close()
    assert [r["step"] for r in _strict_records(tmp_path / "metrics.jsonl")] == [1, 1]


# 7. Config fields checked before work.
@pytest.mark.parametrize("field, value, message", [
    ("train.checkpoint_every", 0, "checkpoint_every = 0 must be positive"),
    ("train.log_every", 0, "log_every = 0 must be positive"),
    ("train.keep_checkpoints", -1, "keep_checkpoints = -1 must be >= 0"),
    ("train.eval_images", -8, "eval_images = -8 must be >= 0"),
    ("optim.learning_rate", float("nan"), "learning_rate = nan must be a finite number >= 0"),
    ("optim.learning_rate", -1e-3, "learning_rate = -0.001 must be a finite number >= 0"),
    ("discriminator.learning_rate", float("inf"), "discriminator.learning_rate = inf"),
])
def test_bad_config_fields_are_refused(field, value, message):
    config = config_lib.get_config()
    group, name = field.split(".")
    config[group][name] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        config_lib.validate(config, 1)


def test_a_config_file_with_a_syntax_error_gives_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config():\n    return {\n")
    with pytest.raises(ValueError) as error:
        load_config_file(str(broken))
    assert str(error.value).startswith(f"{broken}:2: syntax error") and "\n" not in str(error.value)


def test_a_step_that_does_not_fit_in_memory_is_refused_with_the_estimate(tiny_config, tmp_path, monkeypatch):
    seen = {}
    real = memory.step_bytes

    def spy(compiled):
        seen["estimate"] = real(compiled)
        return seen["estimate"]

    monkeypatch.setattr(memory, "step_bytes", spy)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1 << 20)  # 1 MiB free
    with pytest.raises(ValueError, match=r"the supervised training step at crop 32, batch 8 needs about [0-9.]+ GiB"):
        train(tiny_config(*REGRESSION, "train.eval_images=0"), tmp_path)
    need, parts = seen["estimate"]
    # A 1/16-width ECCV16 on 8 x 32 x 32 crops: activations and gradients of some MB, not GB.
    assert 1 << 20 < need < 1 << 30 and parts["temp"] > 0
    assert not _steps(tmp_path)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1 << 40)
    compiled = memory.compile_within_memory(jax.jit(lambda x: x * 2), (np.ones(4, np.float32),), what="x")
    assert float(compiled(np.ones(4, np.float32))[0]) == 2.0
