"""colorjax demo without a browser: the engine is colorize's path, compiles nothing per upload,
re-decodes cached logits for a temperature change, refuses bad input clearly; the HTTP API keeps
serving after each refusal."""

from __future__ import annotations

import io
import json
import struct
import urllib.error
import urllib.request
import zlib

import jax
import numpy as np
import pytest
import skimage.color
import skimage.data
from flax import nnx
from PIL import Image

from colorjax.checkpointing import save_model
from colorjax.demo.engine import DemoEngine, UploadError, describe_training_data, gray_from_lightness
from colorjax.inference import colorize_arrays
from conftest import counting_compilations

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}
SIZE = 64


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, save_random_model):
    return save_random_model(tmp_path_factory.mktemp("demo-ckpt"), MODEL_CONFIG)


@pytest.fixture(scope="module")
def engine(checkpoint):
    engine = DemoEngine.from_checkpoint(checkpoint, size=SIZE)
    engine.warm_up()
    return engine


def _encode(pixels, fmt="PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _chroma(rgb_uint8) -> float:
    lab = skimage.color.rgb2lab(rgb_uint8)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but whose pixel data is a 1 x 1 image's."""
    data = bytearray(_encode(np.zeros((1, 1), np.uint8)))
    ihdr = 8 + 8  # signature, then length and type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    return bytes(data)


def test_model_facts(engine, checkpoint):
    info = engine.info
    assert (info.backbone, info.head, info.bins, info.size, info.step) == ("eccv16", "classification", 313, SIZE, 0)
    assert info.name == checkpoint.name and not info.takes_hints
    assert "not recorded" in info.training_data
    config = {"data": {"spec": "embedded", "crop_size": 64}, "method": "classification"}
    assert describe_training_data(config) == "the photos scikit-image and scikit-learn ship, 64 px crops, method classification"


def test_upload_is_colorized_like_colorjax_colorize(engine, checkpoint):
    from colorjax.checkpointing import load_model

    photo = skimage.data.chelsea()  # 300 x 451
    result = engine.colorize(_encode(photo, "JPEG", quality=95), "chelsea.jpg", temperature=0.38)
    assert (result.width, result.height) == (451, 300)
    decoded = np.asarray(Image.open(io.BytesIO(_encode(photo, "JPEG", quality=95))).convert("RGB"))
    model, _, _ = load_model(checkpoint)
    expected = colorize_arrays(model, [decoded], size=SIZE, temperature=0.38)[0]
    got = _decode_png(result.colorized_png)
    assert got.shape == expected.shape == (300, 451, 3)
    assert np.abs(got.astype(int) - expected).max() <= 1  # same path; batch 1 vs a padded batch of 8
    gray = _decode_png(result.gray_png)
    L_in = skimage.color.rgb2lab(decoded)[..., 0]
    assert gray.shape == (300, 451) and np.abs(skimage.color.rgb2lab(np.repeat(gray[..., None], 3, -1))[..., 0] - L_in).max() < 0.8


def test_temperature_re_decodes_the_cached_logits_and_moves_chroma(engine):
    photo = skimage.data.coffee()
    first = engine.colorize(_encode(photo), "coffee.png", temperature=0.38)
    chroma = {}
    for t in (0.0, 0.38, 1.0):
        result = engine.recolor(first.upload_id, t)
        assert set(result.timings_ms) == {"render", "total"}  # the model did not run
        chroma[t] = _chroma(_decode_png(result.colorized_png))
    assert chroma[0.0] > chroma[0.38] > chroma[1.0]  # the mode is vivid, the mean dull
    np.testing.assert_array_equal(_decode_png(engine.recolor(first.upload_id, 0.38).colorized_png),
                                  _decode_png(first.colorized_png))
    engine.colorize(_encode(photo[:50, :60]), "crop.png")
    with pytest.raises(KeyError, match="no longer cached"):
        engine.recolor(first.upload_id, 0.5)
    with pytest.raises(ValueError, match="temperature: 1.5 is above the maximum 1"):
        engine.colorize(_encode(photo), "coffee.png", temperature=1.5)


def test_uploads_of_new_sizes_and_formats_compile_nothing(engine):
    with counting_compilations() as compiles:
        rng = np.random.default_rng(0)
        gray16 = (rng.uniform(0, 65535, (123, 77))).astype(np.uint16)
        uploads = [
            (_encode(skimage.data.astronaut(), "JPEG"), "astronaut.jpg", (512, 512)),
            (_encode(gray16), "gray16.png", (77, 123)),
            (_encode(skimage.data.camera()[:301, :203], "TIFF"), "camera.tif", (203, 301)),
            (_encode(skimage.data.rocket()), "rocket.png", (640, 427)),
        ]
        for data, name, size in uploads:
            result = engine.colorize(data, name)
            assert (result.width, result.height) == size
            assert _decode_png(result.colorized_png).shape == (size[1], size[0], 3)
            engine.recolor(result.upload_id, 0.1)
        assert compiles == []
        jax.image.resize(np.zeros((13, 17, 1), np.float32), (5, 5, 1), "linear")  # the old path's resize
        assert compiles, "the listener must see the compilation of a shape never seen before"


def test_bad_uploads_are_refused_with_the_name_and_the_reason(engine):
    cases = [
        (b"\xff\xd8\xff\xe0 this is not really a JPEG", "broken.jpg", "broken.jpg"),
        (b"just some text\n", "notes.txt", "not an image"),
        (b"", "empty.png", "empty"),
        (_encode(skimage.data.camera())[:3000], "truncated.png", "truncated.png"),
        (_png_header_only(20000, 20000), "huge.png", "megapixels"),
    ]
    for data, name, expected in cases:
        with pytest.raises(UploadError, match=expected) as refused:
            engine.colorize(data, name)
        assert name in str(refused.value)
    small_limit = DemoEngine(engine.colorizer, engine.info, max_pixels=10_000)
    with pytest.raises(UploadError, match=r"200 x 200 = 0.0 megapixels exceeds"):
        small_limit.colorize(_encode(np.zeros((200, 200, 3), np.uint8)), "big.png")
    assert engine.colorize(_encode(skimage.data.chelsea()), "chelsea.png").width == 451  # still works


def test_gray_from_lightness_matches_scikit_image():
    L = np.linspace(0, 100, 1001, dtype=np.float32).reshape(1001, 1, 1)
    expected = skimage.color.lab2rgb(np.concatenate([L, np.zeros_like(L), np.zeros_like(L)], -1).astype(np.float64))
    assert np.abs(gray_from_lightness(L).astype(int) - np.round(expected[..., 0] * 255)).max() <= 1


def _request(url, data=None, content_type="application/octet-stream"):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_http_api_keeps_serving_after_bad_input(checkpoint, caplog):
    from colorjax.demo import start

    with start(checkpoint, size=SIZE) as server, caplog.at_level("INFO", logger="colorjax.demo"):
        status, page = _request(server.url)
        assert status == 200 and b"colorjax demo" in page
        status, body = _request(server.url + "api/model")
        assert status == 200 and json.loads(body)["backbone"] == "eccv16"
        status, body = _request(server.url + "api/colorize?name=notes.txt", b"not an image")
        assert status == 400 and "notes.txt: not an image" in json.loads(body)["error"]
        assert "notes.txt: not an image" in caplog.text
        status, body = _request(server.url + "api/colorize?name=cat.png&temperature=0.2", _encode(skimage.data.chelsea()))
        result = json.loads(body)
        assert status == 200 and (result["width"], result["height"], result["temperature"]) == (451, 300, 0.2)
        assert result["colorized"].startswith("data:image/png;base64,") and "model" in result["timings_ms"]
        recolor = json.dumps({"upload_id": result["upload_id"], "temperature": 0.9}).encode()
        status, body = _request(server.url + "api/recolor", recolor, "application/json")
        assert status == 200 and json.loads(body)["temperature"] == 0.9
        stale = json.dumps({"upload_id": result["upload_id"] + 100, "temperature": 0.9}).encode()
        status, body = _request(server.url + "api/recolor", stale, "application/json")
        assert status == 409 and "upload the image again" in json.loads(body)["error"]


def test_a_wrong_checkpoint_is_shown_on_the_page_and_logged(tmp_path, caplog):
    from colorjax.demo import start

    not_a_checkpoint = tmp_path / "runs" / "typo"
    not_a_checkpoint.mkdir(parents=True)
    with caplog.at_level("ERROR", logger="colorjax.demo"), start(not_a_checkpoint) as server:
        assert server.engine is None
        status, body = _request(server.url + "api/model")
        assert status == 503 and "typo" in json.loads(body)["error"] and "no checkpoint found" in json.loads(body)["error"]
        status, body = _request(server.url + "api/colorize?name=a.png", _encode(np.zeros((8, 8, 3), np.uint8)))
        assert status == 503 and "no model loaded" in json.loads(body)["error"]
        assert _request(server.url)[0] == 200  # the page is still served
    assert "typo" in caplog.text and "cannot load the model" in caplog.text


@pytest.mark.slow
def test_colorjax_demo_command_serves_and_prints_its_address(checkpoint, tmp_path):
    """`colorjax demo --checkpoint DIR --port N` as a user runs it: prints the address, serves the page."""
    import os
    import subprocess
    import sys
    import time

    from colorjax.cli import main
    from colorjax.demo.server import free_port

    assert main(["demo", "--checkpoint", str(checkpoint), "--port", "0"]) == 2  # refused before loading
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "colorjax.cli", "demo", "--checkpoint", str(checkpoint), "--port", str(port), "--size", "32"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if f"open http://127.0.0.1:{port}/" in line:
                break
        assert any(f"open http://127.0.0.1:{port}/" in line for line in lines), "".join(lines)
        assert any("step 0, eccv16 classification, 32 px" in line for line in lines), "".join(lines)
        status, body = _request(f"http://127.0.0.1:{port}/api/model")
        assert status == 200 and json.loads(body)["size"] == 32
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_regression_model_is_served_without_temperature(tmp_path):
    from colorjax.checkpointing import load_model
    from colorjax.models import build_model

    config = {"backbone": "eccv16", "head": "regression", "width": 1 / 16}
    save_model(tmp_path, build_model(**config, rngs=nnx.Rngs(1)), config)
    engine = DemoEngine.from_checkpoint(tmp_path, size=SIZE)
    assert engine.info.head == "regression" and engine.info.bins is None
    photo = skimage.data.chelsea()[:100, :130]
    result = engine.colorize(_encode(photo), "cat.png", temperature=0.0)
    assert result.temperature is None
    model, _, _ = load_model(tmp_path)
    expected = colorize_arrays(model, [photo], size=SIZE)[0]
    assert np.abs(_decode_png(result.colorized_png).astype(int) - expected).max() <= 1


HINTS_CONFIG = {"backbone": "siggraph17", "head": "regression", "width": 1 / 16}
HINTS_SIZE = 32


@pytest.fixture(scope="module")
def hints_checkpoint(tmp_path_factory, save_random_model):
    return save_random_model(tmp_path_factory.mktemp("demo-hints-ckpt"), HINTS_CONFIG, seed=3)


def test_hints_take_colorize_arrays_path_and_compile_nothing(hints_checkpoint):
    from colorjax.checkpointing import load_model

    engine = DemoEngine.from_checkpoint(hints_checkpoint, size=HINTS_SIZE)
    assert engine.info.takes_hints and engine.info.head == "regression"
    engine.warm_up()
    photo = skimage.data.chelsea()  # 300 x 451
    first = engine.colorize(_encode(photo), "chelsea.png")
    points = [{"x": 300, "y": 120.5, "color": "#d02020"}, {"x": 40, "y": 250, "color": "#2040e0"}]
    model, _, _ = load_model(hints_checkpoint)
    with counting_compilations() as compiles:
        hinted = engine.recolor(first.upload_id, 0.38, hints=points)
        moved = engine.recolor(first.upload_id, 0.38, hints=[{**points[0], "x": 100}])
        cleared = engine.recolor(first.upload_id, 0.38, hints=[])
    assert compiles == []  # points change the hint map's values, never its shape
    assert hinted.hints == 2 and "model" in hinted.timings_ms and cleared.hints == 0
    expected = colorize_arrays(model, [photo], size=HINTS_SIZE, hints=points)[0]
    assert np.abs(_decode_png(hinted.colorized_png).astype(int) - expected).max() <= 1
    expected_moved = colorize_arrays(model, [photo], size=HINTS_SIZE, hints=[{**points[0], "x": 100}])[0]
    assert np.abs(_decode_png(moved.colorized_png).astype(int) - expected_moved).max() <= 1
    assert np.abs(_decode_png(hinted.colorized_png).astype(int) - _decode_png(first.colorized_png)).max() > 5
    np.testing.assert_array_equal(_decode_png(cleared.colorized_png), _decode_png(first.colorized_png))
    kept = engine.recolor(first.upload_id, 0.9, hints=None)  # None keeps the points: no model run
    assert "model" not in kept.timings_ms and kept.hints == 0


def test_bad_hints_are_refused_naming_the_point_and_leave_the_result(hints_checkpoint, engine):
    from colorjax.hints import HintError

    hinted = DemoEngine.from_checkpoint(hints_checkpoint, size=HINTS_SIZE)
    first = hinted.colorize(_encode(skimage.data.chelsea()), "chelsea.png")
    good = [{"x": 10, "y": 10, "color": "#ff0000"}]
    with_good = hinted.recolor(first.upload_id, 0.38, hints=good)
    cases = [
        ([*good, {"x": 451, "y": 10, "color": "#00ff00"}], r"hint 2: \(451, 10\) is outside the 451 x 300 image"),
        ([{"x": 5, "y": -1, "color": "#00ff00"}], "outside the 451 x 300 image"),
        ([{"x": 5, "y": 5, "color": "green"}], r"hint 1: colour 'green' is not '#rrggbb'"),
        ([{"x": 5, "y": 5}], "hint 1: needs exactly one of color"),
        ("#ff0000", "hints must be a list of points"),
        ([{"x": 1, "y": 1, "color": "#000000"}] * 300, "at most 256 points"),
    ]
    for hints, message in cases:
        with pytest.raises(HintError, match=message):
            hinted.recolor(first.upload_id, 0.38, hints=hints)
    after = hinted.recolor(first.upload_id, 0.38)  # the good point's result is still the cached one
    assert after.hints == 1
    np.testing.assert_array_equal(_decode_png(after.colorized_png), _decode_png(with_good.colorized_png))
    upload = engine.colorize(_encode(skimage.data.chelsea()), "chelsea.png")
    with pytest.raises(HintError, match=r"ECCV16 backbone\) takes no hints"):
        engine.recolor(upload.upload_id, 0.38, hints=good)


def test_http_hints_and_bad_hints_keep_the_server_serving(hints_checkpoint):
    from colorjax.demo import start

    with start(hints_checkpoint, size=HINTS_SIZE) as server:
        assert json.loads(_request(server.url + "api/model")[1])["takes_hints"] is True
        status, body = _request(server.url + "api/colorize?name=cat.png", _encode(skimage.data.chelsea()))
        upload_id = json.loads(body)["upload_id"]
        bad = {"upload_id": upload_id, "temperature": 0.38, "hints": [{"x": 9999, "y": 3, "color": "#ff0000"}]}
        status, body = _request(server.url + "api/recolor", json.dumps(bad).encode(), "application/json")
        assert status == 400 and "hint 1: (9999, 3) is outside the 451 x 300 image" in json.loads(body)["error"]
        good = {"upload_id": upload_id, "temperature": 0.38, "hints": [{"x": 200, "y": 100, "color": "#ff0000"}]}
        status, body = _request(server.url + "api/recolor", json.dumps(good).encode(), "application/json")
        assert status == 200 and json.loads(body)["hints"] == 1
