"""Read PyTorch ``.pth`` files without torch, trusting only tensors and plain containers.

``torch.save`` pickles its object; unpickling runs whatever callables the pickle names, so loading a
stranger's file with ``pickle`` (or ``torch.load(weights_only=False)``) can run arbitrary code. This
reader's unpickler resolves only an allow-list of globals: ``torch._utils._rebuild_tensor_v2`` (and
``_rebuild_parameter``), torch's storage types and ``collections.OrderedDict``; any other global
(``os.system``, ``builtins.eval``, a model class ...) raises :class:`UnsafePickleError` before
anything is called. What the allow-list resolves to are sealed stand-ins made afresh for each
file: pickle's BUILD opcode on them is refused (it could otherwise set attributes such as a
function's ``__defaults__`` for the rest of the process), and none of them may come back as a
value. Tensors come back as numpy arrays; dicts, lists, tuples, sets, strings, bytes, numbers,
booleans and None as themselves; anything else is refused.

A hostile file is also bounded in what it can cost. Every allocation is bounded by what the file
holds: storages are read at most to the size both the pickle and the archive declare, and a
compressed zip member may inflate at most :data:`MAX_INFLATION` times (torch stores its members
uncompressed); the legacy format's element counts are checked against the bytes that remain.
A tensor must lie inside its storage with non-negative offset and strides and must not overlap
itself (so no stride-0 view can turn one stored float into gigabytes). Tensors are views of their
storage, as in torch: tensors that share a storage share memory. Shared references stay shared
(a pickle that references one tensor 8 times, that list 8 times, and so on costs nothing to
resolve), but the tensors reachable through all references are capped at :data:`MAX_TENSORS`,
and containers may nest at most :data:`MAX_DEPTH` deep. Every failure, whatever its kind (a bad
CRC, a truncated stream, an exhausted allocation), is raised as :class:`PthError` naming the file.

Both of torch's formats are read: the zip archive of torch >= 1.6 (``<name>/data.pkl`` plus one
raw little-endian file per storage under ``<name>/data/``) and the older single stream (magic
number, protocol, system info, the pickle, the storage keys, then each storage's bytes).
"""

from __future__ import annotations

import collections
import io
import math
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

# Limits on what a file may make the reader do. Real checkpoints stay far below each.
MAX_INFLATION = 16  # a compressed zip member may expand at most this many times (float weights deflate < 1.2x)
MAX_TENSORS = 100_000  # tensors reachable from the loaded object, each reference counted
MAX_DEPTH = 64  # nesting of containers
MAX_DIMS = 64  # dimensions of one tensor
BYTEORDER_BYTES = 16  # the archive's "byteorder" member holds "little" or "big"


class PthError(ValueError):
    """A .pth file that cannot be read: not a torch file, truncated, corrupt, too costly, or using
    unsupported features."""


class UnsafePickleError(PthError, pickle.UnpicklingError):
    """The pickle names a global outside the allow-list, or tries to modify or return one of the
    reader's own objects; nothing it names outside the allow-list has been called."""


class _Refused(Exception):
    """Raised inside the unpickler's callbacks, which do not know the file; turned into a PthError
    (or UnsafePickleError when ``unsafe``) that names it."""

    def __init__(self, message: str, unsafe: bool = False):
        super().__init__(message)
        self.unsafe = unsafe


class _Sealed:
    """Refuses pickle's BUILD opcode, so a pickle cannot overwrite the reader's own objects."""

    def __setstate__(self, state):
        raise _Refused(f"the pickle tries to set the state of the reader's {type(self).__name__.strip('_')}", unsafe=True)


