"""colorjax demo in a real browser: Debian's headless Chromium, driven by selenium through chromedriver.

Uploads a corrupt file (the page shows why and keeps working), then a real photo; checks the
result's size and lightness, moves the temperature slider with the keyboard (chroma falls as T
rises) and downloads the PNG. On a user-guided model: clicks a colour hint onto the picture, sets
its colour with the picker, drags it and removes it, checking where the result's colour goes.
Skips, saying why, only where selenium, Chromium or chromedriver cannot be found.

The README's screenshot is taken by :func:`test_screenshot_of_the_page`:

    COLORJAX_DEMO_CHECKPOINT=runs/cpu_colorizer COLORJAX_SCREENSHOT=docs/demo-screenshot.png \
        pytest tests/test_demo_browser.py -k screenshot

(any checkpoint; a user-guided one gets a few colour hints in the picture).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
from flax import nnx
from PIL import Image

from colorjax.checkpointing import save_model
from colorjax.demo.browser import WINDOW

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # drives headless Chromium against a served model: minutes on 2 CPU cores

pytest.importorskip("uvicorn", reason="the demo extra is not installed (pip install -e '.[demo]')")

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}
SIZE = 64
WAIT_S = 120  # a loaded 2-core machine can take seconds per request
SCREENSHOT_WINDOW = (1400, 1000)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from colorjax.demo.browser import find_chromium, headless_chromium

    binary, driver_path = find_chromium()
    if binary is None or driver_path is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    f"(apt-get install chromium chromium-driver); found browser={binary}, chromedriver={driver_path}")
    downloads = tmp_path_factory.mktemp("downloads")
    driver = headless_chromium(downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo on a tiny untrained Q-bin model."""
    from colorjax.demo import start
    from colorjax.models import build_model

    checkpoint = tmp_path_factory.mktemp("browser-ckpt")
    save_model(checkpoint, build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0)), MODEL_CONFIG)
    with start(checkpoint, size=SIZE) as running:
        assert running.engine is not None, running.load_error
        yield running


HINTS_CONFIG = {"backbone": "siggraph17", "head": "regression", "width": 1 / 16}


def hint_copying_siggraph17():
    """A tiny SIGGRAPH17 whose weights are set so that its output is 110 tanh(hint ab / 110) where
    a point is and ab = 0 (gray) everywhere else: a known answer for where the page's points land.

    Every conv is zeroed except one path through the net's shallowest shortcut: conv1_1 splits the
    hint's a / 110 and b / 110 into positive and negative parts (4 channels, so ReLU keeps them),
    conv1_2, the conv1 -> conv10 shortcut and conv10 pass them on (centre taps of 1), and the 1 x 1
    output conv takes a = a+ - a-, b = b+ - b-. BatchNorm at its initial statistics is the
    identity up to its epsilon.
    """
    from colorjax.models import build_model

    model = build_model(**HINTS_CONFIG, rngs=nnx.Rngs(0))
    net = model.backbone
    for _, layer in nnx.iter_modules(net):
        if hasattr(layer, "kernel") and isinstance(layer, nnx.Module):
            layer.kernel[...] = np.zeros(layer.kernel.shape, np.float32)
            if getattr(layer, "bias", None) is not None:
                layer.bias[...] = np.zeros(layer.bias.shape, np.float32)
    split = np.zeros(net.model1[0].kernel.shape, np.float32)  # [3, 3, 4 = (L, a, b, mask), 4]
    split[1, 1, 1, 0], split[1, 1, 1, 1], split[1, 1, 2, 2], split[1, 1, 2, 3] = 1, -1, 1, -1
    net.model1[0].kernel[...] = split
    for layer in (net.model1[1], net.model1short10, net.model10[0]):
        identity = np.zeros(layer.kernel.shape, np.float32)
        for channel in range(4):
            identity[1, 1, channel, channel] = 1
        layer.kernel[...] = identity
    out = np.zeros(net.model_out.kernel.shape, np.float32)  # [1, 1, 8, 2]
    out[0, 0, 0, 0], out[0, 0, 1, 0], out[0, 0, 2, 1], out[0, 0, 3, 1] = 1, -1, 1, -1
    net.model_out.kernel[...] = out
    return model


