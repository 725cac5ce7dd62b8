"""What a run is built from: the model config, the module factories, the VGG16 features of the
perceptual loss and the :class:`~colorjax.training.steps.Objective`."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from colorjax import checkpointing
from colorjax.training import config as config_lib
from colorjax.training.simulated_hints import HintSampling
from colorjax.training.steps import Objective

GAN_METHODS = ("pix2pix", "nogan")


def model_config_of(config: ml_collections.ConfigDict, centres) -> dict:
    """The JSON kwargs of ``build_model`` for this run (saved as the checkpoint's ``config``)."""
    m, head = config.model, config_lib.model_head(config)
    model_config = {"backbone": m.backbone, "head": head, "width": m.width, "activation": m.activation,
                    "batch_norm": m.batch_norm, "conv_algorithm": m.conv_algorithm, **m.options.to_dict()}
    if head == "classification":
        model_config["centres"] = np.asarray(centres, np.float32).tolist()
    # What colorize and evaluate use when not told otherwise: the size the model was trained at and
    # the run's decoding temperature.
    model_config[checkpointing.INFERENCE] = {"size": config_lib.eval_size(config), "temperature": config.bins.temperature,
                                             "prior_correction": config.bins.get("prior_correction", 0.0)}
    return model_config


def module_rngs(seed: int) -> nnx.Rngs:
    """Streams for building a module: parameters from an RBG key, because XLA compiles the unrolled
    threefry hash of every parameter's initialiser in tens of seconds on CPU and RngBitGenerator in
    a few; the streams a module keeps (dropout, RReLU) stay on the default PRNG, which is what
    ``load_model`` rebuilds."""
    return nnx.Rngs(
        params=jax.random.key(seed, impl="rbg"), dropout=jax.random.key(seed + 1), rrelu=jax.random.key(seed + 2)
    )


def model_factory(model_config: dict, seed: int):
    """A function building the generator from ``seed`` (see :func:`module_rngs`)."""
    return lambda: checkpointing.build_model_from_config(model_config, module_rngs(seed))


def discriminator_factory(config: ml_collections.ConfigDict):
    """The PatchGAN builder for GAN methods, else None."""
    if config.method not in GAN_METHODS:
        return None
    from colorjax.models import PatchDiscriminator

    d = config.discriminator
    return lambda: PatchDiscriminator(n_layers=d.n_layers, width=d.width, conv_algorithm=config.model.conv_algorithm,
                                      rngs=module_rngs(config.seed + 3))


def check_model(model_fn, crop_size: int, batch_size: int):
    """Build the model abstractly and trace one forward pass at the training crop size: a backbone,
    head or crop size that does not fit fails here, before anything compiles. Returns
    ``(output_stride, output shape)``."""
    model = nnx.eval_shape(model_fn)
    model.train()
    graphdef, state = nnx.split(model)
    L = jax.ShapeDtypeStruct((batch_size, crop_size, crop_size, 1), jnp.float32)
    try:
        out = jax.eval_shape(lambda s, L: nnx.merge(graphdef, s)(L), state, L)
    except (ValueError, TypeError) as error:
        raise ValueError(f"the model does not fit a {crop_size} px crop: {error}") from error
    return model.output_stride, out.shape


def vgg_features(checkpoint_dir: str, layers, conv_algorithm: str = "auto") -> callable:
    """VGG16 features from ``colorjax convert vgg16``'s checkpoint: ``rgb [B,H,W,3] -> [maps]``."""
    from colorjax.checkpointing import load_vgg16
    from colorjax.models.layers import set_conv_algorithm

    directory = pathlib.Path(checkpoint_dir).absolute()
    if not directory.exists():
        raise FileNotFoundError(
            f"{directory}: no converted VGG16 weights, which the perceptual loss needs. Convert torchvision's "
            f"vgg16-397923af.pth with `colorjax convert vgg16 FILE.pth --out {directory}`, or set "
            f"loss.perceptual_weight=0"
        )
    features = set_conv_algorithm(load_vgg16(directory), conv_algorithm)
    missing = [name for name in layers if name not in features.layers]
    if missing:
        raise ValueError(f"{directory}: the VGG16 checkpoint holds layers {list(features.layers)}, not {missing}")
    names = tuple(layers)
    return lambda rgb: [features(rgb)[name] for name in names]


def hint_options(config: ml_collections.ConfigDict) -> dict:
    """Objective fields of a model that takes hints: the hint sampling and the auxiliary
    classification branch (``model.options.class_bins``) with its weight; empty for other models."""
    from colorjax.models import BACKBONES
    from colorjax.models.siggraph17 import siggraph17_bins

    if not getattr(BACKBONES.get(config.model.backbone), "takes_hints", False):
        return {}
    h = config.hints
    options = {
        "hints": HintSampling(p=h.p, max_points=h.max_points, placement=h.placement, patch_min=h.patch_min,
                              patch_max=h.patch_max),
        "hint_seed": config.seed + 4,
    }
    class_bins = config.model.options.to_dict().get("class_bins", 0)
    if class_bins and config_lib.model_head(config) == "regression" and config.loss.class_weight > 0:
        bins = siggraph17_bins()
        if class_bins != len(bins):
            raise ValueError(f"model.options.class_bins = {class_bins}: the classification branch uses the "
                             f"{len(bins)} bins of the ab grid of 10 on [-110, 110]^2")
        options.update(class_weight=float(config.loss.class_weight), class_centres=bins)
    return options


def build_objective(config: ml_collections.ConfigDict, output_stride: int, centres, prior) -> Objective:
    """The run's :class:`Objective` from the config, its bins and its prior."""
    rebalance = config_lib.model_head(config) == "classification" and config.prior.rebalance
    vgg = None
    if config.loss.perceptual_weight > 0:
        vgg = vgg_features(config.loss.vgg_checkpoint, config.loss.vgg_layers, config.model.conv_algorithm)
    return Objective(
        head=config_lib.model_head(config),
        output_stride=output_stride,
        pixel=config.loss.pixel,
        huber_delta=config.loss.huber_delta,
        centres=None if centres is None else np.asarray(centres, np.float32),
        class_weights=np.asarray(prior.weights, np.float32) if rebalance else None,
        k=config.bins.k,
        sigma=config.bins.sigma,
        temperature=config.bins.temperature,
        perceptual_weight=config.loss.perceptual_weight,
        vgg_features=vgg,
        lambda_l1=config.loss.lambda_l1,
        gan=config.loss.gan,
        discriminator_factor=config.loss.discriminator_factor,
        prior=prior,
        compute_dtype=config.train.compute_dtype,
        remat=config.train.remat,
        **hint_options(config),
    )
