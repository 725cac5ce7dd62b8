"""colorjax: automatic image colorization in JAX / Flax NNX.

The colour-science and bin functions import eagerly (they need only jax and numpy); the model,
checkpoint, training and inference entry points import on first use, so ``import colorjax`` stays
cheap for a script that only converts colours.
"""

import importlib

from colorjax.bins import nearest_bin, soft_encode, zhang_bins
from colorjax.color import lab_to_rgb, rgb_to_lab
from colorjax.decode import annealed_mean

# name -> module that defines it, imported when the name is first used
_LAZY = {
    "ColourPrior": "colorjax.prior",
    "build_model": "colorjax.models",
    "save_model": "colorjax.checkpointing",
    "load_model": "colorjax.checkpointing",
    "colorize_files": "colorjax.inference",
    "colorize_arrays": "colorjax.inference",
    "Colorizer": "colorjax.inference",
    "Hint": "colorjax.hints",
    "load_hints": "colorjax.hints",
    "make_loader": "colorjax.data",
    "load_image": "colorjax.data",
    "get_config": "colorjax.training",
    "train": "colorjax.training",
}

__all__ = ["rgb_to_lab", "lab_to_rgb", "zhang_bins", "nearest_bin", "soft_encode", "annealed_mean", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'colorjax' has no attribute {name!r}")
