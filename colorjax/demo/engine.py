"""The demo's inference: ``colorjax colorize``'s path, split so a temperature change only re-decodes.

One upload: bytes -> header checked against a pixel limit -> decoded like every input
(:func:`colorjax.data.decode_image`) -> full-resolution L -> L resized to the model's size -> model
-> its output at the model's resolution (Q-bin logits or ab), kept for the last upload -> ab at
temperature T -> joined with the full-resolution L, every step a :class:`colorjax.inference.Colorizer`'s
(the one inference path, shared with ``colorjax colorize`` and ``colorjax evaluate``).

The model runs on one compiled shape, [1, size, size, 1]; resizing runs in NumPy and the
full-resolution pixel work in fixed-size chunks, so an upload of a new size compiles nothing. A
temperature change re-runs only the decoding of the cached logits and the join.

A model that takes hints (SIGGRAPH17, Zhang, Zhu et al. 2017) gets the page's colour points the way
``colorjax colorize --hints`` gets a hints file's: dicts parsed by :func:`colorjax.hints.as_hints`,
drawn onto the model's grid by :func:`colorjax.hints.hint_map`. Such a model always runs with a hint
map (all zero for no points), so adding, moving or removing a point compiles nothing either; it
re-runs the model on the cached small L, not the decoding of the upload.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import os
import threading
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from colorjax import validation
from colorjax.hints import HintError, as_hints, check_takes_hints
from colorjax.inference.colorizer import DEFAULT_SIZE, DEFAULT_TEMPERATURE, Colorizer
from colorjax.inference.pixels import lab_to_uint8, lightness

log = logging.getLogger("colorjax.demo")

# Uploads larger than this many pixels are refused from their header, before any pixel is decoded
# (a 45-megapixel PNG raises the server's resident memory by about 1.5 GiB on the way through,
# experiments/demo_memory.py; docs/demo.md).
DEFAULT_MAX_PIXELS = 50_000_000
# The temperatures the page's slider covers (0 = the mode of each pixel's distribution, 1 = its mean).
TEMPERATURE_RANGE = (0.0, 1.0)
# PNGs sent to the page are lossless but barely compressed: encoding time counts in every slider move.
PNG_COMPRESS_LEVEL = 1
# More points than anyone clicks; a request with more is refused rather than drawn.
MAX_HINTS = 256


class UploadError(ValueError):
    """An upload the demo refuses; the message names the file and the problem (shown on the page)."""


class UnknownUploadError(KeyError):
    """A temperature change for an upload that is no longer cached (a newer one replaced it)."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the page shows about the model."""

    name: str
    checkpoint: str
    step: int
    backbone: str
    width: float
    head: str
    bins: int | None  # Q of a classification head
    training_data: str
    size: int  # the side the model sees
    takes_hints: bool

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Rendering:
    """One result sent to the page: PNGs and the milliseconds each stage took."""

    upload_id: int
    name: str
    width: int
    height: int
    temperature: float | None  # None for a regression model
    colorized_png: bytes
    gray_png: bytes | None  # only with a new upload
    timings_ms: dict[str, float]
    hints: int = 0  # the number of colour points this result used


@dataclasses.dataclass
class _Upload:
    upload_id: int
    name: str
    L_full: np.ndarray  # [H, W, 1]
    L_small: jax.Array  # [1, size, size, 1]: what the model sees, kept for hint changes
    output: jax.Array  # [h, w, Q] logits or [h, w, 2] ab at the model's output resolution
    hints: tuple = ()  # the points ``output`` was computed with (``Hint`` objects)


def read_checkpoint_facts(directory: Path, step: int | None) -> tuple[int, dict | None]:
    """``(step, training config or None)``: the config is there when ``colorjax train`` wrote it."""
    from colorjax import checkpointing

    with checkpointing.checkpoint_manager(directory, read_only=True) as manager:
        step = checkpointing.resolve_step(manager, directory, step)
        if "train_state" not in checkpointing.saved_items(directory, step):
            return step, None
        import orbax.checkpoint as ocp

        restored = manager.restore(step, args=ocp.args.Composite(train_state=ocp.args.JsonRestore()))
        return step, restored["train_state"].get("config")


def describe_training_data(train_config: dict | None) -> str:
    if not train_config:
        return "not recorded (a saved model, not a training run)"
    data = train_config.get("data", {})
    spec = data.get("spec", "?")
    name = "the photos scikit-image and scikit-learn ship" if spec == "embedded" else spec
    method = train_config.get("method")
    crop = data.get("crop_size")
    parts = [name] + ([f"{crop} px crops"] if crop else []) + ([f"method {method}"] if method else [])
    return ", ".join(str(p) for p in parts)


