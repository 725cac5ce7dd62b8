"""Colorization networks in flax.nnx (NHWC): backbones, heads, and the model that joins them.

``build_model(backbone, head, ...)`` is the one place a model is made from its config; the same
JSON-serialisable kwargs (``rngs`` aside; centres as a nested list) rebuild it from a checkpoint.

Backbones: ``eccv16`` (Zhang et al. 2016), ``siggraph17`` (Zhang, Zhu et al. 2017, user-guided),
``unet`` (Pappalardo and Caterini's U-Net), ``pix2pix`` (the pix2pix U-Net generator), ``patchnet``
(the RReLU study's patch net). Heads: ``regression``, ``classification``. Also the pix2pix
:class:`PatchDiscriminator` and :class:`VGG16Features` for perceptual losses.
"""

from __future__ import annotations

from flax import nnx

from colorjax.models.activations import ACTIVATIONS, Activation, check_activation
from colorjax.models.backbone import Backbone, check_backbone
from colorjax.models.eccv16 import ECCV16
from colorjax.models import winograd
from colorjax.models.heads import HEADS, BinCentres, ClassificationHead, RegressionHead, ReleaseProjection
from colorjax.models.layers import set_conv_algorithm
from colorjax.models.model import ColorizationModel
from colorjax.models.patchnet import PatchNet
from colorjax.models.pix2pix import Pix2PixGenerator, PatchDiscriminator, receptive_field
from colorjax.models.siggraph17 import SIGGRAPH17
from colorjax.models.unet import UNet
from colorjax.models.vgg16 import VGG16Features

BACKBONES = {
    "eccv16": ECCV16, "siggraph17": SIGGRAPH17, "unet": UNet, "pix2pix": Pix2PixGenerator, "patchnet": PatchNet,
}


def build_model(
    backbone: str,
    head: str,
    *,
    centres=None,
    width: float = 1.0,
    activation: str | None = None,
    batch_norm: bool = True,
    regression_output: str = "tanh",
    release_projection: bool = False,
    conv_algorithm: str = "auto",
    rngs: nnx.Rngs,
    **backbone_options,
) -> ColorizationModel:
    """A ``backbone`` with a ``head``, checked before anything is built.

    Args:
      backbone: one of ``BACKBONES``; ``backbone_options`` go to its constructor (e.g. ``depth`` for
        ``unet``, ``num_downs`` for ``pix2pix``, ``bn_affine`` for ``eccv16`` and ``siggraph17``,
        ``class_bins`` for a regression ``siggraph17``'s auxiliary classification branch).
      head: ``"regression"`` or ``"classification"``.
      centres: bin centres [Q, 2] (array or nested list) of a classification head; default
        Zhang's 313 (:func:`colorjax.bins.zhang_bins`).
      width: channel multiplier (1.0 is the paper's network).
      activation: one of ``ACTIVATIONS`` for every activation of the backbone; None keeps each
        paper's choice (ReLU for eccv16 and patchnet, LeakyReLU for unet, LeakyReLU down / ReLU up
        for pix2pix).
      batch_norm: False drops every BatchNorm layer.
      regression_output: ``"tanh"`` (ab = 110 tanh(x)) or ``"linear"``.
      release_projection: keep a slot for ECCV16's ``model_out`` weights (classification only).
      conv_algorithm: what every stride-1 3 x 3 convolution runs, one of ``winograd.ALGORITHMS``:
        ``"auto"`` (Winograd for wide float32 layers on CPU, else direct), ``"direct"`` or
        ``"winograd"``. A static option of each layer, like ``dtype``
        (:func:`colorjax.models.layers.set_conv_algorithm` changes it on a built model).
      rngs: parameter init and the ``dropout`` / ``rrelu`` streams.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if activation is not None:
        check_activation(activation)
    winograd.check_algorithm(conv_algorithm)
    accepted = set(BACKBONES[backbone].OPTIONS)
    unknown = sorted(set(backbone_options) - accepted)
    if unknown:
        raise ValueError(f"{backbone} takes no option {', '.join(unknown)}; its options: {', '.join(sorted(accepted)) or 'none'}")
    if head == "classification":
        if centres is None:
            from colorjax.bins import zhang_bins

            centres = zhang_bins()
        head_module = ClassificationHead(centres, release_projection=release_projection)
    else:
        if centres is not None or release_projection:
            raise ValueError("a regression head takes neither centres nor release_projection")
        head_module = RegressionHead(regression_output)
    if BACKBONES[backbone].TAKES_HEAD_KIND:
        backbone_options = {**backbone_options, "head_kind": head}  # siggraph17: which output it ends in
    net = BACKBONES[backbone](
        head_module.channels, width=width, activation=activation, batch_norm=batch_norm, rngs=rngs,
        **backbone_options,
    )
    check_backbone(net)  # a missing declaration is an error here, not a silent default later
    return set_conv_algorithm(ColorizationModel(net, head_module), conv_algorithm)


__all__ = [
    "ACTIVATIONS", "BACKBONES", "HEADS", "Activation", "Backbone", "BinCentres", "ClassificationHead",
    "ColorizationModel", "ECCV16", "PatchDiscriminator", "PatchNet", "Pix2PixGenerator",
    "RegressionHead", "ReleaseProjection", "SIGGRAPH17", "UNet", "VGG16Features",
    "build_model", "receptive_field",
]