class StorageType(_Sealed):
    """Stands in for a torch storage class: only its element dtype matters here."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Function(_Sealed):
    """An allow-listed callable as the pickle sees it: callable, but with no state to overwrite."""

    def __init__(self, name: str, function):
        self.name, self._function = name, function

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)


class _Storage(_Sealed):
    """A storage named by the pickle; its elements are read after unpickling."""

    def __init__(self, dtype: np.dtype, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel
        self.array: np.ndarray | None = None


class _TensorRef(_Sealed):
    """A tensor as the pickle describes it: a strided view of a storage."""

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> np.ndarray:
        """The tensor as a view of its storage's array, after checking it lies inside it without
        overlapping itself (raises _Refused otherwise)."""
        data = self.storage.array
        end = self.offset + (_reach(self.size, self.stride) + 1 if math.prod(self.size) > 0 else 0)
        if end > data.size:
            raise _Refused(f"a tensor of size {self.size}, stride {self.stride} at offset {self.offset} "
                           f"overruns its storage '{self.storage.key}' of {data.size} elements")
        return np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * data.itemsize for s in self.stride]
        )


def _reach(size: tuple[int, ...], stride: tuple[int, ...]) -> int:
    """The largest element offset a non-empty tensor reaches from its first element; _Refused if
    two of its elements would share a storage element (a stride 0, or strides too small for the
    sizes inside them)."""
    reach = 0
    for step, count in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        if step <= reach:  # some element is reached twice: the tensor would overlap itself
            raise _Refused(f"a tensor of size {size} with stride {stride} overlaps itself "
                           "(a stride-0 or overlapping view); only views with distinct elements are read")
        reach += (count - 1) * step
    return reach


def _index(value, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _Refused(f"a tensor's {what} is {value!r:.40}, not a non-negative integer")
    return value


def _shape(value, what: str) -> tuple[int, ...]:
    if type(value) not in (tuple, list) or len(value) > MAX_DIMS:
        raise _Refused(f"a tensor's {what} is {value!r:.60}, not a tuple of at most {MAX_DIMS} integers")
    return tuple(_index(n, what) for n in value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise _Refused("a tensor in the pickle is not backed by a storage")
    size, stride = _shape(size, "size"), _shape(stride, "stride")
    if len(size) != len(stride):
        raise _Refused(f"a tensor has size {size} but stride {stride}")
    return _TensorRef(storage, _index(storage_offset, "storage offset"), size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, _TensorRef):
        raise _Refused("a parameter in the pickle is not a tensor")
    return data


def _allowed_globals() -> dict:
    """The allow-list as fresh sealed stand-ins (one set per unpickler)."""
    return {
        ("collections", "OrderedDict"): _Function("OrderedDict", collections.OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2"): _Function("_rebuild_tensor_v2", _rebuild_tensor_v2),
        ("torch._utils", "_rebuild_parameter"): _Function("_rebuild_parameter", _rebuild_parameter),
        **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
    }


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source
        self.storages: dict[str, _Storage] = {}
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refused to load global '{module}.{name}'; only tensors, OrderedDict and "
                "plain containers are allowed (the file may be malicious or hold pickled Python objects)"
            ) from None

    def persistent_load(self, pid):
        if not (type(pid) is tuple and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
            raise UnsafePickleError(f"{self.source}: unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if type(key) is not str:
            raise _Refused(f"a storage key is {key!r:.40}, not a string")
        storage = _Storage(storage_type.dtype, key, _index(numel, "storage size"))
        known = self.storages.setdefault(key, storage)
        if (known.dtype, known.numel) != (storage.dtype, storage.numel):
            raise _Refused(f"storage '{key}' is declared twice, as {known.numel} x {known.dtype} "
                           f"and as {storage.numel} x {storage.dtype}")
        return known


def load_pth(path: str | os.PathLike):
    """The object saved in the .pth file at ``path``, with tensors as numpy arrays (views of
    their storages). Any problem with the file's content raises :class:`PthError` naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        try:
            if zipfile.is_zipfile(f):
                f.seek(0)
                return _load_zip(f, path)
            f.seek(0)
            return _load_legacy(f.read(), path)
        except PthError:
            raise
        except _Refused as refusal:
            raise (UnsafePickleError if refusal.unsafe else PthError)(f"{path}: {refusal}") from None
        except Exception as error:  # BadZipFile, zlib.error, MemoryError, RecursionError, ...
            raise PthError(f"{path}: unreadable ({type(error).__name__}: {error})") from error


def _load_zip(f, path: str):
    with zipfile.ZipFile(f) as archive:
        names = set(archive.namelist())
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise PthError(f"{path}: not a PyTorch zip checkpoint (expected one '<name>/data.pkl')")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = _read_member(archive, prefix + "byteorder", path, limit=BYTEORDER_BYTES).decode(errors="replace")
        if byteorder not in ("little", "big"):
            raise PthError(f"{path}: unknown byte order {byteorder!r}")
        unpickler = _RestrictedUnpickler(io.BytesIO(_read_member(archive, pickles[0], path)), path)
        tree = _load(unpickler, path)
        order = "<" if byteorder == "little" else ">"
        for key, storage in unpickler.storages.items():
            name = f"{prefix}data/{key}"
            if name not in names:
                raise PthError(f"{path}: storage '{key}' is missing from the archive")
            nbytes = storage.numel * storage.dtype.itemsize
            raw = _read_member(archive, name, path, need=nbytes)
            storage.array = _storage_array(raw, storage.dtype.newbyteorder(order), storage.numel)
    return _resolve(tree, path)


def _read_member(archive: zipfile.ZipFile, name: str, path: str, *, need: int | None = None, limit: int | None = None) -> bytes:
    """The member ``name``'s bytes (its first ``need`` bytes if given), never inflating more than
    the member declares, nor more than MAX_INFLATION times its compressed size."""
    info = archive.getinfo(name)
    if info.compress_type == zipfile.ZIP_STORED:
        bound = info.compress_size
    else:
        bound = MAX_INFLATION * info.compress_size + 1024
    if info.file_size > bound:
        raise PthError(f"{path}: member '{name}' declares {info.file_size} bytes from {info.compress_size} "
                       f"compressed bytes (more than {MAX_INFLATION} x); refused as a decompression bomb")
    size = info.file_size if need is None else need
    if need is not None and need > info.file_size:
        raise PthError(f"{path}: storage member '{name}' holds {info.file_size} bytes, the pickle needs {need}")
    if limit is not None and size > limit:
        raise PthError(f"{path}: member '{name}' is {size} bytes, at most {limit} expected")
    with archive.open(info) as member:
        data = member.read(size)
        if size == info.file_size:
            member.read(1)  # reading to the end makes zipfile check the CRC
    if len(data) != size:
        raise PthError(f"{path}: member '{name}' is truncated ({len(data)} of {size} bytes)")
    return data


