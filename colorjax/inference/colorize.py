"""Colorize images of any size: infer ab at the model's size, keep the full-resolution L.

The path of one image (Zhang et al. 2016, "inference at any size"; docs/reference.md section 2):
full-resolution RGB -> L (colour inputs are thereby desaturated: only L is used) -> L resized to
``size`` x ``size`` -> model -> ab at the output resolution -> ab resized back to the full
resolution -> joined with the full-resolution L -> sRGB.

Images are grouped in fixed-size batches so that the model runs on the device once per batch with
one compiled shape (the last batch is padded; photos of any sizes share a batch); the resizing to
and from the model's size runs in Pillow and the full-resolution pixel work in fixed-size chunks,
so a new image size compiles nothing. Decoding and encoding run in reader and writer threads beside
the device calls (:mod:`colorjax.inference.host_work`). Colours that the predicted ab puts outside
the sRGB gamut have their chroma reduced (hue and L kept) rather than their channels clipped, so the
output's L is the input's L up to 8-bit rounding.

A model that takes hints (SIGGRAPH17) can be given user hints (:mod:`colorjax.hints`): points of
the full-resolution image with a colour, drawn onto the ``size`` x ``size`` grid the net sees.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from colorjax import color
from colorjax.decode import ANNEALED_MEAN_TEMPERATURE
from colorjax.inference.host_work import enlarge_ab, pipelined, resize_linear, shrink_lightness  # noqa: F401
from colorjax.models.layers import for_inference
from colorjax.models.model import INFERENCE_SIZE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")
OUTPUT_FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg")}
JPEG_QUALITY = 95
# PNG output: zlib level 1 with run-length matching, lossless like any PNG. On 500 x 375 photos it
# writes files 2 % larger than Pillow's default level 6 in a quarter of the time (25 vs 90 CPU ms:
# at the default, encoding alone cost ten times the forward of a small model).
PNG_OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}
# Zhang et al. 2016 decode with T = 0.38 and run the net at 256 x 256 (docs/reference.md section 2).
DEFAULT_TEMPERATURE = ANNEALED_MEAN_TEMPERATURE
DEFAULT_SIZE = INFERENCE_SIZE
# Bisection steps of the chroma reduction: 2^-10 of the predicted chroma is well below 8-bit rounding.
GAMUT_BISECTION_STEPS = 10


@dataclasses.dataclass
class ColorizeSummary:
    """What a run did: the files written and, per failed input, the reason."""

    written: list[Path] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: list[Path] = dataclasses.field(default_factory=list)  # outputs that existed (no --overwrite)

    def __str__(self) -> str:
        existing = f", {len(self.skipped)} skipped (output exists; --overwrite replaces)" if self.skipped else ""
        return f"{len(self.written)} colorized{existing}, {len(self.failed)} failed"


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite colours: its parameters are diverged or corrupt."""


def checkpoint_directory(path: str | os.PathLike) -> Path:
    """The checkpoint folder of ``path``: itself, or its ``checkpoints/`` when it is a training workdir."""
    path = Path(path)
    inner = path / "checkpoints"
    return inner if inner.is_dir() and not any(p.name.isdigit() for p in path.iterdir()) else path


