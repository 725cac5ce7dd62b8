"""One photo colorized by a user-guided model with 0, 3 and 10 hints (points taken from the photo's
own colours), beside its gray input and the original: the README's picture.

    python -m experiments.hints_picture PHOTO --checkpoint runs/user_guided_tiny --out hints.png

The hints are drawn once from a fixed seed (uniform positions away from the border), each with the
mean ab of the original's 5 x 5 neighbourhood and a patch of 3 px on the net's grid; the 10-hint
set contains the 3-hint set. Hinted points are ringed in the output panels.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw


from colorjax import colorize_arrays
from colorjax.checkpointing import load_model
from colorjax.color import rgb_uint8_to_lab
from colorjax.data import load_image
from colorjax.hints import Hint
from colorjax.inference.colorize import checkpoint_directory

COUNTS = (0, 3, 10)
PANEL = 256  # panel height, px


def photo_hints(rgb: np.ndarray, count: int, seed: int) -> list[Hint]:
    height, width = rgb.shape[:2]
    lab = np.asarray(rgb_uint8_to_lab(rgb))
    rng = np.random.default_rng(seed)
    ys = rng.integers(height // 10, height - height // 10, count)
    xs = rng.integers(width // 10, width - width // 10, count)
    hints = []
    for i, (y, x) in enumerate(zip(ys, xs)):
        ab = lab[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3, 1:].reshape(-1, 2).mean(0)
        hints.append(Hint(x=int(x), y=int(y), ab=(float(ab[0]), float(ab[1])), size=3, name=f"point {i + 1}"))
    return hints


def panel(rgb: np.ndarray, hints: list[Hint], label: str) -> Image.Image:
    image = Image.fromarray(rgb)
    scale = PANEL / image.height
    image = image.resize((round(image.width * scale), PANEL), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for h in hints:
        x, y, r = h.x * scale, h.y * scale, 5
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255), width=2)
        draw.ellipse((x - r - 2, y - r - 2, x + r + 2, y + r + 2), outline=(0, 0, 0), width=1)
    draw.rectangle((0, 0, 8 * len(label) + 8, 16), fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--size", type=int, default=64, help="the side the net sees")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    model, _, _ = load_model(checkpoint_directory(args.checkpoint))
    rgb = load_image(args.photo)
    all_hints = photo_hints(rgb, max(COUNTS), args.seed)
    sets = [all_hints[:n] for n in COUNTS]
    outputs = colorize_arrays(model, [rgb] * len(COUNTS), size=args.size, hints=sets)
    gray = np.repeat(np.asarray(rgb_uint8_to_lab(rgb))[..., :1] * 2.55, 3, -1).clip(0, 255).astype(np.uint8)
    panels = [panel(gray, [], "gray input")]
    panels += [panel(out, h, f"{n} hints") for out, h, n in zip(outputs, sets, COUNTS)]
    panels.append(panel(rgb, [], "original"))
    strip = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), PANEL), (255, 255, 255))
    x = 0
    for p in panels:
        strip.paste(p, (x, 0))
        x += p.width + 4
    strip.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
