"""Work sized beyond memory is refused before it starts (issue 28, item 13), with XLA's estimate
(colorjax.memory, as training's step check): evaluation at a huge crop size, the colour prior's
count at huge crops, and step counts no run can reach."""

import jax
import pytest

from colorjax import memory
from colorjax.cli import main
from colorjax.evaluation.commands import check_evaluation_fits
from colorjax.training import train
from colorjax.training.config import MAX_STEPS, validate


def test_absurd_step_counts_are_refused_by_the_config_check(tiny_config):
    for field, value in [("train.num_steps", 10**23), ("train.num_steps", MAX_STEPS + 1)]:
        with pytest.raises(ValueError, match=f"config {field}: {value} is above the maximum {MAX_STEPS}"):
            validate(tiny_config(**{field: value}), jax.device_count())
    nogan = tiny_config("method=nogan", "model.head=regression", "train.num_steps=0", **{"nogan.cycles": 10**8})
    with pytest.raises(ValueError, match="config nogan's whole schedule .* is above the maximum"):
        validate(nogan, jax.device_count())
    validate(tiny_config(**{"train.num_steps": MAX_STEPS}), jax.device_count())  # the largest is fine


def test_ordinary_evaluations_skip_the_estimate(monkeypatch):
    monkeypatch.setattr(memory, "compile_within_memory", lambda *a, **k: pytest.fail("compiled an estimate"))
    check_evaluation_fits(256, 16, available=4 << 30)  # 16 x 256 x 256: 37 MB of inputs, under 5 % of 4 GiB


@pytest.mark.slow
def test_evaluate_at_a_huge_size_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "record"
    assert main(["evaluate", "--baseline", "gray", "--data", "embedded", "--size", "5000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate: evaluating batches of 16 crops of 5000 x 5000 needs about") and "GiB" in err, err
    assert "lower --batch-size or --size" in err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_prior_count_is_refused_before_it_runs(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1 << 16)  # 64 KiB free
    with pytest.raises(ValueError, match=r"counting the colour prior over batches of 8 crops of 32 x 32 needs about "
                                         r"[0-9.]+ GiB .* or give prior.path"):
        train(tiny_config("train.eval_images=0"), tmp_path / "run")
