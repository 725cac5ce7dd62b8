"""Peak resident memory of the demo's engine on one large upload (docs/demo.md's memory statement).

``python -m experiments.demo_memory [--megapixels 45] [--checkpoint DIR]``: encodes a smooth
colourful PNG of about that many pixels (4:3), starts a DemoEngine (a random ECCV16 at width 1/16
and 256 px unless ``--checkpoint``), warms it up, resets the process's peak RSS (Linux
``/proc/self/clear_refs``), colorizes the upload as ``POST /api/colorize`` does, then recolors it
once, and prints the resident memory before, the peak during each call and the upload's size.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time

import numpy as np
from PIL import Image

MIB = 2**20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def smooth_png(megapixels: float) -> tuple[bytes, int, int]:
    """A smooth, colourful PNG of about ``megapixels`` (4:3), encoded row block by row block."""
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    x = np.linspace(0, 1, width, dtype=np.float32)
    rgb = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, 512):
        y = np.linspace(top / height, min(top + 512, height) / height, min(512, height - top), dtype=np.float32)[:, None]
        rgb[top : top + len(y), :, 0] = (127 + 100 * np.sin(6 * x + 3 * y)).astype(np.uint8)
        rgb[top : top + len(y), :, 1] = (127 + 100 * np.cos(5 * y + x)).astype(np.uint8)
        rgb[top : top + len(y), :, 2] = (60 + 150 * x * y).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), width, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=45.0)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    from flax import nnx

    from colorjax.checkpointing import save_model
    from colorjax.demo.engine import DemoEngine
    from colorjax.models import build_model

    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = tempfile.mkdtemp(prefix="demo-memory-")
        config = {"backbone": "eccv16", "head": "classification", "width": 1 / 16}
        save_model(checkpoint, build_model(**config, rngs=nnx.Rngs(0)), config)
    engine = DemoEngine.from_checkpoint(checkpoint, size=args.size, max_pixels=10**9)
    engine.warm_up()
    data, width, height = smooth_png(args.megapixels)
    rows = {"upload": f"{width} x {height} PNG ({width * height / 1e6:.1f} MP, {len(data) / MIB:.0f} MiB)"}
    rows["rss_before_mib"] = round(_status("VmRSS") / MIB)
    _reset_peak()
    start = time.perf_counter()
    result = engine.colorize(data, "large.png", 0.38)
    rows["colorize_s"] = round(time.perf_counter() - start, 1)
    rows["peak_colorize_mib"] = round(_status("VmHWM") / MIB)
    del data
    _reset_peak()
    engine.recolor(result.upload_id, 0.9)
    rows["peak_recolor_mib"] = round(_status("VmHWM") / MIB)
    rows["peak_over_before_mib"] = rows["peak_colorize_mib"] - rows["rss_before_mib"]
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
