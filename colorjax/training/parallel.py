"""Data parallelism: one "data" mesh axis over every device of every host.

The training state is replicated and the batch is split along its first axis; the step is one
``jax.jit`` with these shardings, so XLA inserts the gradient all-reduce (and the cross-device
BatchNorm statistics) itself: no pmap, no hand-written collectives. Each host reads its own shard
of the data and contributes its rows of the global batch.
"""

from __future__ import annotations

import os
import socket

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
# Seconds a process waits for the coordinator and its peers before the run is refused.
DISTRIBUTED_TIMEOUT_S = 300


DISTRIBUTED_VARIABLES = ("COLORJAX_COORDINATOR", "COLORJAX_NUM_PROCESSES", "COLORJAX_PROCESS_ID")


def distributed_settings(environ=os.environ) -> dict | None:
    """The multi-host settings of ``environ``, checked together: None when none of the three
    variables is set (one process), else ``{"coordinator_address", "num_processes", "process_id"}``.

    A ValueError names the variable that is wrong: one set without the others, a coordinator that
    is not ``host:port`` (port 1..65535), a count that is not a whole number >= 1, a process id
    outside ``0 .. num_processes - 1``.
    """
    from colorjax import validation

    values = {name: environ.get(name, "").strip() for name in DISTRIBUTED_VARIABLES}
    given = [name for name, value in values.items() if value]
    if not given:
        return None
    missing = [name for name in DISTRIBUTED_VARIABLES if name not in given]
    if missing:
        raise ValueError(f"{', '.join(given)} set but {', '.join(missing)} not: a multi-host run needs all of "
                         f"{', '.join(DISTRIBUTED_VARIABLES)} (a single process needs none)")
    address = values["COLORJAX_COORDINATOR"]
    host, _, port = address.rpartition(":")
    try:
        if not host or not port.isdigit():
            raise validation.ArgumentError("expected host:port")
        validation.port(int(port), "port")
    except validation.ArgumentError as error:
        raise ValueError(f"COLORJAX_COORDINATOR={address!r}: not a coordinator address host:port ({error})") from None

    def whole(name: str, minimum: int, maximum: int | None = None) -> int:
        text = values[name]
        if not text.isdigit():
            raise ValueError(f"{name}={text!r}: expected a whole number >= {minimum}")
        try:
            return validation.count(int(text), f"{name}={text!r}", minimum=minimum, maximum=maximum)
        except validation.ArgumentError as error:
            raise ValueError(str(error)) from None

    processes = whole("COLORJAX_NUM_PROCESSES", 1)
    return {"coordinator_address": address, "num_processes": processes,
            "process_id": whole("COLORJAX_PROCESS_ID", 0, processes - 1)}


def initialize_distributed() -> None:
    """Join a multi-host run when the launcher says so (``COLORJAX_COORDINATOR`` = host:port plus
    ``COLORJAX_NUM_PROCESSES`` and ``COLORJAX_PROCESS_ID``, checked by :func:`distributed_settings`);
    a single process needs nothing. A coordinator that cannot be reached is a ValueError naming it.

    Must run before anything touches a device.
    """
    settings = distributed_settings()
    if settings is None or jax.distributed.is_initialized():
        return
    address = settings["coordinator_address"]
    host, _, port = address.rpartition(":")
    try:  # a host that does not resolve would otherwise wait out the whole timeout
        socket.getaddrinfo(host.strip("[]"), int(port))
    except (OSError, UnicodeError) as error:
        raise ValueError(f"COLORJAX_COORDINATOR={address!r}: the host {host!r} does not resolve ({error})") from None
    try:
        jax.distributed.initialize(**settings, initialization_timeout=DISTRIBUTED_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - JaxRuntimeError and friends: name the setting
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"COLORJAX_COORDINATOR={settings['coordinator_address']!r}: cannot join the multi-host "
                         f"run as process {settings['process_id']} of {settings['num_processes']} ({first})") from None


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
