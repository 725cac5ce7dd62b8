"""What every backbone declares: the contract :func:`colorjax.models.build_model` checks.

A backbone maps L [B, H, W, 1] (and, if it takes them, user hints [B, H, W, 3]) to the layer its
head interprets, at ``1 / output_stride`` of the input's resolution. It declares, as class or
instance attributes:

- ``output_stride``: the input pixels per output pixel along each side (1: full resolution);
- ``border``: input pixels lost on each side (valid convolutions; 0 when every conv is padded):
  inference edge-pads the input by this much so that the output covers the whole image;
- ``input_multiple``: H and W must be multiples of it (the product of the subsamplings);
- ``takes_hints``: whether it takes user hints beside L (SIGGRAPH17);
- ``OPTIONS``: the constructor options ``build_model`` passes through from a model config;
- ``TAKES_HEAD_KIND``: whether its constructor takes ``head_kind`` (which output it ends in);

and :meth:`Backbone.outputs` gives its head's input and, for a backbone with an auxiliary
classification branch, that branch's logits. A missing or ill-typed declaration is an error when
the model is built, never a silent default.
"""

from __future__ import annotations

import jax
from flax import nnx

CONTRACT = {"output_stride": (int, 1), "border": (int, 0), "input_multiple": (int, 1), "takes_hints": (bool, 0)}


class Backbone(nnx.Module):
    """The base of every backbone; subclasses set the declarations of this module's docstring."""

    takes_hints = False
    OPTIONS: tuple[str, ...] = ()
    TAKES_HEAD_KIND = False

    def outputs(self, L: jax.Array, hints: jax.Array | None = None) -> tuple[jax.Array, jax.Array | None]:
        """``(the head's input, auxiliary classification logits or None)``."""
        return (self(L, hints) if self.takes_hints else self(L)), None


def check_backbone(backbone: nnx.Module) -> None:
    """A TypeError naming the backbone and the declaration it lacks or gets wrong."""
    name = type(backbone).__name__
    if not isinstance(backbone, Backbone):
        raise TypeError(f"{name} is not a colorjax.models.backbone.Backbone")
    for attribute, (kind, minimum) in CONTRACT.items():
        if not hasattr(backbone, attribute):
            raise TypeError(f"{name} does not declare {attribute!r} (see colorjax.models.backbone)")
        value = getattr(backbone, attribute)
        if type(value) is not kind or value < minimum:
            article = "an" if kind is int else "a"
            raise TypeError(f"{name}.{attribute} must be {article} {kind.__name__} >= {minimum}, got {value!r}")
