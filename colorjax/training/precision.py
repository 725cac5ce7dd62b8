"""Mixed precision: bfloat16 compute over float32 parameters, optimizer state and statistics.

The training state always holds float32. With ``compute_dtype="bfloat16"`` a module is run on
bfloat16 copies of its parameters and floating inputs, cast inside the differentiated function, so
the convolutions of the forward and backward passes run in bfloat16 while the gradients arrive in
float32 (the transpose of a cast is the cast back) and the optimizer updates float32 masters. The
output is cast back to float32, so losses, soft-encoding and softmax stay in float32; BatchNorm
computes its statistics in float32 (flax does) and its running averages keep their float32 dtype.
No loss scaling is needed: bfloat16 has float32's exponent range.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str):
    """The jnp dtype called ``name`` (``float32`` or ``bfloat16``), or a ValueError naming the choices."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def cast_floating(tree, dtype):
    """Every float32 array leaf of ``tree`` cast to ``dtype`` (integers, keys and others unchanged)."""
    return jax.tree.map(lambda x: x.astype(dtype) if getattr(x, "dtype", None) == jnp.float32 else x, tree)


def _like(new, old):
    """``new``'s leaves cast back to the dtypes of the matching leaves of ``old``."""
    return jax.tree.map(lambda n, o: n.astype(o.dtype) if hasattr(o, "dtype") else n, new, old)


def apply_module(graphdef, params, rest, *inputs, dtype: str = "float32", method: str | None = None):
    """Run the module ``(graphdef, params, rest)`` (or its method ``method``) on ``inputs`` with its
    parameters and floating inputs in ``dtype``; returns ``(output in float32, its updated
    non-parameter state)`` with the state in the dtypes it came in."""
    if dtype != "float32":
        params = cast_floating(params, compute_dtype(dtype))
        inputs = cast_floating(inputs, compute_dtype(dtype))
    module = nnx.merge(graphdef, params, rest, copy=True)  # fresh Variables at this trace level
    out = (module if method is None else getattr(module, method))(*inputs)
    new_rest = nnx.state(module, nnx.Not(nnx.Param))
    if dtype == "float32":
        return out, new_rest
    out = jax.tree.map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, out)
    return out, _like(new_rest, rest)
