"""User hints for the user-guided network (Zhang, Zhu et al. 2017): points with a colour, turned
into the net's (ab map, mask) input.

A hint is a point ``(x, y)`` of the input image, in pixels (x to the right, y down, from the
top-left pixel's corner; any value in [0, W) x [0, H)) or in fractions of the width and height
([0, 1]), a colour given as ``"#rrggbb"`` (sRGB; only its ab is used, the image keeps its own L) or
as Lab ``[a, b]``, and a patch side in pixels of the net's input (default
:data:`DEFAULT_PATCH`). :func:`hint_map` draws the hints onto the ``size`` x ``size`` grid the net
sees: each patch gets the hint's ab and mask 1; a later hint overwrites an earlier one where they
overlap.

The JSON file of ``colorjax colorize --hints``::

    {"units": "pixels",
     "points": [{"x": 120, "y": 45, "color": "#c0392b"},
                {"x": 0.5, "y": 0.8, "units": "fraction", "ab": [20, -35], "size": 5}],
     "images": {"beach.jpg": [{"x": 10, "y": 20, "color": "#2e86c1"}]}}

``points`` apply to every input, ``images`` (by file name) to one; ``units`` (``pixels`` or
``fraction``) is set for the file and may be overridden per point. A bare list is the same as
``{"points": [...]}``. Every error names the file and the point.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from colorjax import validation

UNITS = ("pixels", "fraction")
# A small square, as a click of the paper's interface gives; training draws sides of 1-9 px.
DEFAULT_PATCH = 3
HEX_COLOUR = re.compile(r"^#([0-9a-fA-F]{6})$")
HINT_CHANNELS = 3  # a, b, mask


class HintError(ValueError):
    """A hint that cannot be used: bad colour, point outside the image, bad patch size, bad file."""


@dataclasses.dataclass(frozen=True)
class Hint:
    """One user hint: a point, its colour as Lab ab, and the side of its square patch."""

    x: float
    y: float
    ab: tuple[float, float]
    size: int = DEFAULT_PATCH
    units: str = "pixels"
    name: str = "hint"  # how errors refer to it ("hints.json: point 2")

    def __post_init__(self):
        if self.units not in UNITS:
            raise HintError(f"{self.name}: units {self.units!r}: expected one of {', '.join(UNITS)}")
        if not (isinstance(self.size, int) and self.size >= 1):
            raise HintError(f"{self.name}: patch size {self.size!r}: expected a whole number of pixels >= 1")
        try:
            for axis in ("x", "y"):
                validation.number(getattr(self, axis), f"{self.name}: {axis}")
        except validation.ArgumentError as error:
            raise HintError(str(error)) from None

    def grid_position(self, image_hw: tuple[int, int], size: int) -> tuple[int, int]:
        """(row, column) of the hint on the ``size`` x ``size`` grid; an error if outside the image."""
        height, width = image_hw
        if self.units == "fraction":
            if not (0 <= self.x <= 1 and 0 <= self.y <= 1):
                raise HintError(f"{self.name}: ({self.x}, {self.y}) is outside the image: fractions must be in [0, 1]")
            fx, fy = self.x, self.y
        else:
            if not (0 <= self.x < width and 0 <= self.y < height):
                raise HintError(
                    f"{self.name}: ({self.x}, {self.y}) is outside the {width} x {height} image "
                    f"(pixels: 0 <= x < {width}, 0 <= y < {height})"
                )
            fx, fy = (math.floor(self.x) + 0.5) / width, (math.floor(self.y) + 0.5) / height
        return min(int(fy * size), size - 1), min(int(fx * size), size - 1)


def parse_colour(value, name: str = "hint") -> tuple[float, float]:
    """Lab ab of ``"#rrggbb"`` (sRGB, D65) or of ``[a, b]``; a HintError naming ``name`` otherwise."""
    if isinstance(value, str):
        match = HEX_COLOUR.match(value.strip())
        if not match:
            raise HintError(f"{name}: colour {value!r} is not '#rrggbb' (e.g. '#c0392b') nor Lab ab [a, b]")
        from colorjax.color import rgb_uint8_to_lab

        rgb = np.frombuffer(bytes.fromhex(match.group(1)), np.uint8).reshape(1, 3)
        lab = np.asarray(rgb_uint8_to_lab(rgb))[0]
        return float(lab[1]), float(lab[2])
    if (isinstance(value, Sequence) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        try:
            return validation.ab_colour(value, f"{name}: colour")
        except validation.ArgumentError as error:
            raise HintError(f"{error} (Lab ab lies within +-{validation.AB_LIMIT:g})") from None
    raise HintError(f"{name}: colour {value!r} is not '#rrggbb' (e.g. '#c0392b') nor Lab ab [a, b]")


def hint_from_dict(item, name: str, units: str = "pixels") -> Hint:
    """A :class:`Hint` from ``{"x", "y", "color" | "ab", "size"?, "units"?}``."""
    if not isinstance(item, Mapping):
        raise HintError(f"{name}: expected an object with x, y and color (or ab), got {item!r}")
    unknown = sorted(set(item) - {"x", "y", "color", "colour", "ab", "size", "units"})
    if unknown:
        raise HintError(f"{name}: unknown field(s) {', '.join(unknown)}; a point has x, y, color or ab, size, units")
    if "x" not in item or "y" not in item:
        raise HintError(f"{name}: needs both x and y")
    colours = [key for key in ("color", "colour", "ab") if key in item]
    if len(colours) != 1:
        raise HintError(f"{name}: needs exactly one of color ('#rrggbb') or ab ([a, b])")
    return Hint(
        x=item["x"], y=item["y"], ab=parse_colour(item[colours[0]], name), size=item.get("size", DEFAULT_PATCH),
        units=item.get("units", units), name=name,
    )


@dataclasses.dataclass(frozen=True)
class HintFile:
    """The hints of a JSON file: ``common`` for every image, ``per_image`` by file name."""

    common: tuple[Hint, ...] = ()
    per_image: Mapping[str, tuple[Hint, ...]] = dataclasses.field(default_factory=dict)
    source: str = "hints"  # the file, for errors

    def for_image(self, path: str | os.PathLike) -> list[Hint]:
        """The hints of the image at ``path``: the common ones, then those named for its file name."""
        return [*self.common, *self.per_image.get(os.path.basename(str(path)), ())]

    def check_applies_to(self, paths: Iterable[str | os.PathLike]) -> None:
        """A HintError naming the file and the key when an ``images`` entry names no input's file
        name (another file, or a path such as ``../in/photo.jpg``): its hints would be dropped."""
        names = {os.path.basename(str(path)) for path in paths}
        unmatched = [key for key in self.per_image if key not in names]
        if unmatched:
            shown = ", ".join(repr(key) for key in unmatched[:5]) + (" ..." if len(unmatched) > 5 else "")
            raise HintError(f"{self.source}: images {shown} match(es) no input file; keys are file names "
                            f"without folders (e.g. 'photo.jpg')")


def hints_from_json(data, source: str = "hints") -> HintFile:
    """A :class:`HintFile` from the parsed JSON of a hints file (see the module docstring)."""
    if isinstance(data, list):
        data = {"points": data}
    if not isinstance(data, Mapping):
        raise HintError(f"{source}: expected an object with 'points' (or a list of points)")
    unknown = sorted(set(data) - {"points", "images", "units"})
    if unknown:
        raise HintError(f"{source}: unknown field(s) {', '.join(unknown)}; expected points, images, units")
    units = data.get("units", "pixels")
    if units not in UNITS:
        raise HintError(f"{source}: units {units!r}: expected one of {', '.join(UNITS)}")

    def points(items, where: str) -> tuple[Hint, ...]:
        if not isinstance(items, list):
            raise HintError(f"{source}: {where} must be a list of points")
        return tuple(hint_from_dict(item, f"{source}: {where} {i + 1}", units) for i, item in enumerate(items))

    images = data.get("images", {})
    if not isinstance(images, Mapping):
        raise HintError(f"{source}: images must map file names to lists of points")
    return HintFile(
        common=points(data.get("points", []), "point"),
        per_image={str(k): points(v, f"image {k!r} point") for k, v in images.items()},
        source=source,
    )


def load_hints(path: str | os.PathLike) -> HintFile:
    """Read a hints JSON file; a HintError naming the file for unreadable JSON or a bad point."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError as error:
        raise HintError(f"{path}: the hints file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise HintError(f"{path}: the hints file nests too deeply to be a hints file") from None
    except ValueError as error:  # JSONDecodeError, or an integer of more digits than Python converts
        raise HintError(f"{path}: not valid JSON: {error}") from None
    except OSError as error:
        raise HintError(f"{path}: cannot read the hints file: {error.strerror or error}") from error
    return hints_from_json(data, str(path))


def as_hints(items: Iterable, source: str = "hints") -> list[Hint]:
    """Hints from :class:`Hint` objects or JSON-like dicts (the Python API's ``hints=``)."""
    return [item if isinstance(item, Hint) else hint_from_dict(item, f"{source} {i + 1}") for i, item in enumerate(items)]


def hint_map(hints: Iterable[Hint], image_hw: tuple[int, int], size: int) -> np.ndarray:
    """The net's hint input [size, size, 3] = (a, b, mask) for an image of ``image_hw`` (H, W)."""
    out = np.zeros((size, size, HINT_CHANNELS), np.float32)
    for hint in hints:
        row, col = hint.grid_position(image_hw, size)
        top, left = row - hint.size // 2, col - hint.size // 2  # an even side reaches one more up / left
        rows = slice(max(top, 0), min(top + hint.size, size))
        cols = slice(max(left, 0), min(left + hint.size, size))
        out[rows, cols] = (*hint.ab, 1.0)
    return out


def check_takes_hints(model) -> None:
    """A HintError when ``model`` has no hint input (every backbone but SIGGRAPH17)."""
    if not getattr(model, "takes_hints", False):
        backbone = type(getattr(model, "backbone", model)).__name__
        raise HintError(f"this model ({backbone} backbone) takes no hints; hints need a user-guided model (siggraph17)")


def hints_per_image(model, hints, count: int) -> list[list[Hint]] | None:
    """``hints`` of the Python API as one list per image (None: no hints), checked against ``model``.

    ``hints`` is one list of hints for all ``count`` images or a list of ``count`` lists (or None).
    """
    if hints is None:
        return None
    check_takes_hints(model)
    hints = list(hints)
    if hints and all(item is None or (isinstance(item, Sequence) and not isinstance(item, (str, Mapping)))
                     for item in hints):
        if len(hints) != count:
            raise HintError(f"hints: {len(hints)} lists of hints for {count} images")
        return [as_hints(item or [], f"image {i + 1} hint") for i, item in enumerate(hints)]
    common = as_hints(hints)
    return [common] * count
