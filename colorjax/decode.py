"""From Q-bin logits to ab: Zhang et al.'s annealed mean.

``ab = sum_q softmax(logits / T)_q c_q`` (Zhang et al. 2016, eq. 5). T = 1 is the mean of the
predicted distribution, T -> 0 its mode (the centre of the largest logit), and Zhang's T = 0.38
lies between: vivid but spatially coherent colours.

The released Caffe deploy net has no temperature: it multiplies the logits by 2.606 before its
softmax, which is the same as T = 1 / 2.606 = 0.3837, i.e. T = 0.38 (docs/reference.md section 2). Here
the temperature is always explicit; a model that already folds such a factor into its last layer
must be decoded at T = 1 to reproduce it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Zhang et al. 2016, section 3.3: the annealed-mean temperature.
ANNEALED_MEAN_TEMPERATURE = 0.38
# The released deploy prototxt's scale on the logits before the softmax (= 1 / T).
DEPLOY_LOGIT_SCALE = 2.606


def annealed_mean(logits: jnp.ndarray, centres, temperature=ANNEALED_MEAN_TEMPERATURE) -> jnp.ndarray:
    """ab ``[..., 2]`` from logits ``[..., Q]`` over ``centres [Q, 2]`` at ``temperature`` >= 0.

    T = 0 gives exactly the centre of the argmax (ties: the lowest index). For T > 0 the softmax
    of ``logits / T`` is taken from its log-softmax, which subtracts the maximum first, so small
    temperatures (0.01) neither overflow nor lose the mode. ``temperature`` may be a traced scalar.
    """
    if isinstance(temperature, (int, float)) and temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = jnp.asarray(logits, jnp.float32)
    centres = jnp.asarray(centres, jnp.float32)
    if logits.shape[-1] != centres.shape[0]:
        raise ValueError(f"logits have {logits.shape[-1]} classes but there are {centres.shape[0]} centres")
    mode = centres[jnp.argmax(logits, axis=-1)]
    if isinstance(temperature, (int, float)) and temperature == 0:
        return mode
    t = jnp.asarray(temperature, jnp.float32)
    positive = t > 0
    probs = jnp.exp(jax.nn.log_softmax(logits / jnp.where(positive, t, 1.0), axis=-1))
    mean = jnp.matmul(probs, centres, precision=jax.lax.Precision.HIGHEST)
    return jnp.where(positive, mean, mode)
