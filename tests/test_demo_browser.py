"""colorjax demo in a real browser: Debian's headless Chromium, driven by selenium through chromedriver.

Uploads a corrupt file (the page shows why and keeps working), then a real photo; checks the
result's size and lightness, moves the temperature slider with the keyboard (chroma falls as T
rises), downloads the PNG, and saves a screenshot (also to $COLORJAX_SCREENSHOT_DIR when set).
Skips, saying why, only where selenium, Chromium or chromedriver cannot be found.
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

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow  # drives headless Chromium against a served model: minutes on 2 CPU cores

pytest.importorskip("uvicorn", reason="the demo extra is not installed (pip install -e '.[demo]')")

MODEL_CONFIG = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}
SIZE = 64
WAIT_S = 120  # a loaded 2-core machine can take seconds per request


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
    """The demo on a tiny untrained Q-bin model, or on $COLORJAX_DEMO_CHECKPOINT (e.g. a trained
    runs/quickstart, for a screenshot with learnt colours) when that is set."""
    from colorjax.demo import start
    from colorjax.models import build_model

    checkpoint, size = os.environ.get("COLORJAX_DEMO_CHECKPOINT"), None
    if not checkpoint:
        checkpoint, size = tmp_path_factory.mktemp("browser-ckpt"), SIZE
        save_model(checkpoint, build_model(**MODEL_CONFIG, rngs=nnx.Rngs(0)), MODEL_CONFIG)
    with start(checkpoint, size=size) as running:
        assert running.engine is not None, running.load_error
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

    screenshot = tmp_path / "colorjax-demo.png"
    browser.save_screenshot(str(screenshot))
    assert Image.open(screenshot).size[0] >= 1000
    if os.environ.get("COLORJAX_SCREENSHOT_DIR"):
        keep = Path(os.environ["COLORJAX_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, keep / screenshot.name)
    print(f"screenshot: {screenshot}; upload shown after {upload_ms:.0f} ms, slider move after {slide_ms:.0f} ms")
