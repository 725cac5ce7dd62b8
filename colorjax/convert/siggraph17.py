"""The official SIGGRAPH17 release (Zhang, Zhu et al. 2017, ``siggraph17-df00044c.pth``) as a
colorjax model.

Keys of the release's PyTorch port: encoder blocks ``model1`` ... ``model7`` with convs at 0, 2 (and
4) and BatchNorm after them (``model1.4``, ``model3.6`` ...); ``model8up.0`` / ``model9up.0`` /
``model10up.0`` the 4 x 4 transposed convs; ``model3short8.0``, ``model2short9.0``,
``model1short10.0`` the shortcut convs; ``model8`` convs at 1 and 3 with BatchNorm at 5, ``model9``
conv at 1 with BatchNorm at 3, ``model10`` conv at 1; ``model_class.0`` (529 logits on conv8) and
``model_out.0`` (2 channels, tanh). The width is read from ``model1.0`` (64 channels = 1.0) and
checked against its 4 input channels (L, a, b, mask); width-reduced state dicts in the same layout
convert too.

The model is a regression head (``model_out``, full resolution) whose backbone keeps the
``model_class`` branch as its auxiliary classification output (``class_bins`` = 529), so every
entry of the file is used. BatchNorm affine values are kept unless all are the identity, as for
ECCV16.
"""

from __future__ import annotations


from colorjax.convert.mapping import (
    FIRST_WIDTH, ConversionError, batch_norm_targets, conv_targets, convert_release, has_batch_norm_affine, weight_shape,
)
from colorjax.models.siggraph17 import DECODER, ENCODER, HINT_CHANNELS, siggraph17_bins

SHORTCUTS = {b: source for b, (_, _, source) in zip((8, 9, 10), DECODER)}


def bn_prefixes() -> list[str]:
    """The release's BatchNorm keys: after the encoder blocks' convs, and in model8 and model9."""
    encoder = [f"model{b}.{2 * len(convs)}" for b, (convs, _) in enumerate(ENCODER, start=1)]
    return encoder + ["model8.5", "model9.3"]


def siggraph17_config(state: dict, source: str) -> dict:
    """build_model kwargs that fit ``state``: width from model1.0, bn_affine from the BN values."""
    for key in ("model1.0.weight", "model_out.0.weight", "model_class.0.weight"):
        if key not in state:
            raise ConversionError(f"{source}: not a SIGGRAPH17 state dict (no {key!r})")
    out, inputs = weight_shape(state, "model1.0.weight", 4, source)[:2]
    if inputs != 1 + HINT_CHANNELS:
        raise ConversionError(
            f"{source}: model1.0 takes {inputs} input channels; SIGGRAPH17 takes {1 + HINT_CHANNELS} (L, a, b, mask)"
        )
    bins = weight_shape(state, "model_class.0.weight", 4, source)[0]
    if bins != len(siggraph17_bins()):
        raise ConversionError(f"{source}: model_class has {bins} outputs; the release's grid has {len(siggraph17_bins())}")
    affine = has_batch_norm_affine(state, bn_prefixes())
    return {
        "backbone": "siggraph17",
        "head": "regression",
        "width": float(out / FIRST_WIDTH),
        "bn_affine": bool(affine),
        "class_bins": int(bins),
    }


def siggraph17_targets(model) -> dict:
    """Release key -> (variable, transform) for every array of our SIGGRAPH17 model."""
    net, targets = model.backbone, {}
    for b, (convs, _) in enumerate(ENCODER, start=1):
        for i, layer in enumerate(getattr(net, f"model{b}")):
            targets |= conv_targets(f"model{b}.{2 * i}", layer)
        targets |= _norm_targets(f"model{b}.{2 * len(convs)}", getattr(net, f"norm{b}"))
    for b, source in SHORTCUTS.items():
        targets |= conv_targets(f"model{b}up.0", getattr(net, f"model{b}up"))
        targets |= conv_targets(f"model{source}short{b}.0", getattr(net, f"model{source}short{b}"))
        convs = getattr(net, f"model{b}")
        for i, layer in enumerate(convs):  # a leading ReLU: convs at 1, 3; BatchNorm after them
            targets |= conv_targets(f"model{b}.{2 * i + 1}", layer)
        targets |= _norm_targets(f"model{b}.{2 * len(convs) + 1}", getattr(net, f"norm{b}"))
    targets |= conv_targets("model_class.0", net.model_class)
    targets |= conv_targets("model_out.0", net.model_out)
    return targets


def _norm_targets(prefix: str, norm) -> dict:
    return {} if norm is None else batch_norm_targets(prefix, norm)


def convert_siggraph17(state: dict, source: str = "state dict"):
    """``(model, model_config, report)`` from a release-layout SIGGRAPH17 state dict of numpy arrays."""
    config = siggraph17_config(state, source)
    model = convert_release(state, source, config, siggraph17_targets, bn_prefixes())
    return model, config, {"width": config["width"], "bn_affine": config["bn_affine"], "class_bins": config["class_bins"]}
