"""Copying a PyTorch state dict into nnx variables, key by key, with every shape and key checked."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


# Output channels of the first conv of every converted network at width 1.0 (ECCV16 and
# SIGGRAPH17's model1.0, VGG16's features.0): the width is read from it.
FIRST_WIDTH = 64


class ConversionError(ValueError):
    """A state dict that does not fit the target model (missing, unexpected or misshapen entries)."""


def torch_kernel(weight: np.ndarray) -> np.ndarray:
    """A PyTorch conv kernel [O, I, kh, kw] (or ConvTranspose2d's [I, O, kh, kw]) as nnx's kernel.

    nnx.Conv takes [kh, kw, I, O]; our transposed convs use ``transpose_kernel=True``, whose kernel
    [kh, kw, O, I] is the same axis permutation of PyTorch's [I, O, kh, kw].
    """
    return np.transpose(weight, (2, 3, 1, 0))


def same(array: np.ndarray) -> np.ndarray:
    return array


# A target: the variable to fill and how to turn the PyTorch array into its value.
Target = tuple[nnx.Variable, Callable[[np.ndarray], np.ndarray]]


def conv_targets(prefix: str, layer) -> dict[str, Target]:
    """``prefix.weight`` / ``prefix.bias`` of a PyTorch conv onto an nnx (transposed) conv."""
    targets = {f"{prefix}.weight": (layer.kernel, torch_kernel)}
    if layer.bias is not None:
        targets[f"{prefix}.bias"] = (layer.bias, same)
    return targets


def batch_norm_targets(prefix: str, norm: nnx.BatchNorm) -> dict[str, Target]:
    """A PyTorch BatchNorm2d's running statistics (and affine part, if ``norm`` has one)."""
    targets = {f"{prefix}.running_mean": (norm.mean, same), f"{prefix}.running_var": (norm.var, same)}
    if norm.scale is not None:
        targets[f"{prefix}.weight"] = (norm.scale, same)
    if norm.bias is not None:
        targets[f"{prefix}.bias"] = (norm.bias, same)
    return targets


def check_state_dict(state, source: str) -> dict:
    """``state`` when it is a state dict: a dict of string keys to numeric tensors (numpy arrays);
    a ConversionError naming ``source`` and the first entry that is not."""
    if not isinstance(state, dict):
        raise ConversionError(f"{source}: holds a {type(state).__name__}, not a state dict of tensors")
    for key, value in state.items():
        if not isinstance(key, str):
            raise ConversionError(f"{source}: key {key!r:.40} is a {type(key).__name__}, not a parameter name")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise ConversionError(f"{source}: '{key}' is a {type(value).__name__}, not a numeric tensor")
    return state


def weight_shape(state: dict, key: str, ndim: int, source: str) -> tuple[int, ...]:
    """The shape of ``state[key]``: a ConversionError unless it has ``ndim`` axes, none empty."""
    shape = np.shape(state[key])
    if len(shape) != ndim or 0 in shape:
        raise ConversionError(f"{source}: '{key}' has shape {shape}; expected {ndim} non-empty axes")
    return shape


def check_converted(key: str, value: np.ndarray, source: str) -> None:
    """A ConversionError naming ``source`` and ``key`` when a converted array holds NaN or infinity,
    or a BatchNorm running variance is negative: such weights would be written and refused later."""
    if not np.isfinite(value).all():
        raise ConversionError(f"{source}: '{key}' holds {int(np.sum(~np.isfinite(value)))} NaN or infinite value(s)")
    if key.endswith("running_var") and (value < 0).any():
        raise ConversionError(f"{source}: '{key}' (a BatchNorm variance) holds negative values (min {value.min():g})")


def load_into(targets: dict[str, Target], state: dict, source: str, ignored: set[str] = frozenset()) -> None:
    """Fill every target from ``state``; all of ``state`` but ``ignored`` keys must be used, and every
    value be finite (BatchNorm variances >= 0), checked for all keys before any variable is set."""
    missing = sorted(set(targets) - set(state))
    unexpected = sorted(set(state) - set(targets) - set(ignored))
    if missing or unexpected:
        raise ConversionError(
            f"{source}: state dict does not match the model; missing {_few(missing)}, unexpected {_few(unexpected)}"
        )
    values = {}
    for key, (variable, transform) in targets.items():
        raw = np.asarray(state[key], np.float32)
        if raw.size != int(np.prod(variable.shape)):
            raise ConversionError(f"{source}: '{key}' has shape {raw.shape}, which does not fit {variable.shape}")
        try:
            value = transform(raw)
        except ValueError:
            value = None
        if value is None or value.shape != variable.shape:
            raise ConversionError(f"{source}: '{key}' has shape {raw.shape}, which does not fit {variable.shape}")
        check_converted(key, value, source)
        values[key] = value
    for key, (variable, _) in targets.items():
        variable.set_value(jnp.asarray(values[key]))


def _few(keys: list[str]) -> str:
    return "none" if not keys else ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


def abstract_model(make: Callable[[], nnx.Module]) -> nnx.Module:
    """The module ``make`` builds, with shapes only: conversion fills every array, so none is initialised."""
    return nnx.eval_shape(make)


def check_filled(model: nnx.Module, source: str) -> None:
    """A ConversionError if some array of ``model`` was left unfilled (still abstract)."""
    flat = nnx.to_flat_state(nnx.state(model))
    empty = [".".join(map(str, path)) for path, var in flat if isinstance(var.get_value(), jax.ShapeDtypeStruct)]
    if empty:
        raise ConversionError(f"{source}: no value for {_few(empty)}")


def has_batch_norm_affine(state: dict, prefixes: list[str]) -> bool:
    """Whether any BatchNorm ``prefix.weight`` / ``prefix.bias`` of ``state`` differs from the
    identity (1, 0): the releases' Caffe BatchNorm has no affine part, so an identity one is dropped."""
    return any(
        not np.allclose(state.get(f"{p}.weight", 1.0), 1.0) or not np.allclose(state.get(f"{p}.bias", 0.0), 0.0)
        for p in prefixes
    )


def convert_release(state: dict, source: str, config: dict, targets: Callable[[nnx.Module], dict[str, Target]],
                    bn_prefixes: list[str], prepare: Callable[[nnx.Module], None] | None = None) -> nnx.Module:
    """The model ``build_model(**config)`` filled from a release's ``state`` (every key used but
    BatchNorm counters, and the identity affine values when ``config["bn_affine"]`` is False), in
    evaluation mode; ``prepare(model)`` sets what the state dict does not hold first."""
    from colorjax.models import build_model

    model = abstract_model(lambda: build_model(**config, rngs=nnx.Rngs(0)))
    if prepare is not None:
        prepare(model)
    ignored = {key for key in state if key.endswith("num_batches_tracked")}
    if not config["bn_affine"]:  # identity affine values: nothing to keep
        ignored |= {f"{p}.{name}" for p in bn_prefixes for name in ("weight", "bias")}
    load_into(targets(model), state, source, ignored)
    check_filled(model, source)
    model.eval()
    return model
