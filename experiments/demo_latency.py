"""Latency of `colorjax demo` measured from the browser: upload-to-result and slider-move-to-result.

    timeout 1800 python -m experiments.demo_latency [--rounds 5] [--checkpoint runs/cpu_colorizer]

For each model below (random initialisation: the weights do not change the work; ``--checkpoint``
adds a trained one, e.g. the CPU recipe's, at its saved size), a checkpoint is saved to a temporary
folder, the demo is started on a free loopback port, and headless Chromium
(Debian's chromium + chromium-driver) uploads a 512 x 512 photo (scikit-image's astronaut, and its
mirror image, alternately) and moves the temperature slider one step at a time. Each time is the
page's own: from the request's start to the new image being decoded and shown
(``performance.now()`` around ``fetch`` and ``img.decode()``), as read from the page's timing line.
The first upload of each model is a warm-up (reported apart as ``first_upload_ms``): the demo
compiles at start-up, so it measures what is left (the browser's first decode, caches).

The load average (``os.getloadavg``) is printed before and after each model: on a machine shared
with other work the times measure the sharing too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
from flax import nnx
from PIL import Image

# (label, build_model kwargs, the side the model sees)
MODELS = [
    ("ECCV16 1/4 width, 64 px", {"backbone": "eccv16", "head": "classification", "width": 0.25}, 64),
    ("ECCV16 full width, 256 px", {"backbone": "eccv16", "head": "classification", "width": 1.0}, 256),
]
WAIT_S = 300


def _wait(driver, predicate, timeout=WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.01).until(predicate)


def measure(driver, url: str, photos: list[Path], rounds: int) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(url)
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "idle")
    image = driver.find_element(By.ID, "colorized")
    timing = driver.find_element(By.ID, "timing")
    file_input = driver.find_element(By.ID, "file")
    driver.execute_script("arguments[0].hidden = false;", file_input)
    upload_ms, upload_server_ms, slider_ms, slider_server_ms = [], [], [], []
    first_upload_ms = None
    for i in range(-1, rounds):
        previous = image.get_attribute("data-upload-id")
        file_input.send_keys(str(photos[i % len(photos)]))
        _wait(driver, lambda d: image.get_attribute("data-upload-id") != previous
              and d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
        if i < 0:
            first_upload_ms = round(float(timing.get_attribute("data-round-trip-ms")))
            continue
        upload_ms.append(float(timing.get_attribute("data-round-trip-ms")))
        upload_server_ms.append(float(timing.get_attribute("data-server-ms")))
    slider = driver.find_element(By.ID, "temperature")
    for _ in range(rounds):
        previous = image.get_attribute("data-temperature")
        slider.send_keys(Keys.ARROW_RIGHT)
        _wait(driver, lambda d: image.get_attribute("data-temperature") != previous
              and d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
        slider_ms.append(float(timing.get_attribute("data-round-trip-ms")))
        slider_server_ms.append(float(timing.get_attribute("data-server-ms")))
    summary = lambda xs: {"median": round(statistics.median(xs)), "max": round(max(xs)), "all": [round(x) for x in xs]}  # noqa: E731
    return {"first_upload_ms": first_upload_ms, "upload_ms": summary(upload_ms), "upload_server_ms": summary(upload_server_ms),
            "slider_ms": summary(slider_ms), "slider_server_ms": summary(slider_server_ms)}


def measure_engine(engine, photos: list[Path], rounds: int) -> dict:
    """Server-side wall and CPU seconds (this process, all threads) per upload and per slider move.

    On a machine shared with other work the wall time mostly measures the sharing; the CPU time
    is what the request itself costs, and bounds its wall time on an idle machine from above.
    """
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    data = [p.read_bytes() for p in photos]
    out = {"upload_wall_ms": [], "upload_cpu_ms": [], "slider_wall_ms": [], "slider_cpu_ms": []}
    for i in range(rounds):
        w, c = time.perf_counter(), cpu()
        result = engine.colorize(data[i % len(data)], photos[i % len(photos)].name)
        out["upload_wall_ms"].append(1e3 * (time.perf_counter() - w))
        out["upload_cpu_ms"].append(1e3 * (cpu() - c))
        w, c = time.perf_counter(), cpu()
        engine.recolor(result.upload_id, 0.1 + 0.1 * i)
        out["slider_wall_ms"].append(1e3 * (time.perf_counter() - w))
        out["slider_cpu_ms"].append(1e3 * (cpu() - c))
    return {k: {"median": round(statistics.median(v)), "max": round(max(v))} for k, v in out.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="uploads and slider moves per model")
    parser.add_argument("--models", default="0,1", help="indices into MODELS to measure (default: both)")
    parser.add_argument("--checkpoint", default=None,
                        help="also measure this saved model or training workdir, at its saved size")
    parser.add_argument("--engine-only", action="store_true",
                        help="no browser: the server-side wall and CPU time of each request")
    args = parser.parse_args(argv)
    from colorjax.checkpointing import save_model
    from colorjax.demo import start
    from colorjax.demo.browser import headless_chromium
    from colorjax.models import build_model

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        astronaut = skimage.data.astronaut()  # 512 x 512
        photos = [tmp / "astronaut.png", tmp / "astronaut-mirrored.png"]
        Image.fromarray(astronaut).save(photos[0])
        Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(photos[1])
        if args.engine_only:
            from colorjax.demo import DemoEngine

            for index in map(int, args.models.split(",")):
                label, config, size = MODELS[index]
                checkpoint = tmp / f"model{index}"
                save_model(checkpoint, build_model(**config, rngs=nnx.Rngs(0)), config)
                engine = DemoEngine.from_checkpoint(checkpoint, size=size)
                engine.warm_up()
                results[label] = measure_engine(engine, photos, args.rounds)
                print(label, json.dumps(results[label]), flush=True)
            return 0
        runs = []
        for index in map(int, args.models.split(",")) if args.models else ():
            label, config, size = MODELS[index]
            checkpoint = tmp / f"model{index}"
            save_model(checkpoint, build_model(**config, rngs=nnx.Rngs(0)), config)
            runs.append((label, checkpoint, size))
        if args.checkpoint:
            runs.append((f"{args.checkpoint} (saved size)", args.checkpoint, None))
        driver = headless_chromium(tmp)
        try:
            for label, checkpoint, size in runs:
                started = time.perf_counter()
                with start(checkpoint, size=size) as server:
                    assert server.engine is not None, server.load_error
                    ready_s = time.perf_counter() - started
                    load_before = os.getloadavg()
                    measured = measure(driver, server.url, photos, args.rounds)
                    results[label] = {"model": f"{server.engine.info.backbone} x{server.engine.info.width} "
                                               f"{server.engine.info.head} at {server.engine.info.size} px",
                                      "startup_s": round(ready_s, 1), **measured,
                                      "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
                print(label, json.dumps(results[label]), flush=True)
        finally:
            driver.quit()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
