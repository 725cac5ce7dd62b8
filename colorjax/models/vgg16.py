"""VGG16's convolutional features (Simonyan and Zisserman 2015) in torchvision's layout.

``VGG16Features(layers)`` returns, for RGB in [0, 1] of shape [B, H, W, 3], a dict of the named
layers' activations: ``convB_I`` before its ReLU, ``reluB_I`` after it (B = block 1-5, I = conv
index within the block). Only the convs up to the deepest requested layer are built. The input is
normalised with the ImageNet mean and standard deviation that torchvision's weights expect.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from colorjax.models.layers import conv, scaled, set_conv_algorithm
from colorjax.models.winograd import check_algorithm

# torchvision's ImageNet normalisation (torchvision.models.VGG16_Weights transforms).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Convs per block and their width (VGG16, configuration D).
BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
CONV_NAMES = tuple(f"conv{b + 1}_{i + 1}" for b, (n, _) in enumerate(BLOCKS) for i in range(n))
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")  # Johnson et al. 2016


def torchvision_indices() -> dict[str, int]:
    """Index of each conv in torchvision's ``vgg16().features`` (conv, ReLU, ..., max pool)."""
    indices, index = {}, 0
    for b, (n, _) in enumerate(BLOCKS):
        for i in range(n):
            indices[f"conv{b + 1}_{i + 1}"] = index
            index += 2  # the conv and its ReLU
        index += 1  # the block's max pool
    return indices


def _conv_name(layer: str) -> str:
    kind, _, position = layer.partition("_")
    name = "conv" + kind.removeprefix("conv").removeprefix("relu") + "_" + position
    if not kind.startswith(("conv", "relu")) or name not in CONV_NAMES:
        raise ValueError(f"unknown VGG16 layer {layer!r}; use convB_I or reluB_I, e.g. relu2_2")
    return name


def check_layer_names(layers) -> None:
    """A ValueError naming the first of ``layers`` that is no VGG16 layer (or for none given)."""
    if not layers:
        raise ValueError("VGG16Features needs at least one layer name")
    for layer in layers:
        _conv_name(layer)


class VGG16Features(nnx.Module):
    """The convolutional part of VGG16, up to the deepest of ``layers``; its 3 x 3 layers run
    ``conv_algorithm`` (:data:`colorjax.models.winograd.ALGORITHMS`)."""

    def __init__(self, layers=PERCEPTUAL_LAYERS, *, width: float = 1.0, conv_algorithm: str = "auto", rngs: nnx.Rngs):
        check_algorithm(conv_algorithm)
        check_layer_names(layers)
        self.layers = tuple(layers)
        depth = max(CONV_NAMES.index(_conv_name(layer)) for layer in self.layers) + 1
        widths = [scaled(c, width) for n, c in BLOCKS for _ in range(n)][:depth]
        self.conv_names = CONV_NAMES[:depth]
        self.convs = nnx.List(conv(i, o, 3, padding=1, rngs=rngs) for i, o in zip((3, *widths[:-1]), widths))
        set_conv_algorithm(self, conv_algorithm)

    def __call__(self, rgb: jax.Array) -> dict[str, jax.Array]:
        x = (rgb - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
        wanted, out = set(self.layers), {}
        for name, layer in zip(self.conv_names, self.convs):
            if name.endswith("_1") and name != "conv1_1":
                x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
            x = layer(x)
            if name in wanted:
                out[name] = x
            x = jax.nn.relu(x)
            if "relu" + name[4:] in wanted:
                out["relu" + name[4:]] = x
        return {layer: out[layer] for layer in self.layers}


def vgg16_config(model: VGG16Features, width: float) -> dict:
    """The JSON config that :func:`colorjax.checkpointing.load_vgg16` rebuilds ``model`` from."""
    return {"network": "vgg16_features", "layers": list(model.layers), "width": width}
