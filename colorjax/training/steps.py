"""One jitted step per kind of update: supervised (regression / classification / NoGAN generator
pre-training), GAN (pix2pix and NoGAN's GAN phase), critic (NoGAN's discriminator pre-training),
and evaluation.

Each step takes the replicated training state and a batch ``{"rgb": uint8 [B, S, S, 3]}`` sharded
over the data axis. The Lab conversion, the gray mask and the soft-encoding run inside the step, on
device; so does the drawing of simulated hints for a model that takes them (the user-guided
SIGGRAPH17: :mod:`colorjax.training.simulated_hints`), whose auxiliary classification branch adds
its soft cross-entropy to the loss when ``class_weight`` > 0. The state is a dict of nnx states and optax states:
``params`` / ``rest`` (the generator's nnx.Param and everything else: batch statistics, RNG
counters), ``opt``, and for GAN methods ``d_params`` / ``d_rest`` / ``d_opt``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from colorjax import metrics
from colorjax.bins import is_colourful, soft_encode
from colorjax.color import lab_to_rgb, rgb_uint8_to_lab
from colorjax.decode import annealed_mean
from colorjax.models.layers import BLOCK_OUTPUT
from colorjax.training import losses
from colorjax.training.precision import apply_module
from colorjax.training.simulated_hints import HintSampling, batch_key, simulate_hints


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the generator's output is compared with, fixed for a run (closed over by the steps)."""

    head: str  # regression | classification
    output_stride: int
    pixel: str = "l1"
    huber_delta: float = 0.1
    centres: np.ndarray | None = None  # classification bin centres [Q, 2]
    class_weights: np.ndarray | None = None  # rebalancing weights [Q]; None: no rebalancing
    k: int = 5
    sigma: float = 5.0
    temperature: float = 0.38
    # Validation decodes as the checkpoint will be used: the saved prior correction's logit bias
    # (colorjax.models.heads.rebalancing_logit_bias), None where the correction is 0.
    decode_logit_bias: np.ndarray | None = None
    perceptual_weight: float = 0.0
    vgg_features: Callable | None = None  # rgb [B, H, W, 3] in [0, 1] -> list of feature maps
    lambda_l1: float = 100.0
    gan: str = "bce"
    discriminator_factor: float = losses.PIX2PIX_DISCRIMINATOR_FACTOR
    prior: object | None = None  # ColourPrior for the rebalanced metrics
    compute_dtype: str = "float32"  # float32 | bfloat16 (colorjax.training.precision)
    remat: str = "none"  # none | blocks: keep only block outputs for the backward pass
    hints: HintSampling | None = None  # simulated hints for a model that takes them
    hint_seed: int = 0
    class_weight: float = 0.0  # > 0: add the auxiliary classification loss (user-guided regression)
    class_centres: np.ndarray | None = None  # that branch's bin centres [Q, 2]


def lab_batch(rgb_uint8: jnp.ndarray):
    """``(L [B,H,W,1], ab [B,H,W,2], colourful [B])`` from a uint8 RGB batch."""
    lab = rgb_uint8_to_lab(rgb_uint8)
    L, ab = lab[..., :1], lab[..., 1:]
    return L, ab, is_colourful(ab)


def at_output(x: jnp.ndarray, out_hw: tuple[int, int], stride: int) -> jnp.ndarray:
    """``x[B, H, W, C]`` on the output grid: every ``stride``-th pixel, centre-cropped to ``out_hw``
    (backbones with unpadded convolutions lose a border)."""
    x = losses.subsample(x, stride)
    top, left = (x.shape[1] - out_hw[0]) // 2, (x.shape[2] - out_hw[1]) // 2
    return x[:, top : top + out_hw[0], left : left + out_hw[1]]


def output_region(x: jnp.ndarray, out_hw: tuple[int, int], stride: int) -> jnp.ndarray:
    """The full-resolution region of ``x[B, H, W, C]`` that the output grid covers."""
    h, w = out_hw[0] * stride, out_hw[1] * stride
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return x[:, top : top + h, left : left + w]


def predicted_ab(obj: Objective, out: jnp.ndarray) -> jnp.ndarray:
    """ab at the output resolution: the output itself, or the annealed mean of the logits."""
    match obj.head:
        case "regression":
            return out
        case "classification":
            logits = out if obj.decode_logit_bias is None else out + obj.decode_logit_bias
            return annealed_mean(logits, obj.centres, obj.temperature)
    raise ValueError(f"unknown head {obj.head!r}")


def full_resolution_lab(obj: Objective, out: jnp.ndarray, L: jnp.ndarray) -> jnp.ndarray:
    """Predicted Lab over the output region at input resolution (ab upsampled bilinearly, as Zhang)."""
    L_region = output_region(L, out.shape[1:3], obj.output_stride)
    ab = jax.image.resize(predicted_ab(obj, out), (*L_region.shape[:3], 2), "bilinear")
    return jnp.concatenate([L_region, ab], axis=-1)


