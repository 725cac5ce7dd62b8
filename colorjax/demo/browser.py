"""Headless Chromium for the demo's browser test and latency measurement (selenium + chromedriver).

Uses the system's browser and driver (Debian: ``apt-get install chromium chromium-driver``); it
never downloads one. :func:`find_chromium` says what is missing instead of failing obscurely.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver")
WINDOW = (1400, 900)


def find_chromium() -> tuple[str | None, str | None]:
    """``(browser, chromedriver)`` paths; either is None where it is not installed."""
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver") or next((p for p in DRIVERS if os.path.exists(p)), None)
    return browser, driver


def headless_chromium(download_dir: str | os.PathLike):
    """A selenium Chrome driver on the system's Chromium, headless, saving downloads to ``download_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_chromium()
    if browser is None or driver is None:
        raise FileNotFoundError(f"no headless browser: install chromium and chromium-driver (found {browser}, {driver})")
    options = Options()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(Path(download_dir).absolute()), "download.prompt_for_download": False}
    )
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)