def model_name(path: Path) -> str:
    """The folder a user would call the model by: a training workdir's name, not ``checkpoints``."""
    path = path.absolute()
    return path.parent.name if path.name == "checkpoints" else path.name


def check_upload_size(data: bytes, name: str, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image header; an UploadError when over ``max_pixels`` or unreadable.

    Only the header is parsed here: an oversized image is refused before any pixel is decoded.
    """
    from colorjax.data import BadImageError
    from colorjax.data.images import open_image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_image(data) as header:  # raster formats only: no external interpreter
                width, height = header.size
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise UploadError(
            f"{name}: refused: its header declares more than {limit / 1e6:.0f} megapixels; "
            f"this demo takes at most {max_pixels / 1e6:.0f} megapixels"
        ) from None
    except Exception as error:  # noqa: BLE001 - the decoder below names the problem precisely
        try:
            from colorjax.data import decode_image

            decode_image(data, name)
        except BadImageError as bad:
            raise UploadError(str(bad)) from None
        raise UploadError(f"{name}: unreadable image ({error})") from None
    if width * height > max_pixels:
        raise UploadError(
            f"{name}: refused: {width} x {height} = {width * height / 1e6:.1f} megapixels exceeds "
            f"this demo's limit of {max_pixels / 1e6:.0f} megapixels (--max-pixels)"
        )
    return width, height


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an uploaded file, decoded like every colorjax input."""
    from colorjax.data import BadImageError, decode_image

    if not data:
        raise UploadError(f"{name}: the file is empty")
    check_upload_size(data, name, max_pixels)
    try:
        return np.asarray(decode_image(data, name).image)
    except BadImageError as error:
        raise UploadError(str(error)) from None


def gray_from_lightness(L: np.ndarray) -> np.ndarray:
    """uint8 sRGB gray [H, W] of CIE L [H, W, 1] in [0, 100] (a = b = 0, D65 white)."""
    L = np.asarray(L, np.float32)
    return lab_to_uint8(L, np.zeros((*L.shape[:2], 2), np.float32))[..., 0]


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


class DemoEngine:
    """A loaded model and the last upload's model output; thread-safe (one run at a time)."""

    def __init__(self, colorizer: Colorizer, info: ModelInfo, *, max_pixels: int = DEFAULT_MAX_PIXELS):
        if colorizer.batch_size != 1 or colorizer.size != info.size:
            raise ValueError(f"the demo runs one image at a time at the size it shows ({info.size}), got a colorizer "
                             f"of batch {colorizer.batch_size} at {colorizer.size}")
        self.colorizer = colorizer
        self.info = info
        self.max_pixels = max_pixels
        self.classification = colorizer.classification
        self.takes_hints = colorizer.takes_hints
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._last: _Upload | None = None

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, *, step: int | None = None, size: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> DemoEngine:
        """Load a saved model or training workdir; ``size`` defaults to the size saved in the checkpoint
        (the training crop), else 256."""
        from colorjax.checkpointing import checkpoint_folder

        directory = Path(checkpoint_folder(path))
        step, train_config = read_checkpoint_facts(directory, step)
        crop = ((train_config or {}).get("data") or {}).get("crop_size")
        colorizer = Colorizer.from_checkpoint(directory, step=step, size=size, batch_size=1,
                                              default_size=crop or DEFAULT_SIZE)
        model_config = colorizer.model_config
        head = model_config.get("head", "?")
        info = ModelInfo(
            name=model_name(directory),
            checkpoint=str(directory),
            step=step,
            backbone=str(model_config.get("backbone", "?")),
            width=float(model_config.get("width", 1.0)),
            head=head,
            bins=int(colorizer.model.head.channels) if head == "classification" else None,
            training_data=describe_training_data(train_config),
            size=colorizer.size,
            takes_hints=colorizer.takes_hints,
        )
        return cls(colorizer, info, max_pixels=max_pixels)

    def warm_up(self) -> float:
        """Compile the model, the decoding and the pixel functions once; returns the seconds taken."""
        start = time.perf_counter()
        tiny = np.full((8, 8, 3), 128, np.uint8)
        with self._lock:
            L_full = lightness(tiny)
            L_small = self._small(L_full)
            # A hint's colour is parsed with colorjax.color's JAX functions: compiled here, not on the first click.
            hints = tuple(as_hints([{"x": 1, "y": 1, "color": "#c0392b"}], "warm-up hint")) if self.takes_hints else ()
            self._render(_Upload(0, "warm-up", L_full, L_small, self._run_model(L_small, hints, L_full.shape[:2])),
                         DEFAULT_TEMPERATURE)
        return time.perf_counter() - start

    def colorize(self, data: bytes, name: str, temperature: float = DEFAULT_TEMPERATURE) -> Rendering:
        """Colorize an uploaded file; it becomes the cached upload that :meth:`recolor` changes."""
        temperature = self._check_temperature(temperature)
        with self._lock:
            t0 = time.perf_counter()
            rgb = decode_upload(data, name, self.max_pixels)
            L_full = lightness(rgb)
            t1 = time.perf_counter()
            L_small = self._small(L_full)
            upload = _Upload(next(self._ids), name, L_full, L_small, self._run_model(L_small, (), L_full.shape[:2]))
            t2 = time.perf_counter()
            self._last = upload
            colorized = self._render(upload, temperature)
            gray_png = encode_png(gray_from_lightness(L_full))
            t3 = time.perf_counter()
        timings = {"decode": 1e3 * (t1 - t0), "model": 1e3 * (t2 - t1), "render": 1e3 * (t3 - t2), "total": 1e3 * (t3 - t0)}
        return self._rendering(upload, temperature, colorized, gray_png, timings)

    def recolor(self, upload_id: int, temperature: float, hints=None) -> Rendering:
        """The cached upload at another temperature and, given ``hints``, with those colour points.

        ``hints``: None keeps the points of the last result; a list (empty: none) replaces them,
        each a :class:`colorjax.hints.Hint` or a dict as in a hints file (``{"x", "y", "color"}``,
        pixels of the upload). The model runs again only when the points changed; a temperature
        change alone re-decodes its cached output. Bad points raise a :class:`HintError` naming the
        point, and leave the cached result as it was.
        """
        temperature = self._check_temperature(temperature)
        points = None if hints is None else self._check_hints(hints)
        with self._lock:
            upload = self._last
            if upload is None or upload.upload_id != upload_id:
                raise UnknownUploadError(f"upload {upload_id} is no longer cached; upload the image again")
            timings = {}
            t0 = time.perf_counter()
            if points is not None and points != upload.hints:
                output = self._run_model(upload.L_small, points, upload.L_full.shape[:2])
                upload.output, upload.hints = output, points
                timings["model"] = 1e3 * (time.perf_counter() - t0)
            t1 = time.perf_counter()
            colorized = self._render(upload, temperature)
            t2 = time.perf_counter()
        timings.update(render=1e3 * (t2 - t1), total=1e3 * (t2 - t0))
        return self._rendering(upload, temperature, colorized, None, timings)

    def _check_hints(self, hints) -> tuple:
        """Hints of a request as a tuple of ``Hint``; a HintError for a model without a hint input,
        too many points, or a bad point (its number and the problem; the image bounds are checked
        when the points are drawn)."""
        check_takes_hints(self.colorizer.model)
        if isinstance(hints, (str, bytes)) or not isinstance(hints, (list, tuple)):
            raise HintError(f"hints must be a list of points, got {type(hints).__name__}")
        if len(hints) > MAX_HINTS:
            raise HintError(f"{len(hints)} hints: this demo takes at most {MAX_HINTS} points")
        return tuple(as_hints(hints, "hint"))

    def _check_temperature(self, temperature: float) -> float:
        low, high = TEMPERATURE_RANGE
        return float(validation.number(temperature, "temperature", minimum=low, maximum=high))

    def _small(self, L_full: np.ndarray) -> jax.Array:
        return jnp.asarray(self.colorizer.shrink(L_full))[None]

    def _run_model(self, L_small: jax.Array, hints: tuple, image_hw: tuple[int, int]) -> jax.Array:
        """The model's output at its resolution for one image: logits (classification) or ab.

        A model that takes hints always gets a hint map ([1, size, size, 3], all zero without
        points: the same as no hints), so points never change the compiled shape.
        """
        maps = None
        if self.takes_hints:
            maps = jnp.asarray(self.colorizer.hint_map(hints, image_hw))[None]
        return self.colorizer.output(L_small, maps)[0]

    def _render(self, upload: _Upload, temperature: float) -> bytes:
        ab = self.colorizer.decode(upload.output, temperature)
        return encode_png(self.colorizer.to_srgb(upload.L_full, ab))

    def _rendering(self, upload, temperature, colorized, gray_png, timings) -> Rendering:
        height, width = upload.L_full.shape[:2]
        return Rendering(
            upload_id=upload.upload_id, name=upload.name, width=width, height=height,
            temperature=temperature if self.classification else None, colorized_png=colorized,
            gray_png=gray_png, timings_ms={k: round(v, 1) for k, v in timings.items()}, hints=len(upload.hints),
        )