def reconstruction_map(obj: Objective, out: jnp.ndarray, L: jnp.ndarray, ab: jnp.ndarray, rgb: jnp.ndarray) -> jnp.ndarray:
    """Per-pixel loss at the output resolution ``[B, h, w]``: pixel loss (plus the perceptual map)
    for regression, (rebalanced) soft cross-entropy for classification."""
    out_hw = out.shape[1:3]
    true_ab = at_output(ab, out_hw, obj.output_stride)
    match obj.head:
        case "regression":
            pixel_map = losses.ab_pixel_loss(out, true_ab, obj.pixel, obj.huber_delta)
        case "classification":
            target = soft_encode(true_ab, obj.centres, obj.k, obj.sigma)
            weights = None
            if obj.class_weights is not None:
                weights = losses.rebalancing_weights(true_ab, obj.centres, obj.class_weights)
            pixel_map = losses.soft_cross_entropy(out, target, weights)
        case _:
            raise ValueError(f"unknown head {obj.head!r}")
    if obj.perceptual_weight > 0:
        pred_rgb = lab_to_rgb(full_resolution_lab(obj, out, L))
        true_rgb = output_region(rgb.astype(jnp.float32) / 255.0, out_hw, obj.output_stride)
        features = obj.vgg_features(jnp.concatenate([pred_rgb, true_rgb], axis=0))
        pred_f, true_f = zip(*[jnp.split(f, 2, axis=0) for f in features])
        pixel_map = pixel_map + obj.perceptual_weight * losses.perceptual_map(pred_f, true_f, *out_hw)
    return pixel_map


def _apply(obj: Objective, graphdef, params, rest, *inputs, method: str | None = None):
    """Run a module given its state, in the run's compute dtype; returns (output, its updated
    non-parameter state). With ``obj.remat == "blocks"`` only the activations tagged
    :data:`~colorjax.models.layers.BLOCK_OUTPUT` are kept for the backward pass; the rest is
    recomputed there (less memory for more compute)."""
    apply = lambda params, rest, *inputs: apply_module(  # noqa: E731
        graphdef, params, rest, *inputs, dtype=obj.compute_dtype, method=method
    )
    if obj.remat == "blocks":
        apply = jax.checkpoint(apply, policy=jax.checkpoint_policies.save_only_these_names(BLOCK_OUTPUT))
    return apply(params, rest, *inputs)


def model_inputs(obj: Objective, L: jnp.ndarray, ab: jnp.ndarray, rgb: jnp.ndarray) -> tuple:
    """The model's inputs: ``(L,)``, or ``(L, simulated hints)`` for a model that takes hints; every
    step (supervised, GAN, critic, evaluation) calls the generator with these."""
    if obj.hints is None:
        return (L,)
    return L, simulate_hints(batch_key(obj.hint_seed, rgb), ab, obj.hints)


def forward(obj: Objective, graphdef, params, rest, L, ab, rgb):
    """``(output, auxiliary class logits or None, updated non-parameter state)``."""
    inputs = model_inputs(obj, L, ab, rgb)
    if obj.class_weight > 0:
        (out, logits), rest = _apply(obj, graphdef, params, rest, *inputs, method="with_class_logits")
        return out, logits, rest
    out, rest = _apply(obj, graphdef, params, rest, *inputs)
    return out, None, rest


def class_loss(obj: Objective, logits: jnp.ndarray, ab: jnp.ndarray, colourful: jnp.ndarray) -> jnp.ndarray:
    """Soft cross-entropy of the auxiliary classification branch against the true ab at its resolution."""
    stride = ab.shape[1] // logits.shape[1]
    target = soft_encode(at_output(ab, logits.shape[1:3], stride), obj.class_centres, obj.k, obj.sigma)
    return losses.masked_mean(losses.soft_cross_entropy(logits, target), colourful)


def supervised_loss(obj: Objective, out, logits, L, ab, rgb, colourful) -> jnp.ndarray:
    """The reconstruction loss, plus ``class_weight`` x the auxiliary classification loss."""
    loss = losses.masked_mean(reconstruction_map(obj, out, L, ab, rgb), colourful)
    if logits is not None:
        loss = loss + obj.class_weight * class_loss(obj, logits, ab, colourful)
    return loss


def _update(tx, grads, opt_state, params):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def supervised_step(obj: Objective, graphdef, tx):
    """Generator-only update on the reconstruction loss (masked to colourful images)."""

    def step(state, batch):
        L, ab, colourful = lab_batch(batch["rgb"])

        def loss_fn(params):
            out, logits, rest = forward(obj, graphdef, params, state["rest"], L, ab, batch["rgb"])
            return supervised_loss(obj, out, logits, L, ab, batch["rgb"], colourful), rest

        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        params, opt = _update(tx, grads, state["opt"], state["params"])
        return {**state, "params": params, "rest": rest, "opt": opt}, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return step