@pytest.fixture(scope="module")
def hint_server(tmp_path_factory):
    """The demo on :func:`hint_copying_siggraph17` at 64 px."""
    from colorjax.demo import start

    checkpoint = tmp_path_factory.mktemp("browser-hints-ckpt")
    save_model(checkpoint, hint_copying_siggraph17(), HINTS_CONFIG)
    with start(checkpoint, size=SIZE) as running:
        assert running.engine is not None and running.engine.info.takes_hints, running.load_error
        yield running


def _state_is(driver, *states):
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") in states


def _image_from_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _chroma(rgb) -> float:
    lab = skimage.color.rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _upload(driver, path: Path) -> None:
    file_input = driver.find_element(By.ID, "file")
    driver.execute_script("arguments[0].hidden = false;", file_input)
    file_input.send_keys(str(path))
    driver.execute_script("arguments[0].hidden = true;", file_input)


def _wait_for_temperature(driver, value: str) -> np.ndarray:
    image = driver.find_element(By.ID, "colorized")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: image.get_attribute("data-temperature") == value and _state_is(d, "ready")
    )
    return _image_from_data_url(image.get_attribute("src"))


@pytest.mark.slow
def test_the_page_colorizes_a_photo_moves_temperature_and_downloads(browser, server, tmp_path):
    photo = skimage.data.coffee()  # 400 x 600, a real photograph
    photo_path = tmp_path / "coffee.jpg"
    Image.fromarray(photo).save(photo_path, quality=95)
    broken_path = tmp_path / "broken.jpg"
    broken_path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")

    browser.get(server.url)
    WebDriverWait(browser, WAIT_S).until(lambda d: _state_is(d, "idle"))
    facts = {e.get_attribute("data-fact"): e.text for e in browser.find_elements(By.CSS_SELECTOR, "#model dd")}
    info = server.engine.info
    assert facts["backbone"].startswith(info.backbone) and f"{info.bins} colour bins" in facts["head"]
    assert facts["step"] == str(info.step) and facts["model"] == info.name

    _upload(browser, broken_path)  # a corrupt file: a message on the page, the page keeps working
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "error").text)
    assert "broken.jpg" in browser.find_element(By.ID, "error").text

    _upload(browser, photo_path)
    first = _wait_for_temperature(browser, "0.38")
    assert browser.find_element(By.ID, "error").text == ""
    assert first.shape == photo.shape
    decoded = np.asarray(Image.open(photo_path).convert("RGB"))
    L_error = np.abs(skimage.color.rgb2lab(first)[..., 0] - skimage.color.rgb2lab(decoded)[..., 0])
    assert L_error.mean() < 0.2 and L_error.max() < 1.0  # the photo's own L, colour added on top
    gray = _image_from_data_url(browser.find_element(By.ID, "gray").get_attribute("src"))
    assert gray.shape == photo.shape[:2]
    upload_ms = float(browser.find_element(By.ID, "timing").get_attribute("data-round-trip-ms"))

    slider = browser.find_element(By.ID, "temperature")
    slider.send_keys(Keys.HOME)  # T = 0: each pixel's most likely bin
    vivid = _wait_for_temperature(browser, "0")
    slide_ms = float(browser.find_element(By.ID, "timing").get_attribute("data-round-trip-ms"))
    slider.send_keys(Keys.END)  # T = 1: the mean of the distribution
    dull = _wait_for_temperature(browser, "1")
    assert _chroma(vivid) > _chroma(first) > _chroma(dull)
    L_change = np.abs(skimage.color.rgb2lab(vivid)[..., 0] - skimage.color.rgb2lab(dull)[..., 0])
    assert L_change.mean() < 0.3 and L_change.max() < 1.5  # only ab moved (up to 8-bit rounding)
    for _ in range(62):  # back to the paper's T = 0.38, one arrow key (0.01) at a time
        slider.send_keys(Keys.ARROW_LEFT)
    again = _wait_for_temperature(browser, "0.38")
    np.testing.assert_array_equal(again, first)

    browser.find_element(By.ID, "download").click()
    target = browser.downloads / "coffee-colorized.png"
    deadline = time.monotonic() + 30
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    downloaded = np.asarray(Image.open(target))
    np.testing.assert_array_equal(downloaded, first)

    print(f"upload shown after {upload_ms:.0f} ms, slider move after {slide_ms:.0f} ms")


