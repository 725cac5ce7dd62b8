"""Robust decoding of one image file or byte string into upright 8-bit sRGB.

Every input the pipeline, the dataset builder and ``colorjax colorize`` meet goes through
``decode_image``; what happens to each kind of input:

- EXIF orientation: applied (the pixels are rotated / mirrored upright).
- grayscale (``1``, ``L``) and palette (``P``): converted to RGB (gray stays gray, R = G = B).
- 16-bit and 32-bit integer grayscale (``I;16``, ``I``): scaled from [0, 65535] to [0, 255] by
  rounding ``v / 257`` (Pillow's own ``convert`` would clip them to 255 instead).
- float grayscale (``F``): taken as [0, 1], clipped, scaled to [0, 255].
- 16-bit RGB: Pillow keeps the high byte of each sample.
- alpha (``RGBA``, ``LA``, ``PA``, palette with transparency): composited over white.
- CMYK, and any image whose embedded ICC profile is not sRGB: converted to sRGB through the
  profile with LittleCMS (``PIL.ImageCms``); CMYK without a profile uses Pillow's plain formula.
- more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb): ``BadImageError``,
  checked from the header before any pixel is decoded.
- corrupt, truncated, unreadable or non-image data: ``BadImageError`` naming the file.
- any format but the raster formats of :data:`RASTER_FORMATS`, whatever the file's name (EPS and
  PostScript above all, which Pillow would hand to Ghostscript, an interpreter): ``BadImageError``;
  no external program ever runs. :func:`open_image` is the one place colorjax opens image data.
- a path that is not a regular file (a FIFO, a device such as ``/dev/zero``, also through a
  symbolic link) or a file larger than :func:`max_file_bytes`: ``BadImageError``, before reading.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import warnings

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from colorjax.safe_files import UnreadableFileError, read_regular_file

_GRAY_MODES = {"1", "L"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_WHITE = (255, 255, 255)
# The formats colorjax reads, and the only Pillow plugins ever tried (``Image.open``'s ``formats=``):
# Pillow picks a plugin from the content, not the name, and its EPS plugin runs Ghostscript on
# whatever a file holds. (Pillow's JPEG plugin also opens the multi-picture JPEGs that cameras write.)
RASTER_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP", "GIF")


class BadImageError(ValueError):
    """An input that cannot be read as an image; the message names the file and the problem."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An opened, upright, sRGB ``PIL.Image`` in mode RGB, and what was done to get it."""

    image: Image.Image
    source_format: str | None  # "JPEG", "PNG", ... as Pillow detected it
    conversions: tuple[str, ...]  # e.g. ("exif-rotated", "cmyk"); empty if the file was plain RGB


def max_file_bytes() -> int:
    """The largest image file read: no image within ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's default
    when unset) needs more than 8 bytes a pixel (16-bit RGBA, uncompressed) and 16 MiB of metadata."""
    pixels = Image.MAX_IMAGE_PIXELS or _PILLOW_DEFAULT_MAX_PIXELS
    return 8 * pixels + (16 << 20)


_PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # PIL.Image's own default


def read_image_file(path: str | os.PathLike) -> bytes:
    """The bytes of the image file ``path``: a regular file of at most :func:`max_file_bytes`, checked
    before reading (a FIFO never blocks, ``/dev/zero`` is never read); ``BadImageError`` otherwise."""
    name = os.fspath(path)
    try:
        return read_regular_file(name, max_file_bytes())
    except UnreadableFileError as error:
        raise BadImageError(name, str(error)) from error
    except OSError as error:
        raise BadImageError(name, f"cannot read the file ({error.strerror or error})") from error


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file into uint8 RGB ``[H, W, 3]`` (see the module docstring for each kind)."""
    return np.asarray(decode_image(read_image_file(path), os.fspath(path)).image)


def decode_image(data: bytes, name: str = "<bytes>", *, min_side: int | None = None) -> DecodedImage:
    """Decodes encoded image bytes into an upright sRGB RGB image.

    ``min_side``: when given, a JPEG may be decoded at a reduced DCT scale (``Image.draft``) as
    long as both sides stay at least ``min_side`` pixels, which makes small crops much cheaper.
    """
    image = _open(data, name)
    if min_side is not None and image.format == "JPEG":
        image.draft(image.mode, (min_side, min_side))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's EXIF / ICC chatter; real failures raise
            image.load()
            source_format = image.format
            conversions = []
            if _orientation(image) in range(2, 9):
                image = ImageOps.exif_transpose(image)
                conversions.append("exif-rotated")
    except (OSError, SyntaxError, ValueError, SystemError, EOFError) as error:
        raise BadImageError(name, f"corrupt or truncated image data ({error})") from error
    return DecodedImage(_to_srgb(image, name, conversions), source_format, tuple(conversions))


def _open(data: bytes, name: str) -> Image.Image:
    """Opens the header only, refusing non-images and decompression bombs before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = open_image(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImageError(name, f"decompression bomb refused ({error})") from error
    except UnidentifiedImageError as error:
        raise BadImageError(
            name, f"not an image in a format colorjax reads ({', '.join(RASTER_FORMATS)}): not decoded"
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadImageError(name, f"unreadable image header ({error})") from error
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        raise BadImageError(
            name,
            f"decompression bomb refused: {image.width} x {image.height} pixels exceeds "
            f"PIL.Image.MAX_IMAGE_PIXELS = {limit}",
        )
    if image.width == 0 or image.height == 0:
        raise BadImageError(name, "image has zero width or height")
    return image


def open_image(data: bytes) -> Image.Image:
    """The lazily opened image of ``data`` (its header parsed, no pixel decoded), tried only as the
    :data:`RASTER_FORMATS`; raises ``PIL.UnidentifiedImageError`` for anything else."""
    return Image.open(io.BytesIO(data), formats=RASTER_FORMATS)


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)  # EXIF Orientation tag
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make a readable image bad
        return None


def _to_srgb(image: Image.Image, name: str, conversions: list[str]) -> Image.Image:
    mode = image.mode
    icc = image.info.get("icc_profile")
    if mode == "P":
        conversions.append("palette")
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        conversions.append("16-bit")
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
        mode = "L"
    elif mode == "F":
        conversions.append("float")
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        image = Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8), "L")
        mode = "L"
    if mode in _ALPHA_MODES:
        conversions.append("alpha")
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        image = Image.alpha_composite(background, rgba).convert("RGB")
        mode = "RGB"
    if mode in _GRAY_MODES:
        conversions.append("gray")
        return image.convert("RGB")
    if mode == "CMYK":
        conversions.append("cmyk")
    if icc and mode in ("RGB", "CMYK"):
        converted = _apply_icc(image, icc)
        if converted is not None:
            conversions.append("icc")
            return converted
    if mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise BadImageError(name, f"unsupported image mode {mode!r} ({error})") from error


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _apply_icc(image: Image.Image, icc: bytes) -> Image.Image | None:
    """Converts through the embedded profile to sRGB; None if the profile is sRGB or unusable."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode == "RGB" and "srgb" in ImageCms.getProfileDescription(profile).lower():
            return None
        return ImageCms.profileToProfile(image, profile, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
