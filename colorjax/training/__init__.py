"""Training: losses, methods (regression, classification, pix2pix, NoGAN), sharded data-parallel
steps, optax schedules, orbax checkpoints with exact resume, and the ``colorjax train`` command."""

from colorjax.training.config import apply_overrides, get_config, validate
from colorjax.training.trainer import NonFiniteLossError, train

__all__ = ["NonFiniteLossError", "apply_overrides", "get_config", "train", "validate"]