def _discriminator_inputs(obj: Objective, out, L, ab):
    """(L, true ab) over the output region at input resolution: the discriminator judges the
    colorized image the user sees (ab upsampled as at inference), whatever the output stride."""
    region = lambda x: output_region(x, out.shape[1:3], obj.output_stride)  # noqa: E731
    return region(L), region(ab)


def _discriminator_update(obj, d_graphdef, d_tx, state, L, real_ab, fake_ab):
    def d_loss_fn(d_params):
        real, rest = _apply(obj, d_graphdef, d_params, state["d_rest"], L, real_ab)
        fake, rest = _apply(obj, d_graphdef, d_params, rest, L, jax.lax.stop_gradient(fake_ab))
        return obj.discriminator_factor * losses.discriminator_loss(real, fake, obj.gan), rest

    (d_loss, d_rest), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state["d_params"])
    d_params, d_opt = _update(d_tx, d_grads, state["d_opt"], state["d_params"])
    return {**state, "d_params": d_params, "d_rest": d_rest, "d_opt": d_opt}, d_loss


def gan_step(obj: Objective, graphdef, tx, d_graphdef, d_tx):
    """pix2pix's alternation on one batch: update D on (real, detached fake), then G through the
    updated D with GAN + lambda * reconstruction. G runs once; its VJP carries D's gradient back."""

    def step(state, batch):
        L, ab, colourful = lab_batch(batch["rgb"])
        inputs = model_inputs(obj, L, ab, batch["rgb"])  # the same inputs (hints too) as the supervised step
        g_forward = lambda params: _apply(obj, graphdef, params, state["rest"], *inputs)  # noqa: E731
        out, g_vjp, rest = jax.vjp(g_forward, state["params"], has_aux=True)
        L_full, real_ab = _discriminator_inputs(obj, out, L, ab)
        state, d_loss = _discriminator_update(obj, d_graphdef, d_tx, state, L_full, real_ab, full_resolution_lab(obj, out, L)[..., 1:])

        def g_loss_fn(out):
            fake_ab = full_resolution_lab(obj, out, L)[..., 1:]
            fake, d_rest = _apply(obj, d_graphdef, state["d_params"], state["d_rest"], L_full, fake_ab)
            adversarial = losses.generator_gan_loss(fake, obj.gan)
            recon = losses.masked_mean(reconstruction_map(obj, out, L, ab, batch["rgb"]), colourful)
            return adversarial + obj.lambda_l1 * recon, (adversarial, recon, d_rest)

        (g_loss, (adversarial, recon, d_rest)), d_out = jax.value_and_grad(g_loss_fn, has_aux=True)(out)
        (grads,) = g_vjp(d_out)
        params, opt = _update(tx, grads, state["opt"], state["params"])
        state = {**state, "params": params, "rest": rest, "opt": opt, "d_rest": d_rest}
        return state, {"loss": g_loss, "d_loss": d_loss, "g_gan_loss": adversarial, "recon_loss": recon}

    return step


def critic_step(obj: Objective, eval_graphdef, d_graphdef, d_tx):
    """NoGAN's discriminator pre-training: D learns real vs the fixed generator's outputs (G in
    evaluation mode, unchanged)."""

    def step(state, batch):
        L, ab, _ = lab_batch(batch["rgb"])
        out, _ = _apply(obj, eval_graphdef, state["params"], state["rest"], *model_inputs(obj, L, ab, batch["rgb"]))
        L_full, real_ab = _discriminator_inputs(obj, out, L, ab)
        state, d_loss = _discriminator_update(obj, d_graphdef, d_tx, state, L_full, real_ab, full_resolution_lab(obj, out, L)[..., 1:])
        return state, {"loss": d_loss, "d_loss": d_loss}

    return step


def eval_step(obj: Objective, eval_graphdef):
    """Validation loss, the foundation's metric sums, and the predicted RGB (for the image grid)."""

    def step(state, batch):
        L, ab, colourful = lab_batch(batch["rgb"])
        out, logits, _ = forward(obj, eval_graphdef, state["params"], state["rest"], L, ab, batch["rgb"])
        loss = supervised_loss(obj, out, logits, L, ab, batch["rgb"], colourful)
        pred_lab = full_resolution_lab(obj, out, L)
        true_lab = output_region(jnp.concatenate([L, ab], axis=-1), out.shape[1:3], obj.output_stride)
        sums = metrics.batch_metric_sums_lab(pred_lab, true_lab, prior=obj.prior)
        gray_lab = true_lab * jnp.array([1.0, 0.0, 0.0])
        images = {"gray_rgb": lab_to_rgb(gray_lab), "pred_rgb": lab_to_rgb(pred_lab), "true_rgb": lab_to_rgb(true_lab)}
        return {"loss": loss, "sums": sums, **images}

    return step
