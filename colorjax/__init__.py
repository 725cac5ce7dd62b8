"""colorjax: automatic image colorization in JAX / Flax NNX."""

from colorjax.color import lab_to_rgb, rgb_to_lab

__all__ = ["rgb_to_lab", "lab_to_rgb"]
__version__ = "0.1.0"