def _ab_at(rgb: np.ndarray, x: float, y: float, radius: int = 2) -> np.ndarray:
    """Mean Lab ab of the (2 radius + 1)^2 pixels around image pixel (x, y)."""
    col, row = int(x), int(y)
    patch = rgb[row - radius : row + radius + 1, col - radius : col + radius + 1]
    return skimage.color.rgb2lab(patch).reshape(-1, 3)[:, 1:].mean(axis=0)


def _hex_ab(colour: str) -> np.ndarray:
    rgb = np.frombuffer(bytes.fromhex(colour[1:]), np.uint8).reshape(1, 1, 3)
    return skimage.color.rgb2lab(rgb)[0, 0, 1:]


def _revision(driver) -> int:
    return int(driver.find_element(By.ID, "colorized").get_attribute("data-revision") or 0)


def _wait_for_new_result(driver, after: int) -> np.ndarray:
    WebDriverWait(driver, WAIT_S).until(lambda d: _revision(d) > after and _state_is(d, "ready"))
    return _image_from_data_url(driver.find_element(By.ID, "colorized").get_attribute("src"))


def _click_image(driver, image, x: float, y: float, natural_width: int) -> None:
    """Click image pixel (x, y) of an image shown at any size (selenium offsets are from its centre)."""
    scale = image.size["width"] / natural_width
    dx = (x + 0.5) * scale - image.size["width"] / 2
    dy = (y + 0.5) * scale - image.size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(image, round(dx), round(dy)).click().perform()


@pytest.mark.slow
def test_the_page_takes_colour_hints_click_pick_drag_remove(browser, hint_server, tmp_path):
    photo = skimage.data.coffee()  # 400 x 600
    photo_path = tmp_path / "coffee.png"
    Image.fromarray(photo).save(photo_path)
    browser.get(hint_server.url)
    WebDriverWait(browser, WAIT_S).until(lambda d: _state_is(d, "idle"))
    assert browser.find_element(By.ID, "hints").is_displayed()
    assert not browser.find_element(By.ID, "temperature-control").is_displayed()  # a regression model

    before = _revision(browser)
    _upload(browser, photo_path)
    base = _wait_for_new_result(browser, before)
    assert _chroma(base) < 1.0  # no point, no colour (the model's known answer)

    gray = browser.find_element(By.ID, "gray")
    _click_image(browser, gray, 150, 300, photo.shape[1])  # the table, below and left of the cup
    first = _wait_for_new_result(browser, before + 1)
    points = browser.execute_script("return window.colorjaxDemo.hints();")
    assert len(points) == 1 and abs(points[0]["x"] - 150.5) < 2 and abs(points[0]["y"] - 300.5) < 2
    picker = browser.find_element(By.CSS_SELECTOR, "#hint-list .hint-colour")
    x, y = points[0]["x"], points[0]["y"]
    assert picker.get_attribute("value") == "#%02x%02x%02x" % tuple(base[int(y), int(x)])  # the result's colour there
    np.testing.assert_allclose(_ab_at(first, x, y), _ab_at(base, x, y), atol=1.0)  # a gray hint keeps it gray

    red = "#e0201c"
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
                           picker, red)
    hinted = _wait_for_new_result(browser, before + 2)
    target = _hex_ab(red)
    far_before, far_after = np.linalg.norm(_ab_at(base, x, y) - target), np.linalg.norm(_ab_at(hinted, x, y) - target)
    assert far_after < 0.5 * far_before, (far_before, far_after)  # the colour at the point moved to the hint
    np.testing.assert_allclose(_ab_at(hinted, 450, 100), _ab_at(base, 450, 100), atol=1.0)  # and only there

    marker = browser.find_element(By.CSS_SELECTOR, "#gray-stage .hint-point")
    scale = gray.size["width"] / photo.shape[1]
    # To the table's right (mid-gray like the first place: a bright place would hold less chroma in sRGB).
    ActionChains(browser).click_and_hold(marker).move_by_offset(round(400 * scale), round(40 * scale)).release().perform()
    moved = _wait_for_new_result(browser, before + 3)
    points = browser.execute_script("return window.colorjaxDemo.hints();")
    assert len(points) == 1 and abs(points[0]["x"] - (x + 400)) < 3 and abs(points[0]["y"] - (y + 40)) < 3
    new_x, new_y = points[0]["x"], points[0]["y"]
    assert np.linalg.norm(_ab_at(moved, new_x, new_y) - target) < 0.5 * far_before  # the colour went with it
    np.testing.assert_allclose(_ab_at(moved, x, y), _ab_at(base, x, y), atol=1.0)  # and left the old place

    # A point the server refuses (outside the picture): the page says why and keeps working.
    browser.execute_script("window.colorjaxDemo.addHint(5000, 10, '#20c040');")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "error").text and _state_is(d, "ready"))
    assert "hint 2: (5000, 10) is outside the 600 x 400 image" in browser.find_element(By.ID, "error").text
    browser.find_elements(By.CSS_SELECTOR, "#hint-list .hint-remove")[1].click()  # the x button of point 2
    kept = _wait_for_new_result(browser, before + 4)
    assert browser.find_element(By.ID, "error").text == ""
    np.testing.assert_array_equal(kept, moved)

    ActionChains(browser).context_click(browser.find_element(By.CSS_SELECTOR, "#gray-stage .hint-point")).perform()
    removed = _wait_for_new_result(browser, before + 5)
    assert browser.execute_script("return window.colorjaxDemo.hints();") == []
    assert browser.find_element(By.ID, "colorized").get_attribute("data-hints") == "0"
    np.testing.assert_array_equal(removed, base)


