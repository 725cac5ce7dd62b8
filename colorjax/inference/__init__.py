"""Inference: one :class:`Colorizer` from a checkpoint colorizes images of any size (Python API,
``colorjax colorize``, ``colorjax evaluate`` and the demo all run through it)."""

from colorjax.inference.colorize import ColorizeSummary, colorize_arrays, colorize_files, find_images
from colorjax.inference.colorizer import Colorizer, NonFiniteOutputError
from colorjax.inference.pixels import fit_chroma_to_gamut

__all__ = [
    "ColorizeSummary", "Colorizer", "NonFiniteOutputError", "colorize_arrays", "colorize_files", "find_images",
    "fit_chroma_to_gamut",
]
