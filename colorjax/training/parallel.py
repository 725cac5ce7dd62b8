"""Data parallelism: one "data" mesh axis over every device of every host.

The training state is replicated and the batch is split along its first axis; the step is one
``jax.jit`` with these shardings, so XLA inserts the gradient all-reduce (and the cross-device
BatchNorm statistics) itself: no pmap, no hand-written collectives. Each host reads its own shard
of the data and contributes its rows of the global batch.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Join a multi-host run when the launcher says so (``COLORJAX_COORDINATOR`` = host:port plus
    ``COLORJAX_NUM_PROCESSES`` and ``COLORJAX_PROCESS_ID``); a single process needs nothing.

    Must run before anything touches a device.
    """
    address = os.environ.get("COLORJAX_COORDINATOR")
    if address and not jax.distributed.is_initialized():
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=int(os.environ["COLORJAX_NUM_PROCESSES"]),
            process_id=int(os.environ["COLORJAX_PROCESS_ID"]),
        )


def data_mesh() -> Mesh:
    """A one-axis mesh over all devices of all processes."""
    return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device (the training state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Split along the leading (batch) axis over the data axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
    """This host's rows ``local_batch`` (numpy) assembled into global arrays sharded over ``mesh``."""
    sharding = batch_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}


def to_host(tree):
    """Fully replicated global arrays back to numpy (each host reads its local copy)."""
    return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree)


def local_rows(x: jax.Array) -> np.ndarray:
    """This host's rows of a batch-sharded array, in batch order."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards])
