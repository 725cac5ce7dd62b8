"""Evaluation: metrics of checkpoints and baselines on a dataset, and the papers' tables."""

from colorjax.evaluation.baselines import BASELINES, baseline_predictor
from colorjax.evaluation.evaluate import evaluate, model_predictor
from colorjax.grids import image_grid

__all__ = ["BASELINES", "baseline_predictor", "evaluate", "image_grid", "model_predictor"]
