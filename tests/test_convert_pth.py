"""The restricted .pth reader: torch's two file formats decoded exactly, and malicious pickles refused."""

import io
import os
import pickle
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


def test_a_pickle_cannot_overwrite_the_readers_objects(tmp_path):
    # _rebuild_tensor_v2 is allowed, but BUILD on what it returns (to forge its storage) is not
    buf = io.BytesIO()
    buf.write(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n")
    buf.write(b"(X\x03\x00\x00\x00abcK\x00)))tR")  # called with nonsense: refused as not a storage
    buf.write(b".")
    zip_pth(tmp_path / "forged.pth", buf.getvalue())
    with pytest.raises(PthError, match="not backed by a storage"):
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