def find_images(inputs: Iterable[str | os.PathLike], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[tuple[Path, Path]]:
    """Expand files, folders (recursive) and glob patterns into ``(path, output name)`` pairs.

    Folders are searched for files with ``suffixes``. A folder's images keep their path relative to the folder, so equal names in sub-folders do not
    collide; a pattern or folder that matches nothing is an error naming it. A file named
    explicitly is kept whatever its suffix (reading it decides whether it is an image).
    """
    found: list[tuple[Path, Path]] = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir():
            # A dangling or looping symlink is listed too (it is not a file): reading it fails, and it
            # is then reported and skipped like any other bad input.
            files = sorted(p for p in path.rglob("*") if (p.is_file() or p.is_symlink()) and p.suffix.lower() in suffixes)
            if not files:
                raise FileNotFoundError(f"{item}: folder has no images ({', '.join(suffixes)})")
            found.extend((p, p.relative_to(path)) for p in files)
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(item):
            files = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not files:
                raise FileNotFoundError(f"{item}: pattern matches no file")
            found.extend((p, Path(p.name)) for p in files)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return _unique_names(found)


def _unique_names(found: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Drop repeated inputs; give a ``_N`` suffix to distinct inputs with equal output names."""
    seen_inputs: set[Path] = set()
    used: set[Path] = set()
    unique = []
    for path, name in found:
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):  # a symlink loop: kept, so that reading it reports it
            resolved = path.absolute()
        if resolved in seen_inputs:
            continue
        seen_inputs.add(resolved)
        stem, candidate, n = name.with_suffix(""), name.with_suffix(""), 1
        while candidate in used:
            candidate, n = Path(f"{stem}_{n}"), n + 1
        used.add(candidate)
        unique.append((path, candidate))
    return unique


def fit_chroma_to_gamut(lab: jnp.ndarray, steps: int = GAMUT_BISECTION_STEPS) -> jnp.ndarray:
    """Scale each out-of-gamut pixel's ab towards 0 until it is (just) inside sRGB; L and hue kept.

    Bisection on the scale s in [0, 1]: (L, 0, 0) is in gamut for every L in [0, 100]. Each step
    tests linear RGB against the limits that :func:`colorjax.color.out_of_gamut` puts on encoded
    sRGB: the transfer curve is increasing, so the test is the same without its power function.
    """
    L, ab = lab[..., :1], lab[..., 1:]
    inside = lambda s: _inside_gamut(jnp.concatenate([L, ab * s[..., None]], axis=-1))  # noqa: E731
    lo = jnp.where(inside(jnp.ones(lab.shape[:-1])), 1.0, 0.0)
    hi = jnp.ones(lab.shape[:-1])
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = inside(mid)
        lo, hi = jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
    return jnp.concatenate([L, ab * lo[..., None]], axis=-1)


# color.out_of_gamut's bounds on sRGB-encoded values, moved through the monotonic sRGB curve to
# linear RGB: the same test without a power function per channel and bisection step.
_LINEAR_LOW = -color.GAMUT_TOLERANCE / 12.92
_LINEAR_HIGH = ((1.0 + color.GAMUT_TOLERANCE + 0.055) / 1.055) ** 2.4


def _inside_gamut(lab: jnp.ndarray) -> jnp.ndarray:
    """``~color.out_of_gamut(lab)``, decided in linear RGB."""
    linear = color.lab_to_linear_rgb(lab)
    return jnp.all((linear >= _LINEAR_LOW) & (linear <= _LINEAR_HIGH), axis=-1)


# Full-resolution pixel work runs in fixed-size chunks of flattened pixels: one compiled shape serves
# images of every size (jit per image shape would recompile for each new size).
PIXEL_CHUNK = 1 << 16  # a 500 x 375 photo: 3 chunks, 5 % padding
# The chroma bisection runs only on the pixels whose predicted colour is outside the gamut, gathered
# into chunks of this many (usually a small share of a photo: a large chunk would be mostly padding).
GAMUT_CHUNK = 1 << 14


def _map_chunks(fn, flat: Sequence[np.ndarray], chunk: int) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` to rows [N, C_i] of ``flat`` in chunks of ``chunk`` (the last one zero-padded);
    returns each of its outputs [N, ...] concatenated over the chunks."""
    n = flat[0].shape[0]
    padded = -(-n // chunk) * chunk
    flat = [np.pad(a, ((0, padded - n), (0, 0))) for a in flat]
    parts = []
    for i in range(0, padded, chunk):
        out = fn(*(a[i : i + chunk] for a in flat))
        parts.append(tuple(np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(np.concatenate(outs)[:n] for outs in zip(*parts))


def map_pixels(fn, *arrays: np.ndarray) -> np.ndarray:
    """Apply the jitted per-pixel ``fn`` to arrays [H, W, C_i] chunk by chunk; returns [H, W, C_out]."""
    H, W = arrays[0].shape[:2]
    (out,) = _map_chunks(fn, [np.asarray(a).reshape(H * W, -1) for a in arrays], PIXEL_CHUNK)
    return out.reshape(H, W, -1)


@jax.jit
def _lightness_pixels(rgb_uint8):
    return color.rgb_uint8_to_lab(rgb_uint8)[..., :1]


def _lab_pixels_to_uint8(L, ab):
    """uint8 sRGB of Lab pixels, the chroma of those outside the gamut reduced first."""
    rgb = color.lab_to_rgb(fit_chroma_to_gamut(jnp.concatenate([L, ab], axis=-1)))
    return jnp.round(rgb * 255.0).astype(jnp.uint8)


def _lab_pixels_to_uint8_if_inside(L, ab):
    """``(uint8 sRGB, inside)``: the conversion of :func:`_lab_pixels_to_uint8` for the pixels
    inside the gamut (where the bisection keeps the scale at exactly 1), and which pixels those are."""
    lab = jnp.concatenate([L, ab], axis=-1)
    return jnp.round(color.lab_to_rgb(lab) * 255.0).astype(jnp.uint8), _inside_gamut(lab)


_PROGRAMS_LOCK = threading.Lock()
_PIXEL_PROGRAMS: list = []  # (convert, fit) once compiled


def _compiled_pixel_programs():
    """Both full-resolution programs, compiled together on first use: which photos come first
    (some with colours outside the gamut, some without) never changes what a later run compiles."""
    f32 = lambda n, c: jax.ShapeDtypeStruct((n, c), jnp.float32)  # noqa: E731
    with _PROGRAMS_LOCK:  # writer threads: the first one compiles, the others wait for it
        if not _PIXEL_PROGRAMS:
            _PIXEL_PROGRAMS.extend([
                jax.jit(_lab_pixels_to_uint8_if_inside).lower(f32(PIXEL_CHUNK, 1), f32(PIXEL_CHUNK, 2)).compile(),
                jax.jit(_lab_pixels_to_uint8).lower(f32(GAMUT_CHUNK, 1), f32(GAMUT_CHUNK, 2)).compile(),
            ])
    return _PIXEL_PROGRAMS


def lab_to_uint8(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution L [H, W, 1] and ab [H, W, 2] -> uint8 sRGB [H, W, 3], out-of-gamut chroma
    reduced by :func:`fit_chroma_to_gamut`; the bisection runs on the out-of-gamut pixels only."""
    H, W = L.shape[:2]
    convert, fit = _compiled_pixel_programs()
    L = np.asarray(L, np.float32).reshape(H * W, 1)
    ab = np.asarray(ab, np.float32).reshape(H * W, 2)
    rgb, inside = _map_chunks(convert, [L, ab], PIXEL_CHUNK)
    outside = np.flatnonzero(~inside)
    if outside.size:
        (rgb[outside],) = _map_chunks(fit, [L[outside], ab[outside]], GAMUT_CHUNK)
    return rgb.reshape(H, W, 3)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
    """L [H, W, 1] of a uint8 RGB image (gray images are stored with R = G = B)."""
    return map_pixels(_lightness_pixels, rgb_uint8)


def check_size(model: nnx.Module, size: int) -> None:
    """A ValueError, before any work, when the model cannot run at ``size`` x ``size``."""
    side = size + 2 * getattr(model, "border", 0)
    model.check_input(jax.ShapeDtypeStruct((1, side, side, 1), jnp.float32))


def predict_ab_covering(model: nnx.Module, L: jnp.ndarray, temperature: float, hints=None) -> jnp.ndarray:
    """ab at the model's output resolution covering all of L [B, S, S, 1] (traceable).

    A backbone with valid convolutions loses ``model.border`` pixels per side; L is edge-padded by
    that much first, so the output still covers the whole input.
    """
    pad = getattr(model, "border", 0)
    if pad:
        L = jnp.pad(L, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
        if hints is not None:  # no hint in the padding
            hints = jnp.pad(hints, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    if hints is None:
        return model.predict_ab(L, temperature=temperature)
    return model.predict_ab(L, temperature=temperature, hints=hints)


@nnx.jit
def _predict_ab(model: nnx.Module, L_small: jnp.ndarray, temperature: jnp.ndarray, hints=None) -> jnp.ndarray:
    return predict_ab_covering(model, L_small, temperature, hints)


def predict_ab_batch(model: nnx.Module, L_small: jnp.ndarray, temperature: float, hints=None) -> jnp.ndarray:
    """ab at the model's output resolution for a batch of L [B, size, size, 1] (and hints
    [B, size, size, 3] for a model that takes them), jitted (T traced)."""
    return _predict_ab(model, L_small, jnp.float32(temperature), hints)


def join_full_resolution(L_full: np.ndarray, ab_small: jnp.ndarray) -> np.ndarray:
    """Bilinear-upsample ab [h, w, 2] to L's [H, W] and return the joined image as uint8 sRGB."""
    H, W = L_full.shape[:2]
    ab = enlarge_ab(np.asarray(ab_small), H, W)  # Pillow: no program traced per image size
    return lab_to_uint8(L_full, ab)


def colorize_arrays(
    model: nnx.Module,
    images: Sequence[np.ndarray],
    *,
    size: int = DEFAULT_SIZE,
    temperature: float = DEFAULT_TEMPERATURE,
    batch_size: int = 8,
    hints=None,
) -> list[np.ndarray]:
    """Colorize uint8 RGB (or gray [H, W]) images of any sizes; each output matches its input's size.

    ``hints`` (models that take them): one list of hints (:class:`colorjax.hints.Hint` or dicts as
    in the hints file) for every image, or one such list (or None) per image.
    """
    from colorjax.hints import hints_per_image

    per_image = hints_per_image(model, hints, len(images))
    return _colorize_arrays(for_inference(model), images, size, temperature, batch_size, per_image)


def _colorize_arrays(model, images, size, temperature, batch_size, hints=None) -> list[np.ndarray]:
    """:func:`colorize_arrays` with a model from :func:`for_inference` (evaluation mode, Winograd
    kernels transformed once) and ``hints`` None or one list per image."""
    out: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        batch_hints = None if hints is None else hints[start : start + batch_size]
        out.extend(_colorize_batch(model, images[start : start + batch_size], size, temperature, batch_size, batch_hints))
    return out


def _colorize_batch(model, images, size, temperature, batch_size, hints=None) -> list[np.ndarray]:
    from colorjax.hints import hint_map

    rgbs = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im[..., :3] for im in images]
    maps = None if hints is None else [hint_map(h, rgb.shape[:2], size) for h, rgb in zip(hints, rgbs)]
    L_full = [lightness(rgb) for rgb in rgbs]
    L_small = [shrink_lightness(L, size) for L in L_full]  # numpy: no program traced per image size
    L_small += [L_small[-1]] * (batch_size - len(L_small))  # pad: one compiled shape for all batches
    if maps is not None:
        maps = jnp.stack(maps + [np.zeros_like(maps[0])] * (batch_size - len(maps)))
    ab_small = predict_ab_batch(model, jnp.stack(L_small), temperature, maps)
    check_finite_output(ab_small[: len(L_full)])
    return [join_full_resolution(L, ab_small[i]) for i, L in enumerate(L_full)]


def check_finite_output(ab) -> None:
    """A :class:`NonFiniteOutputError` when predicted ab holds NaN or infinity (a diverged model
    would otherwise give black or gray images that look like a result)."""
    ab = np.asarray(ab)
    if not np.isfinite(ab).all():
        raise NonFiniteOutputError(
            f"the model's output holds NaN or infinity in {int(np.sum(~np.isfinite(ab)))} of {ab.size} ab values: "
            f"its parameters are diverged or corrupt; use an earlier checkpoint"
        )


def output_path(out_dir: str | os.PathLike, name: Path, fmt: str) -> Path:
    """Where the output of the input named ``name`` goes."""
    return Path(out_dir) / name.with_name(name.name + OUTPUT_FORMATS[fmt][1])


def probe_writable(folder: Path) -> None:
    """Create ``folder`` (with its parents) and write a temporary file in it; an OSError when either fails."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def check_output_folder(out_dir: str | os.PathLike) -> None:
    """A ValueError, before any work, when ``out_dir`` names a file or cannot be created or written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out names a file, not a folder")
    try:
        probe_writable(out)
    except OSError as error:
        raise ValueError(f"{out}: the output folder cannot be written ({error.strerror or error})") from None


def check_outputs_spare_inputs(todo: list[tuple[Path, Path]], out_dir, fmt: str) -> None:
    """A ValueError when an output would replace one of the inputs (e.g. ``--out`` the input folder
    and ``--format`` the inputs' own type)."""
    inputs = {_resolved(path) for path, _ in todo}
    for path, name in todo:
        target = _resolved(output_path(out_dir, name, fmt))
        if target in inputs:
            raise ValueError(f"{target}: the output for {path} would replace an input; choose another --out")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def save_image(rgb: np.ndarray, path: Path, fmt: str) -> None:
    """Write uint8 RGB as PNG or JPEG (quality 95), creating parent folders."""
    pil_format, _ = OUTPUT_FORMATS[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": JPEG_QUALITY} if pil_format == "JPEG" else PNG_OPTIONS
    Image.fromarray(rgb).save(path, format=pil_format, **options)


def colorize_files(
    model: nnx.Module,
    inputs: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    size: int = DEFAULT_SIZE,
    temperature: float = DEFAULT_TEMPERATURE,
    batch_size: int = 8,
    fmt: str = "png",
    progress: bool = True,
    on_error: Callable[[Path, str], None] | None = None,
    overwrite: bool = False,
    hints=None,
    entries: list[tuple[Path, Path]] | None = None,
) -> ColorizeSummary:
    """Colorize files, folders and globs into ``out_dir``; a bad file is reported and skipped.
    ``entries``: ``(path, output name)`` pairs already found by :func:`find_images`, in place of ``inputs``.

    An output that already exists is kept and counted as skipped unless ``overwrite``; an output
    that would replace an input, and an ``out_dir`` that cannot be written, are refused before any
    work. A model whose output is not finite raises :class:`NonFiniteOutputError`.

    Returns a :class:`ColorizeSummary`; ``on_error(path, reason)`` is called for each bad file as
    it is met (the command line prints it). ``hints``: a :class:`colorjax.hints.HintFile` (its
    points for every image and those named for each file); an image whose hints do not fit it (a
    point outside it) is reported and skipped like a bad file.
    """
    from tqdm.auto import tqdm

    from colorjax.data import BadImageError, load_image

    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"output format {fmt!r}: expected one of {sorted(OUTPUT_FORMATS)}")
    check_size(model, size)
    from colorjax.hints import HintError, check_takes_hints, hint_map

    if hints is not None:
        check_takes_hints(model)
    todo = find_images(inputs) if entries is None else list(entries)
    check_outputs_spare_inputs(todo, out_dir, fmt)
    check_output_folder(out_dir)
    model = for_inference(model)
    summary = ColorizeSummary()
    if not overwrite:
        exists = [(path, name) for path, name in todo if output_path(out_dir, name, fmt).exists()]
        summary.skipped = [output_path(out_dir, name, fmt) for _, name in exists]
        todo = [item for item in todo if item not in exists]
    bar = tqdm(total=len(todo), unit="img", desc="colorize", disable=not progress)

    def load(entry):  # reader threads: decode, L at full resolution and at the model's size, hints
        rgb = load_image(entry[0])
        hint = None if hints is None else hint_map(hints.for_image(entry[0]), rgb.shape[:2], size)
        L_full = lightness(rgb)
        return L_full, shrink_lightness(L_full, size), hint

    def run_batch(loaded):  # this thread: one device call per batch, one compiled shape
        L_small = [small for _, small, _ in loaded]
        L_small += [L_small[-1]] * (batch_size - len(L_small))
        maps = None
        if hints is not None:
            maps = [hint for _, _, hint in loaded]
            maps = jnp.stack(maps + [np.zeros_like(maps[0])] * (batch_size - len(maps)))
        ab_small = np.asarray(predict_ab_batch(model, jnp.stack(L_small), temperature, maps))[: len(loaded)]
        check_finite_output(ab_small)
        return ab_small

    def finish(entry, loaded, ab_small):  # writer threads: full-resolution Lab -> sRGB, encode, write
        target = output_path(out_dir, entry[1], fmt)
        save_image(join_full_resolution(loaded[0], ab_small), target, fmt)
        return target

    for (path, _), target, error in pipelined(todo, load, run_batch, finish, batch_size=batch_size):
        if error is None:
            summary.written.append(target)
        elif isinstance(error, (BadImageError, OSError, HintError)):
            summary.failed[str(path)] = str(error)
            if on_error is not None:
                on_error(path, str(error))
        else:
            raise error
        bar.update(1)
    bar.close()
    return summary
