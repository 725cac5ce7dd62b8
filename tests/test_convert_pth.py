"""The restricted .pth reader: torch's two file formats decoded exactly, and malicious pickles refused."""

import collections
import io
import os
import pickle
import tempfile
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from colorjax.convert.pth_reader import PthError, UnsafePickleError, load_pth

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, name)


def test_tensors_of_every_dtype_views_and_transposes_match_torch():
    loaded = load_pth(fixture("tensors.pth"))
    expected = np.load(fixture("tensors.npz"))
    for name in expected:
        assert loaded["tensors"][name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(loaded["tensors"][name], expected[name])
    assert loaded["meta"] == {"epoch": 3, "name": "fixture", "shape": (1, 2)}


def test_legacy_format_reads_the_same_as_the_zip_format():
    new, legacy = load_pth(fixture("vgg16_w8.pth")), load_pth(fixture("vgg16_w8_legacy.pth"))
    assert list(new) == list(legacy) and len(new) == 9
    for key in new:
        np.testing.assert_array_equal(new[key], legacy[key])


class Exploit:
    """Pickles as a call of ``os.system`` (what a malicious .pth does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def zip_pth(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/byteorder", "little")


def test_a_pickle_calling_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model1.0.weight": Exploit(marker)}, protocol=2)
    assert b"system" in payload
    zip_pth(tmp_path / "evil.pth", payload)
    with pytest.raises(UnsafePickleError, match=r"evil\.pth: refused to load global '(posix|os)\.system'"):
        load_pth(tmp_path / "evil.pth")
    assert not marker.exists()
    # the same payload as a bare (legacy-style) pickle stream is refused too
    (tmp_path / "evil_legacy.pth").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="refused to load global"):
        load_pth(tmp_path / "evil_legacy.pth")
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("torch.nn.modules.conv", "Conv2d"), ("numpy", "load")])
def test_any_global_outside_the_allow_list_is_refused(tmp_path, module, name):
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."  # PROTO 2, GLOBAL, EMPTY_TUPLE, REDUCE, STOP
    zip_pth(tmp_path / "x.pth", payload)
    with pytest.raises(UnsafePickleError, match=f"'{module}.{name}'"):
        load_pth(tmp_path / "x.pth")


def test_a_tensor_not_backed_by_a_storage_is_refused(tmp_path):
    buf = io.BytesIO()
    buf.write(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n")
    buf.write(b"(X\x03\x00\x00\x00abcK\x00)))tR")  # called with nonsense: refused as not a storage
    buf.write(b".")
    zip_pth(tmp_path / "forged.pth", buf.getvalue())
    with pytest.raises(PthError, match=r"forged\.pth: a tensor in the pickle is not backed by a storage"):
        load_pth(tmp_path / "forged.pth")


def test_garbage_and_missing_files_get_clear_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(PthError, match=r"junk\.pth: not a PyTorch file"):
        load_pth(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_pth(tmp_path / "absent.pth")
    with zipfile.ZipFile(fixture("vgg16_w8.pth")) as source, zipfile.ZipFile(tmp_path / "cut.pth", "w") as cut:
        for item in source.namelist():
            if not item.endswith("/data/0"):
                cut.writestr(item, source.read(item))
    with pytest.raises(PthError, match="storage '0' is missing"):
        load_pth(tmp_path / "cut.pth")


# Hostile files, each built here from pickle opcodes (PROTO 2 ... STOP) and zipfile.


def ops(obj) -> bytes:
    """The pickle opcodes that push ``obj`` (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def tensor_ops(key="0", numel=4, offset=0, size=(4,), stride=(1,), storage="FloatStorage") -> bytes:
    """``torch._utils._rebuild_tensor_v2(<storage key of numel elements>, offset, size, stride)``,
    as torch.save writes it."""
    pid = b"(" + ops("storage") + f"ctorch\n{storage}\n".encode() + ops(key) + ops("cpu") + ops(numel) + b"tQ"
    return b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + ops(offset) + ops(tuple(size)) + ops(tuple(stride)) + b"tR"


def write_pth(path, body: bytes, storages=None):
    """A torch zip archive whose data.pkl is ``PROTO 2 + body + STOP``; ``storages``: key -> bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def floats(*values) -> bytes:
    return np.asarray(values, "<f4").tobytes()


def load_measured(path):
    """(what load_pth raised or returned, peak bytes Python and numpy allocated, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = load_pth(path)
    except Exception as error:  # noqa: BLE001 - the caller checks what it is
        result = error
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, peak, seconds


MIB = 2**20


@pytest.mark.parametrize("size, stride, problem", [
    ((8192, 8192), (0, 0), "overlaps itself"),  # one stored float as 256 MiB
    ((2**20, 2**20), (0, 0), "overlaps itself"),  # 4 TiB: a bare MemoryError before
    ((4, 4), (1, 1), "overlaps itself"),  # overlapping rows
    ((4, 4), (4, 0), "overlaps itself"),
    ((2**21, 2**21), (1, 2**21), "overruns its storage"),
])
def test_stride_0_and_overlapping_views_are_refused_without_allocating(tmp_path, size, stride, problem):
    path = write_pth(tmp_path / "view.pth", tensor_ops("0", 16, 0, size, stride), {"0": floats(*range(16))})
    result, peak, _ = load_measured(path)
    assert isinstance(result, PthError) and "view.pth: a tensor of size" in str(result) and problem in str(result)
    assert peak < 1 * MIB


def test_legal_views_share_their_storage_as_in_torch(tmp_path):
    # a 4 x 4 matrix, its transpose and its odd columns, all of one storage
    body = b"(" + ops("m") + tensor_ops("0", 16, 0, (4, 4), (4, 1)) + ops("t") + tensor_ops("0", 16, 0, (4, 4), (1, 4))
    body += ops("odd") + tensor_ops("0", 16, 1, (4, 2), (4, 2)) + ops("s") + tensor_ops("0", 16, 15, (), ()) + b"d"
    loaded = load_pth(write_pth(tmp_path / "views.pth", body, {"0": floats(*range(16))}))
    m = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(loaded["m"], m)
    np.testing.assert_array_equal(loaded["t"], m.T)
    np.testing.assert_array_equal(loaded["odd"], m[:, 1::2])
    assert loaded["s"].shape == () and loaded["s"] == 15
    loaded["m"][0, 1] = -1  # writing one writes the others, as with torch's shared storages
    assert loaded["t"][1, 0] == -1 and loaded["odd"][0, 0] == -1


@pytest.mark.parametrize("member", ["archive/data/0", "archive/data.pkl"])
def test_a_deflate_bomb_is_refused_before_it_inflates(tmp_path, member):
    """64 MiB of zeros deflate to 64 KiB; the reader must not inflate them to find out."""
    path = tmp_path / "bomb.pth"
    numel = 16 * MIB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        pickled = b"\x80\x02" + tensor_ops("0", numel, 0, (numel,), (1,)) + b"."
        archive.writestr("archive/byteorder", "little")
        for name in ("archive/data.pkl", "archive/data/0"):
            with archive.open(name, "w") as out:
                out.write(pickled if name == "archive/data.pkl" else b"")
                if name == member:
                    for _ in range(64):
                        out.write(bytes(MIB))
    assert path.stat().st_size < 1 * MIB
    result, peak, _ = load_measured(path)
    assert isinstance(result, PthError) and "bomb.pth: member" in str(result) and "decompression bomb" in str(result)
    assert peak < 1 * MIB


def test_a_compressed_archive_of_real_weights_still_loads(tmp_path):
    with zipfile.ZipFile(fixture("vgg16_w8.pth")) as source, \
            zipfile.ZipFile(tmp_path / "deflated.pth", "w", compression=zipfile.ZIP_DEFLATED) as out:
        for item in source.namelist():
            out.writestr(item, source.read(item))
    loaded, reference = load_pth(tmp_path / "deflated.pth"), load_pth(fixture("vgg16_w8.pth"))
    assert list(loaded) == list(reference)
    for key in reference:
        np.testing.assert_array_equal(loaded[key], reference[key])


def shared_references(levels: int) -> bytes:
    """A tensor, a list of 8 references to it, a list of 8 references to that list, ...:
    8 ** levels tensor references in ~20 bytes a level."""
    body = tensor_ops("0", 1, 0, (1,), (1,)) + b"q\x000"  # BINPUT 0, POP
    for level in range(1, levels + 1):
        body += b"(" + (b"h" + bytes([level - 1])) * 8 + b"l"
        body += b"q" + bytes([level]) + (b"0" if level < levels else b"")
    return body


def test_a_pickle_multiplying_shared_references_is_refused_at_once(tmp_path):
    path = write_pth(tmp_path / "fanout.pth", shared_references(7), {"0": floats(1.0)})  # 8^7 = 2.1 M tensors
    assert path.stat().st_size < 1024
    result, peak, seconds = load_measured(path)
    assert isinstance(result, PthError) and "fanout.pth: more than 100000 tensor references" in str(result)
    assert seconds < 1.0 and peak < 1 * MIB


def test_shared_references_below_the_limit_stay_shared(tmp_path):
    path = write_pth(tmp_path / "shared.pth", shared_references(4), {"0": floats(2.5)})  # 4096 references
    loaded, peak, seconds = load_measured(path)
    assert len(loaded) == 8 and all(part is loaded[0] for part in loaded)  # one list, referenced 8 times
    leaf = loaded[0][0][0][0]
    assert all(x is leaf for x in loaded[0][0][0]) and leaf.tolist() == [2.5]
    assert seconds < 1.0 and peak < 1 * MIB


def legacy_pth(path, count: int, data: bytes):
    """A legacy (pre-zip) torch file holding one float tensor of 4 elements whose storage record
    declares ``count`` elements, followed by ``data``."""
    from colorjax.convert.pth_reader import LEGACY_MAGIC, LEGACY_PROTOCOL

    parts = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(LEGACY_PROTOCOL, 2),
             pickle.dumps({"protocol_version": LEGACY_PROTOCOL, "little_endian": True}, 2),
             b"\x80\x02" + tensor_ops("0", 4, 0, (4,), (1,)) + b".", pickle.dumps(["0"], 2),
             count.to_bytes(8, "little"), data]
    path.write_bytes(b"".join(parts))
    return path


def corrupt_crc(path):
    with zipfile.ZipFile(fixture("vgg16_w8.pth")) as archive:
        info = archive.getinfo(next(n for n in archive.namelist() if n.endswith("/data/0")))
    raw = bytearray(open(fixture("vgg16_w8.pth"), "rb").read())
    name_length, extra_length = np.frombuffer(raw[info.header_offset + 26 : info.header_offset + 30], "<u2")
    start = info.header_offset + 30 + int(name_length) + int(extra_length)
    raw[start + info.file_size // 2] ^= 0x40  # a flipped bit inside the first storage
    path.write_bytes(bytes(raw))
    return path


HOSTILE = {  # name -> (builds the file, what the error says)
    "bad_crc": (corrupt_crc, "BadZipFile"),
    "offset_past_storage": (lambda p: write_pth(p, tensor_ops("0", 1, 5, (), ()), {"0": floats(1.0)}), "overruns"),
    "negative_offset": (lambda p: write_pth(p, tensor_ops("0", 4, -1, (), ()), {"0": floats(1, 2, 3, 4)}),
                        "storage offset is -1"),
    "negative_stride": (lambda p: write_pth(p, tensor_ops("0", 4, 3, (4,), (-1,)), {"0": floats(1, 2, 3, 4)}),
                        "stride is -1"),
    "deep_nesting": (lambda p: write_pth(p, b"]" * 50_000 + b"a" * 49_999), "nest more than 64 deep"),
    "self_containing": (lambda p: write_pth(p, b"]q\x00h\x00a"), "contain themselves"),
    "short_storage": (lambda p: write_pth(p, tensor_ops("0", 1000, 0, (4,), (1,)), {"0": floats(1, 2, 3, 4)}),
                      "holds 16 bytes, the pickle needs 4000"),
    "storage_declared_twice": (lambda p: write_pth(p, b"(" + tensor_ops("0", 4) + tensor_ops("0", 2, 0, (2,)) + b"l",
                                                   {"0": floats(1, 2, 3, 4)}), "declared twice"),
    "truncated_pickle": (lambda p: write_pth(p, b"(X\x00\x00\x10\x00abc"), "corrupt pickle"),
    "legacy_count_1e12": (lambda p: legacy_pth(p, 10**12, floats(1, 2, 3, 4)), "declares 1000000000000 elements"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_every_failure_is_the_readers_own_error_naming_the_file(tmp_path, name):
    build, message = HOSTILE[name]
    path = build(tmp_path / f"{name}.pth")
    result, peak, seconds = load_measured(path)
    assert type(result) is PthError, repr(result)
    assert str(result).startswith(f"{path}: ") and message in str(result)
    assert peak < 16 * MIB and seconds < 2.0


def test_legacy_reader_still_reads_a_well_formed_legacy_file(tmp_path):
    loaded = load_pth(legacy_pth(tmp_path / "legacy.pth", 4, floats(1, 2, 3, 4)))
    np.testing.assert_array_equal(loaded, [1, 2, 3, 4])


@pytest.mark.parametrize("module, name", [("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_tensor_v2"),
                                          ("collections", "OrderedDict"), ("torch", "FloatStorage")])
def test_a_pickle_cannot_overwrite_the_readers_objects(tmp_path, module, name):
    """BUILD (opcode ``b``) on an allow-listed global, with slot state: setattr(obj, key, value)."""
    from colorjax.convert import pth_reader

    defaults = {f: getattr(pth_reader, f).__defaults__ for f in ("_rebuild_parameter", "_rebuild_tensor_v2")}
    state = ops((None, {"__defaults__": (True, "forged"), "forged": 1}))
    write_pth(tmp_path / "build.pth", f"c{module}\n{name}\n".encode() + state + b"b")
    try:
        with pytest.raises(UnsafePickleError, match=r"build\.pth: the pickle tries to set the state"):
            load_pth(tmp_path / "build.pth")
    finally:
        changed = {f: getattr(pth_reader, f).__defaults__ for f in defaults}
        for f, value in defaults.items():  # repair, so that a failure here does not spread to other tests
            getattr(pth_reader, f).__defaults__ = value
    assert changed == defaults
    assert not hasattr(collections.OrderedDict, "forged")


def test_a_pickle_cannot_overwrite_a_tensor_it_built(tmp_path):
    body = tensor_ops("0", 4) + ops({"storage": "elsewhere", "offset": 3}) + b"b"
    write_pth(tmp_path / "retarget.pth", body, {"0": floats(1, 2, 3, 4)})
    with pytest.raises(UnsafePickleError, match="set the state of the reader's TensorRef"):
        load_pth(tmp_path / "retarget.pth")


def test_a_state_dicts_own_metadata_is_still_accepted():
    # torch's state_dict() is an OrderedDict with a _metadata attribute, pickled with BUILD
    state = collections.OrderedDict(weight=1.5)
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    payload = pickle.dumps(state, protocol=2)
    assert b"b" in payload[payload.index(b"_metadata") :]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.pth")
        zip_pth(path, payload)
        assert load_pth(path) == {"weight": 1.5}


@pytest.mark.parametrize("value", [b"ccollections\nOrderedDict\n", b"ctorch._utils\n_rebuild_parameter\n",
                                   b"ctorch\nFloatStorage\n", b"}X\x01\x00\x00\x00kctorch._utils\n_rebuild_tensor_v2\ns",
                                   b"K\x01ccollections\nOrderedDict\n\x86"])
def test_classes_and_functions_are_never_returned_as_values(tmp_path, value):
    write_pth(tmp_path / "object.pth", value)
    with pytest.raises(UnsafePickleError, match=r"object\.pth: the pickle returns a \w+ object as a value"):
        load_pth(tmp_path / "object.pth")
