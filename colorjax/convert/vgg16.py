"""torchvision's VGG16 (``vgg16-397923af.pth``: ``features.N.weight`` / ``.bias``) as VGG16Features.

Only the convs up to the deepest requested layer are taken; deeper ``features`` entries and the
``classifier`` are ignored. Any other key (e.g. the BatchNorm entries of ``vgg16_bn``) is an error.
The width is read from ``features.0`` (64 channels = 1.0).
"""

from __future__ import annotations

from flax import nnx

from colorjax.convert.mapping import (
    FIRST_WIDTH, ConversionError, abstract_model, check_filled, conv_targets, load_into, weight_shape,
)
from colorjax.models.vgg16 import CONV_NAMES, PERCEPTUAL_LAYERS, VGG16Features, torchvision_indices


def convert_vgg16(state: dict, source: str = "state dict", *, layers=PERCEPTUAL_LAYERS):
    """``(model, width)``: a VGG16Features over ``layers`` filled from a torchvision state dict."""
    if "features.0.weight" not in state:
        raise ConversionError(f"{source}: not a torchvision VGG16 state dict (no 'features.0.weight')")
    width = weight_shape(state, "features.0.weight", 4, source)[0] / FIRST_WIDTH
    model = abstract_model(lambda: VGG16Features(layers, width=width, rngs=nnx.Rngs(0)))
    indices = torchvision_indices()
    targets = {}
    for name, layer in zip(model.conv_names, model.convs):
        targets |= conv_targets(f"features.{indices[name]}", layer)
    conv_keys = {f"features.{indices[n]}.{p}" for n in CONV_NAMES for p in ("weight", "bias")}
    ignored = {key for key in state if key.startswith("classifier.") or key in conv_keys}
    load_into(targets, state, source, ignored)
    check_filled(model, source)
    return model, width
