"""Read PyTorch ``.pth`` files without torch, trusting only tensors and plain containers.

``torch.save`` pickles its object; unpickling runs whatever callables the pickle names, so loading a
stranger's file with ``pickle`` (or ``torch.load(weights_only=False)``) can run arbitrary code. This
reader's unpickler resolves only an allow-list of globals: ``torch._utils._rebuild_tensor_v2`` (and
``_rebuild_parameter``), torch's storage types and ``collections.OrderedDict``; any other global
(``os.system``, ``builtins.eval``, a model class ...) raises :class:`UnsafePickleError` before
anything is called. Tensors come back as numpy arrays; dicts, lists, tuples, strings and numbers
as themselves.

Both of torch's formats are read: the zip archive of torch >= 1.6 (``<name>/data.pkl`` plus one
raw little-endian file per storage under ``<name>/data/``) and the older single stream (magic
number, protocol, system info, the pickle, the storage keys, then each storage's bytes).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile

import numpy as np

# torch storage class -> numpy dtype of its elements.
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION


class PthError(ValueError):
    """A .pth file that cannot be read: not a torch file, truncated, or using unsupported features."""


class UnsafePickleError(PthError, pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing it names has been called."""


class _Sealed:
    """Refuses pickle's BUILD opcode, so a pickle cannot overwrite the reader's own objects."""

    def __setstate__(self, state):
        raise UnsafePickleError("the pickle tries to set the state of a reader object")


class StorageType(_Sealed):
    """Stands in for a torch storage class: only its element dtype matters here."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage(_Sealed):
    """A storage named by the pickle; its elements are read after unpickling."""

    def __init__(self, dtype: np.dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel
        self.array: np.ndarray | None = None


class _TensorRef(_Sealed):
    """A tensor as the pickle describes it: a strided view of a storage."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

    def to_numpy(self, source: str) -> np.ndarray:
        data = self.storage.array
        if not self.size:
            return np.array(data[self.offset])
        reach = [(n - 1) * s for n, s in zip(self.size, self.stride)]
        first = self.offset + sum(r for r in reach if r < 0)
        last = self.offset + sum(r for r in reach if r > 0)
        if len(self.stride) != len(self.size) or min(self.size) < 0:
            raise PthError(f"{source}: a tensor has size {self.size} but stride {self.stride}")
        if min(self.size) > 0 and (first < 0 or last >= data.size):
            raise PthError(f"{source}: a tensor of size {self.size} overruns its storage of {data.size} elements")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * data.itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise PthError("a tensor in the pickle is not backed by a storage")
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused to load global '{module}.{name}'; only tensors, OrderedDict and "
                "plain containers are allowed (the file may be malicious or hold pickled Python objects)"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
            raise UnsafePickleError(f"{self.source}: unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        return self.storages.setdefault(str(key), _Storage(storage_type.dtype, str(key), int(numel)))


def load_pth(path: str | os.PathLike):
    """The object saved in the .pth file at ``path``, with tensors as numpy arrays."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as f:
        return _load_legacy(f, path)


def _load_zip(path: str):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise PthError(f"{path}: not a PyTorch zip checkpoint (expected one '<name>/data.pkl')")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path)
        tree = _load(unpickler, path)
        for key, storage in unpickler.storages.items():
            name = f"{prefix}data/{key}"
            if name not in names:
                raise PthError(f"{path}: storage '{key}' is missing from the archive")
            order = "<" if byteorder == "little" else ">"
            storage.array = _storage_array(archive.read(name), storage.dtype.newbyteorder(order), storage.numel, path, key)
    return _resolve(tree, path)


def _load_legacy(f, path: str):
    try:
        magic = _RestrictedUnpickler(f, path).load()
    except UnsafePickleError:
        raise
    except Exception as error:
        raise PthError(f"{path}: not a PyTorch file (neither a zip archive nor a legacy torch pickle)") from error
    if magic != LEGACY_MAGIC:
        raise PthError(f"{path}: not a PyTorch file (wrong magic number)")
    protocol = _load(_RestrictedUnpickler(f, path), path)
    if protocol != LEGACY_PROTOCOL:
        raise PthError(f"{path}: unsupported legacy torch protocol {protocol}")
    sys_info = _load(_RestrictedUnpickler(f, path), path)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise PthError(f"{path}: only little-endian legacy files are supported")
    unpickler = _RestrictedUnpickler(f, path)
    tree = _load(unpickler, path)
    keys = _load(_RestrictedUnpickler(f, path), path)
    for key in keys:  # each storage: its element count (int64) then its bytes, in this order
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise PthError(f"{path}: storage '{key}' is listed but no tensor uses it")
        count = int.from_bytes(_read(f, 8, path), "little")
        storage.array = _storage_array(_read(f, count * storage.dtype.itemsize, path), storage.dtype, count, path, key)
    return _resolve(tree, path)


def _load(unpickler: _RestrictedUnpickler, path: str):
    try:
        return unpickler.load()
    except PthError:
        raise
    except Exception as error:
        raise PthError(f"{path}: corrupt pickle ({type(error).__name__}: {error})") from error


def _resolve(tree, path: str):
    """``tree`` with every tensor reference replaced by its numpy array."""
    if isinstance(tree, _TensorRef):
        if tree.storage.array is None:
            raise PthError(f"{path}: storage '{tree.storage.key}' has no data")
        return tree.to_numpy(path)
    if isinstance(tree, dict):
        return type(tree)((key, _resolve(value, path)) for key, value in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree)(_resolve(value, path) for value in tree)
    return tree


def _storage_array(raw: bytes, dtype: np.dtype, numel: int, path: str, key) -> np.ndarray:
    if len(raw) < numel * dtype.itemsize:
        raise PthError(f"{path}: storage '{key}' is truncated ({len(raw)} bytes for {numel} elements)")
    return np.frombuffer(raw, dtype, count=numel).astype(dtype.newbyteorder("="))


def _read(f, n: int, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise PthError(f"{path}: file is truncated")
    return data
