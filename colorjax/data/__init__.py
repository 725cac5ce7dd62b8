"""Datasets and the input pipeline: sources, the folder builder, robust decoding, grain loader."""

from colorjax.data.folder import build_folder_dataset
from colorjax.data.images import BadImageError, decode_image, load_image
from colorjax.data.pipeline import Loader, LoaderIterator, NoUsableImagesError, make_loader

__all__ = [
    "BadImageError",
    "Loader",
    "LoaderIterator",
    "build_folder_dataset",
    "decode_image",
    "load_image",
    "make_loader",
    "NoUsableImagesError",
]
