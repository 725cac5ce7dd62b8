"""optax optimizers and learning-rate schedules chosen by the config."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import optax

from colorjax.training.config import GAN_METHODS
from colorjax.training.init_from import FROZEN, parameter_groups

# pix2pix (Isola et al. 2017): Adam betas (0.5, 0.999) for both networks.
PIX2PIX_BETAS = (0.5, 0.999)
# DeOldify's NoGAN (Antic 2019): in the GAN phase the critic learns at 5 x the generator's rate.
NOGAN_CRITIC_GAN_FACTOR = 5.0


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """The ``optim.schedule`` schedule over ``num_steps`` updates.

    - constant;
    - warmup_cosine: linear warmup over ``warmup_steps``, cosine decay to 0 at ``num_steps``;
    - step: x ``decay_factor`` from ``decay_step`` on (Zhang: x0.1 at 225k of ~450k);
    - linear_decay: constant until ``decay_step`` (default half the run), then linearly to 0 at
      ``num_steps`` (pix2pix: n epochs constant, n epochs decaying).
    """
    lr = optim.learning_rate
    match optim.schedule:
        case "constant":
            return optax.constant_schedule(lr)
        case "warmup_cosine":
            return optax.warmup_cosine_decay_schedule(0.0, lr, optim.warmup_steps, max(num_steps, optim.warmup_steps + 1))
        case "step":
            return optax.piecewise_constant_schedule(lr, {optim.decay_step: optim.decay_factor})
        case "linear_decay":
            start = optim.decay_step or num_steps // 2
            decay = optax.linear_schedule(lr, 0.0, max(num_steps - start, 1))
            return optax.join_schedules([optax.constant_schedule(lr), decay], [start])
        case _:
            raise ValueError(f"unknown schedule {optim.schedule!r}")


def make_optimizer(optim: ml_collections.ConfigDict, schedule: optax.Schedule) -> optax.GradientTransformation:
    """Adam (weight decay as L2 on the gradient, as Caffe and PyTorch's Adam do) or AdamW, with
    optional global-norm gradient clipping first. With ``optim.freeze`` / ``optim.lr_mults``
    patterns the update rule is partitioned by ``optax.multi_transform``: frozen parameters get
    ``set_to_zero`` (no update, no optimizer state), the others the rule at their multiple of the
    rate (:func:`colorjax.training.init_from.parameter_groups`)."""
    parts = []
    if optim.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(optim.grad_clip_norm))
    if (groups := parameter_groups(optim)) is None:
        return optax.chain(*parts, *_update_rule(optim, schedule))
    label_fn, multipliers = groups
    rules = {label: optax.set_to_zero() if label == FROZEN else optax.chain(*_update_rule(optim, _scaled(schedule, mult)))
             for label, mult in multipliers.items()}
    return optax.chain(*parts, optax.multi_transform(rules, label_fn))


def _scaled(schedule: optax.Schedule, factor: float) -> optax.Schedule:
    return schedule if factor == 1.0 else (lambda count: factor * schedule(count))


def _update_rule(optim: ml_collections.ConfigDict, schedule: optax.Schedule) -> list[optax.GradientTransformation]:
    """The configured Adam / AdamW (with its weight decay) at ``schedule``, as chain parts."""
    parts = []
    match optim.optimizer:
        case "adam":
            if optim.weight_decay > 0:
                parts.append(optax.add_decayed_weights(optim.weight_decay))
            parts.append(optax.adam(schedule, b1=optim.b1, b2=optim.b2))
        case "adamw":
            parts.append(optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay))
        case _:
            raise ValueError(f"unknown optimizer {optim.optimizer!r}")
    return parts


def discriminator_optimizer(schedule: optax.Schedule) -> optax.GradientTransformation:
    """Adam with pix2pix's betas (0.5, 0.999)."""
    return optax.adam(schedule, b1=PIX2PIX_BETAS[0], b2=PIX2PIX_BETAS[1])


def nogan_generator_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Generator lr by its update count: pre-training at ``optim.learning_rate``, then the GAN phases'
    low ``nogan.gan_learning_rate`` (the generator does not update while the critic pre-trains)."""
    n = config.nogan
    return optax.join_schedules(
        [optax.constant_schedule(config.optim.learning_rate), optax.constant_schedule(n.gan_learning_rate)],
        [n.generator_steps],
    )


def nogan_critic_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
    """Critic lr by its update count: each cycle is ``critic_steps`` of pre-training at
    ``critic_learning_rate`` then ``gan_steps`` at :data:`NOGAN_CRITIC_GAN_FACTOR` x ``gan_learning_rate``."""
    n = config.nogan

    def schedule(count):
        in_cycle = jnp.mod(count, n.critic_steps + n.gan_steps)
        return jnp.where(in_cycle < n.critic_steps, n.critic_learning_rate, NOGAN_CRITIC_GAN_FACTOR * n.gan_learning_rate)

    return schedule


def nogan_phase(step: int, config: ml_collections.ConfigDict) -> str:
    """Which NoGAN phase global step ``step`` belongs to: generator | critic | gan."""
    n = config.nogan
    if step < n.generator_steps:
        return "generator"
    in_cycle = (step - n.generator_steps) % (n.critic_steps + n.gan_steps)
    return "critic" if in_cycle < n.critic_steps else "gan"


def nogan_num_steps(config: ml_collections.ConfigDict) -> int:
    """Total steps of the NoGAN schedule: pre-training then ``cycles`` x (critic + GAN)."""
    n = config.nogan
    return n.generator_steps + n.cycles * (n.critic_steps + n.gan_steps)


def optimizers(config: ml_collections.ConfigDict, num_steps: int):
    """``(generator optimizer, its schedule, discriminator optimizer or None)`` of a run."""
    if config.method == "nogan":
        schedule, d_schedule = nogan_generator_schedule(config), nogan_critic_schedule(config)
    else:
        schedule = learning_rate_schedule(config.optim, num_steps)
        d_optim = ml_collections.ConfigDict(config.optim.to_dict())
        d_optim.learning_rate = config.discriminator.learning_rate
        d_schedule = learning_rate_schedule(d_optim, num_steps)
    d_tx = discriminator_optimizer(d_schedule) if config.method in GAN_METHODS else None
    return make_optimizer(config.optim, schedule), schedule, d_tx