@pytest.mark.slow
def test_screenshot_of_the_page(browser, tmp_path_factory):
    """The README's screenshot: scikit-image's coffee photo on $COLORJAX_DEMO_CHECKPOINT (default: a
    tiny untrained model), with colour points on a user-guided model; saved to $COLORJAX_SCREENSHOT
    when set."""
    from colorjax.demo import start
    from colorjax.models import build_model

    checkpoint, size = os.environ.get("COLORJAX_DEMO_CHECKPOINT"), None
    if not checkpoint:
        checkpoint, size = tmp_path_factory.mktemp("screenshot-ckpt"), SIZE
        save_model(checkpoint, build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0)), MODEL_CONFIG)
    photo = skimage.data.coffee()
    photo_path = tmp_path_factory.mktemp("screenshot") / "coffee.jpg"
    Image.fromarray(photo).save(photo_path, quality=95)
    with start(checkpoint, size=size) as server:
        assert server.engine is not None, server.load_error
        browser.get(server.url)
        WebDriverWait(browser, WAIT_S).until(lambda d: _state_is(d, "idle"))
        before = _revision(browser)
        _upload(browser, photo_path)
        _wait_for_new_result(browser, before)
        if server.engine.info.takes_hints:
            for x, y, colour in ((300, 160, "#6b3a1e"), (90, 330, "#a0522d")):  # the coffee, the table
                before = _revision(browser)
                browser.execute_script("window.colorjaxDemo.addHint(arguments[0], arguments[1], arguments[2]);", x, y, colour)
                _wait_for_new_result(browser, before)
        browser.set_window_size(*SCREENSHOT_WINDOW)  # the whole page, hint list included
        shot = tmp_path_factory.mktemp("screenshot") / "demo-screenshot.png"
        browser.save_screenshot(str(shot))
        browser.set_window_size(*WINDOW)
    assert Image.open(shot).size[0] == SCREENSHOT_WINDOW[0]
    assert browser.find_element(By.ID, "error").text == ""
    if os.environ.get("COLORJAX_SCREENSHOT"):
        keep = Path(os.environ["COLORJAX_SCREENSHOT"])
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep)
        print(f"screenshot saved to {keep}")
