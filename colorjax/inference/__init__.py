"""Inference: colorize images of any size from a checkpoint (Python API and ``colorjax colorize``)."""

from colorjax.inference.colorize import (
    ColorizeSummary,
    checkpoint_directory,
    colorize_arrays,
    colorize_files,
    find_images,
    fit_chroma_to_gamut,
)

__all__ = [
    "ColorizeSummary", "checkpoint_directory", "colorize_arrays", "colorize_files", "find_images",
    "fit_chroma_to_gamut",
]
