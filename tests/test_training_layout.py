"""Where a training run lives: ``colorjax/training/trainer.py`` reads the config; the modules it
calls take values (or, for the optimizer, the config's optimizer groups); the model is traced once."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[1] / "colorjax" / "training"
# The run itself, the optimizer module it calls with the config, the config's own module, and the
# command that loads a config file and calls train.
TAKES_THE_CONFIG = {"trainer", "optim", "init_from", "config", "commands"}


def _functions_taking_config(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            args = node.args
            params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            if "config" in params:
                names.append(getattr(node, "name", "<lambda>"))
    return names


def test_the_training_config_is_read_in_the_trainer_and_the_optimizer_only():
    crossings = {path.stem: _functions_taking_config(path) for path in TRAINING.glob("*.py")}
    elsewhere = {module: names for module, names in crossings.items() if names and module not in TAKES_THE_CONFIG}
    assert not elsewhere, f"functions outside trainer.py taking the run's config: {elsewhere}"
    assert "train" in crossings["trainer"]


def test_the_model_is_traced_once_before_compiling(tiny_config, tmp_path, monkeypatch):
    """One abstract trace of the model checks the crop and gives the output stride; the steps are
    then compiled once each (no second check with placeholder bins)."""
    from colorjax.training import trainer

    traced = []
    real = trainer.check_model

    def counting(model_fn, crop_size, batch_size=1):
        traced.append((crop_size, batch_size))
        return real(model_fn, crop_size, batch_size)

    monkeypatch.setattr(trainer, "check_model", counting)
    config = tiny_config(**{"train.num_steps": 1, "train.eval_every": 0, "train.eval_images": 0,
                            "train.checkpoint_every": 1})
    summary = trainer.train(config, tmp_path)
    assert summary["steps"] == 1
    assert traced == [(config.data.crop_size, 1)]
