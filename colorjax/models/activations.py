"""The activation functions every backbone can use: relu, leaky_relu, prelu, elu and rrelu.

RReLU follows Xu et al. 2015 ("Empirical Evaluation of Rectified Activations in Convolutional
Network") as the patch-network RReLU study describes it: the negative part is ``x / a`` with ``a ~ U(3, 8)`` drawn per
element in training and the fixed mean ``a = 5.5`` in evaluation. Its randomness comes from the
``'rrelu'`` stream of the ``nnx.Rngs`` it is built with (the ``'default'`` stream when there is
none), like ``nnx.Dropout`` does with ``'dropout'``; ``Module.train()`` / ``eval()`` switch it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "rrelu")

LEAKY_RELU_SLOPE = 0.2  # pix2pix (Isola et al. 2017) and its PatchGAN
PRELU_INIT = 0.25  # He et al. 2015, initial negative slope of PReLU
ELU_ALPHA = 1.0  # Clevert et al. 2016
# Xu et al. 2015: a ~ U(3, 8) in training, (3 + 8) / 2 = 5.5 at test (docs/reference.md section 5).
RRELU_LOWER, RRELU_UPPER = 3.0, 8.0


def check_activation(kind: str) -> str:
    """``kind`` if it names a known activation, else a ValueError listing the choices."""
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; choose one of {', '.join(ACTIVATIONS)}")
    return kind


class Activation(nnx.Module):
    """One activation layer; ``prelu`` learns one slope per channel, ``rrelu`` is random in training."""

    def __init__(self, kind: str, channels: int, *, deterministic: bool = False, rngs: nnx.Rngs):
        self.kind = check_activation(kind)
        self.slope = nnx.Param(jnp.full((channels,), PRELU_INIT, jnp.float32)) if kind == "prelu" else None
        self.rngs = rngs["rrelu"].fork() if kind == "rrelu" else None
        self.deterministic = deterministic

    def __call__(self, x: jax.Array) -> jax.Array:
        match self.kind:
            case "relu":
                return jax.nn.relu(x)
            case "leaky_relu":
                return jax.nn.leaky_relu(x, LEAKY_RELU_SLOPE)
            case "prelu":
                return jnp.where(x >= 0, x, self.slope[...] * x)
            case "elu":
                return jax.nn.elu(x, ELU_ALPHA)
            case "rrelu":
                return jnp.where(x >= 0, x, x / self._rrelu_divisor(x))
        raise AssertionError(self.kind)

    def _rrelu_divisor(self, x: jax.Array) -> jax.Array | float:
        if self.deterministic:
            return (RRELU_LOWER + RRELU_UPPER) / 2
        return jax.random.uniform(self.rngs(), x.shape, x.dtype, RRELU_LOWER, RRELU_UPPER)
