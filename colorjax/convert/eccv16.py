"""The official ECCV16 release (``colorization_release_v2``, PyTorch port) as a colorjax model.

Keys (Zhang et al. 2016's PyTorch release; docs/reference.md section 2): ``model1.0`` and ``model1.2`` convs with ``model1.4`` BatchNorm, likewise
block 2; blocks 3-7 convs at 0, 2, 4 and BatchNorm at 6; ``model8.0`` the 4 x 4 transposed conv
(weight [512, 256, 4, 4]), ``model8.2``, ``model8.4`` and the 313-logit ``model8.6``;
``model_out.weight`` [2, 313, 1, 1]. The width is read from ``model1.0`` (64 channels = 1.0), so
width-reduced state dicts in the same layout convert too.

BatchNorm: Caffe's has no affine part, so when every BatchNorm weight is 1 and bias 0 the model is
built with ``bn_affine=False``; otherwise the affine values are kept (``bn_affine=True``).
``model_out`` becomes the head's fixed release projection; colorjax itself decodes the raw
``model8.6`` logits by annealed mean at T = 0.38 (see :mod:`colorjax.models.heads`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from colorjax.bins import zhang_bins
from colorjax.color import AB_SCALE
from colorjax.convert.mapping import (
    FIRST_WIDTH, ConversionError, batch_norm_targets, conv_targets, convert_release, has_batch_norm_affine, weight_shape,
)
from colorjax.models.eccv16 import BLOCKS


def bn_prefixes() -> list[str]:
    return [f"model{b + 1}.{2 * len(convs)}" for b, (convs, _, _) in enumerate(BLOCKS)]


def eccv16_config(state: dict, source: str) -> dict:
    """build_model kwargs that fit ``state``: width from model1.0, bn_affine from the BN values."""
    if "model1.0.weight" not in state or "model8.6.weight" not in state:
        raise ConversionError(f"{source}: not an ECCV16 state dict (no 'model1.0.weight' / 'model8.6.weight')")
    bins = weight_shape(state, "model8.6.weight", 4, source)[0]
    if bins != len(zhang_bins()):
        raise ConversionError(f"{source}: model8.6 has {bins} outputs; the release's bins are {len(zhang_bins())}")
    width = weight_shape(state, "model1.0.weight", 4, source)[0] / FIRST_WIDTH
    affine = has_batch_norm_affine(state, bn_prefixes())
    return {
        "backbone": "eccv16",
        "head": "classification",
        "width": float(width),
        "bn_affine": bool(affine),
        "release_projection": "model_out.weight" in state,
    }


def eccv16_targets(model) -> dict:
    """Official key -> (variable, transform) for every array of our ECCV16 model."""
    net, targets = model.backbone, {}
    for b, (convs, norm) in enumerate(zip(net.blocks, net.norms), start=1):
        for i, layer in enumerate(convs):
            targets |= conv_targets(f"model{b}.{2 * i}", layer)
        targets |= batch_norm_targets(f"model{b}.{2 * len(convs)}", norm)
    targets |= conv_targets("model8.0", net.up)
    for i, layer in enumerate(net.up_convs):
        targets |= conv_targets(f"model8.{2 * i + 2}", layer)
    targets |= conv_targets("model8.6", net.out)
    if model.head.release_projection is not None:
        targets["model_out.weight"] = (model.head.release_projection, lambda w: w[:, :, 0, 0].T)
    return targets


def convert_eccv16(state: dict, source: str = "state dict"):
    """``(model, model_config, report)`` from an official-layout ECCV16 state dict of numpy arrays."""
    config = eccv16_config(state, source)
    model = convert_release(state, source, config, eccv16_targets, bn_prefixes(),
                            prepare=lambda model: model.head.centres.set_value(jnp.asarray(zhang_bins())))
    report = {"width": config["width"], "bn_affine": config["bn_affine"]}
    if config["release_projection"]:
        projection = np.asarray(model.head.release_projection[...])
        # The release's model_out should be the bin centres / 110 (a plain softmax mean); report how close.
        report["model_out_max_diff_from_centres"] = float(np.abs(AB_SCALE * projection - zhang_bins()).max())
    return model, config, report
