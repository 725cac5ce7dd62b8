"""The one rule set for numeric arguments, applied at every edge (command line, Python API, the
demo's HTTP endpoints, a checkpoint's saved settings): each number is finite, in its range, and a
whole number where it counts something. Every failure is an :class:`ArgumentError` (a ValueError)
whose message names the argument (``--temperature``, ``temperature``, ``FILE: inference.size``) and
the value it got, so the edges print it as their one-line error.
"""

from __future__ import annotations

import math
import numbers

# The widest Lab ab any 8-bit Lab encoding holds (-128..127, as ICC profiles and TIFF store CIE Lab);
# every sRGB colour lies well inside (|a|, |b| < 110, the networks' AB_SCALE).
AB_LIMIT = 128.0
# The largest port number (TCP).
MAX_PORT = 65535


class ArgumentError(ValueError):
    """A numeric argument that is not a finite number in its range (the message names it)."""


def number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
           integer: bool = False) -> float | int:
    """``value`` as a finite float (an int when ``integer``) within ``[minimum, maximum]``.

    Strings, booleans, NaN, infinities, integers too large for a float and (with ``integer``)
    fractions are refused with an :class:`ArgumentError` naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name}: expected a number, got {_shown(value)}")
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        raise ArgumentError(f"{name}: expected a finite number, got {value}")
    if integer and not isinstance(value, numbers.Integral):
        if not (isinstance(value, float) and value.is_integer()):
            raise ArgumentError(f"{name}: expected a whole number, got {_shown(value)}")
        value = int(value)
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{name}: {_shown(value)} is below the minimum {_shown_limit(minimum)}")
    if maximum is not None and value > maximum:
        raise ArgumentError(f"{name}: {_shown(value)} is above the maximum {_shown_limit(maximum)}")
    if isinstance(value, int) and abs(value) > 2**53:  # keeps 400-digit integers from overflowing a float later
        raise ArgumentError(f"{name}: {_shown(value)} is out of range")
    return value


def count(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number >= ``minimum`` (a size, a batch, a number of images or steps)."""
    return number(value, name, minimum=minimum, maximum=maximum, integer=True)


def optional(check, value, name: str, **limits):
    """``check(value, name, **limits)``, or None for None (an argument not given)."""
    return None if value is None else check(value, name, **limits)


def temperature(value, name: str = "--temperature") -> float:
    """An annealed-mean temperature: finite and >= 0 (0: the mode)."""
    return float(number(value, name, minimum=0.0))


def prior_correction(value, name: str = "--prior-correction") -> float:
    """The rebalancing correction's strength S: finite, in [0, 1] (0: as trained, 1: fully undone)."""
    return float(number(value, name, minimum=0.0, maximum=1.0))


def ab_colour(value, name: str) -> tuple[float, float]:
    """A Lab ``[a, b]`` pair, each finite and within +-:data:`AB_LIMIT`."""
    a, b = value
    return (float(number(a, f"{name}: a", minimum=-AB_LIMIT, maximum=AB_LIMIT)),
            float(number(b, f"{name}: b", minimum=-AB_LIMIT, maximum=AB_LIMIT)))


def inference_arguments(**values) -> None:
    """The Python API's colorize / evaluate arguments (``size``, ``model_size``, ``batch_size``, ``max_images``,
    ``temperature``; None: not given), each named as the API names it."""
    checks = {"size": count, "model_size": count, "batch_size": count, "max_images": count, "temperature": temperature}
    for name, value in values.items():
        optional(checks[name], value, name)


def split_ratios(values, name: str = "--ratios") -> tuple[float, float, float]:
    """Three finite split ratios >= 0 summing to 1."""
    values = tuple(values)
    if len(values) != 3:
        raise ArgumentError(f"{name}: expected three ratios (train, validation, test), got {len(values)}")
    ratios = tuple(float(number(v, name, minimum=0.0)) for v in values)
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ArgumentError(f"{name}: the ratios must sum to 1, got {ratios}")
    return ratios


def port(value, name: str = "--port") -> int:
    return count(value, name, minimum=1, maximum=MAX_PORT)


def _shown_limit(limit: float) -> str:
    return f"{limit:g}" if isinstance(limit, float) else str(limit)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:20] + f"... ({len(text)} characters)"