def _load_legacy(data: bytes, path: str):
    stream = io.BytesIO(data)
    try:
        magic = _RestrictedUnpickler(stream, path).load()
    except (PthError, _Refused):
        raise
    except Exception as error:
        raise PthError(f"{path}: not a PyTorch file (neither a zip archive nor a legacy torch pickle)") from error
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise PthError(f"{path}: not a PyTorch file (wrong magic number)")
    protocol = _load(_RestrictedUnpickler(stream, path), path)
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
        raise PthError(f"{path}: unsupported legacy torch protocol {protocol!r:.40}")
    sys_info = _load(_RestrictedUnpickler(stream, path), path)
    if type(sys_info) is not dict or sys_info.get("little_endian", True) is not True:
        raise PthError(f"{path}: only little-endian legacy files are supported")
    unpickler = _RestrictedUnpickler(stream, path)
    tree = _load(unpickler, path)
    keys = _load(_RestrictedUnpickler(stream, path), path)
    if type(keys) is not list or len(set(map(str, keys))) != len(keys):
        raise PthError(f"{path}: the storage key list is not a list of distinct keys")
    for key in keys:  # each storage: its element count (int64) then its bytes, in this order
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise PthError(f"{path}: storage '{key}' is listed but no tensor uses it")
        count = int.from_bytes(_read(stream, 8, path), "little")
        left = len(data) - stream.tell()
        if count * storage.dtype.itemsize > left:
            raise PthError(f"{path}: storage '{key}' declares {count} elements but only {left} bytes remain")
        storage.array = _storage_array(_read(stream, count * storage.dtype.itemsize, path), storage.dtype, count)
    return _resolve(tree, path)


def _load(unpickler: _RestrictedUnpickler, path: str):
    try:
        return unpickler.load()
    except (PthError, _Refused):
        raise
    except Exception as error:
        raise PthError(f"{path}: corrupt pickle ({type(error).__name__}: {error})") from error


# Values that come back as themselves; containers are rebuilt with their contents checked.
PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray)
CONTAINER_TYPES = (dict, collections.OrderedDict, list, tuple, set, frozenset)


def _resolve(tree, path: str):
    """``tree`` with every tensor reference replaced by its array view, shared references kept
    shared; refuses anything but plain values, containers and tensors, nesting beyond MAX_DEPTH
    (and cycles) and more than MAX_TENSORS tensor references in all."""
    done: dict[int, tuple[object, int]] = {}  # id -> (resolved value, tensor references inside)
    active: set[int] = set()

    def visit(node, depth: int):
        kind = type(node)
        if kind in PLAIN_TYPES:
            return node, 0
        if id(node) in done:
            return done[id(node)]
        if kind is _TensorRef:
            if node.storage.array is None:
                raise PthError(f"{path}: storage '{node.storage.key}' has no data")
            result = (node.to_numpy(), 1)
        elif kind in CONTAINER_TYPES:
            if depth >= MAX_DEPTH or id(node) in active:
                raise PthError(f"{path}: containers nest more than {MAX_DEPTH} deep (or contain themselves)")
            active.add(id(node))
            items = node.items() if isinstance(node, dict) else ((value,) for value in node)
            resolved, count = [], 0
            for item in items:
                parts = [visit(part, depth + 1) for part in item]
                resolved.append(tuple(value for value, _ in parts))
                count += sum(n for _, n in parts)
                if count > MAX_TENSORS:
                    raise PthError(f"{path}: more than {MAX_TENSORS} tensor references; refused as too costly")
            active.discard(id(node))
            value = kind(resolved) if isinstance(node, dict) else kind(v for (v,) in resolved)
            result = (value, count)
        else:
            what = f"{getattr(node, 'name', kind.__name__)}" if isinstance(node, _Sealed) else kind.__name__
            raise UnsafePickleError(f"{path}: the pickle returns a {what} object as a value; only tensors, "
                                    "plain values and containers are allowed")
        done[id(node)] = result
        return result

    return visit(tree, 0)[0]


def _storage_array(raw: bytes, dtype: np.dtype, numel: int) -> np.ndarray:
    """The storage's elements in native byte order, in a writable array of exactly ``numel``."""
    if dtype == np.bool_:
        return np.frombuffer(raw, np.uint8, count=numel) != 0
    return np.frombuffer(raw, dtype, count=numel).astype(dtype.newbyteorder("="))


def _read(f, n: int, path: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise PthError(f"{path}: file is truncated")
    return data
