"""Training losses as plain jnp functions.

Pixel losses return per-pixel maps ``[B, h, w]``; :func:`masked_mean` reduces a map over the images
that count (Zhang's training code gives images without any colourful pixel weight 0). Maps are
summed before reduction, so the perceptual term stays a per-pixel tensor next to L1 (Pappalardo and
Caterini's comparison: reducing it to a scalar first let the generator cheat with vertical stripes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from colorjax.bins import nearest_bin
from colorjax.color import AB_SCALE

# pix2pix (Isola et al. 2017) halves the discriminator's loss, slowing it against the generator.
PIX2PIX_DISCRIMINATOR_FACTOR = 0.5


def subsample(x: jnp.ndarray, stride: int) -> jnp.ndarray:
    """Every ``stride``-th pixel of ``x[B, H, W, C]``: Zhang's nearest subsampling of the target."""
    return x if stride == 1 else x[:, ::stride, ::stride]


def ab_pixel_loss(pred_ab: jnp.ndarray, true_ab: jnp.ndarray, kind: str = "l1", delta: float = 0.1) -> jnp.ndarray:
    """L1, L2 or Huber distance on ``ab / 110`` (pix2pix's scale), mean over a and b: ``[B, h, w]``."""
    diff = (pred_ab - true_ab) / AB_SCALE
    match kind:
        case "l1":
            per_channel = jnp.abs(diff)
        case "l2":
            per_channel = diff * diff
        case "huber":
            per_channel = optax.huber_loss(diff, delta=delta)
        case _:
            raise ValueError(f"pixel loss must be l1, l2 or huber, got {kind!r}")
    return jnp.mean(per_channel, axis=-1)


def masked_mean(pixel_map: jnp.ndarray, image_mask: jnp.ndarray) -> jnp.ndarray:
    """Mean of ``pixel_map[B, h, w]`` over the images where ``image_mask[B]`` holds (0 if none)."""
    weights = jnp.broadcast_to(image_mask.astype(pixel_map.dtype)[:, None, None], pixel_map.shape)
    return jnp.sum(pixel_map * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def rebalancing_weights(true_ab: jnp.ndarray, centres: jnp.ndarray, class_weights: jnp.ndarray) -> jnp.ndarray:
    """Zhang's per-pixel weight: the prior's weight at the ground truth's nearest bin, ``[B, h, w]``."""
    return jnp.asarray(class_weights)[nearest_bin(true_ab, centres)]


def soft_cross_entropy(logits: jnp.ndarray, target: jnp.ndarray, pixel_weights: jnp.ndarray | None = None) -> jnp.ndarray:
    """``-w * sum_q Z_q log softmax(logits)_q`` per pixel, ``[B, h, w]`` (Zhang et al. 2016, eq. 2)."""
    per_pixel = -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    return per_pixel if pixel_weights is None else per_pixel * pixel_weights


def resize_map(pixel_map: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
    """A ``[B, h, w]`` map resized (bilinear) to ``[B, height, width]``."""
    if pixel_map.shape[1:] == (height, width):
        return pixel_map
    return jax.image.resize(pixel_map, (pixel_map.shape[0], height, width), "bilinear")


def perceptual_map(pred_features: list[jnp.ndarray], true_features: list[jnp.ndarray], height: int, width: int) -> jnp.ndarray:
    """Per-pixel feature distance: mean squared difference over channels, per layer, resized to
    ``height x width`` and summed over layers, ``[B, height, width]``."""
    total = jnp.zeros((pred_features[0].shape[0], height, width), jnp.float32)
    for pred, true in zip(pred_features, true_features, strict=True):
        total = total + resize_map(jnp.mean((pred - true) ** 2, axis=-1), height, width)
    return total


def discriminator_loss(real_logits: jnp.ndarray, fake_logits: jnp.ndarray, kind: str = "bce") -> jnp.ndarray:
    """Real patches towards 1, fake towards 0: BCE on logits (pix2pix) or least squares (LSGAN)."""
    match kind:
        case "bce":
            real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))
            fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
        case "lsgan":
            real, fake = (real_logits - 1.0) ** 2, fake_logits**2
        case _:
            raise ValueError(f"GAN loss must be bce or lsgan, got {kind!r}")
    return jnp.mean(real) + jnp.mean(fake)


def generator_gan_loss(fake_logits: jnp.ndarray, kind: str = "bce") -> jnp.ndarray:
    """The generator's adversarial loss: make the discriminator call its patches real."""
    match kind:
        case "bce":
            return jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))
        case "lsgan":
            return jnp.mean((fake_logits - 1.0) ** 2)
        case _:
            raise ValueError(f"GAN loss must be bce or lsgan, got {kind!r}")
