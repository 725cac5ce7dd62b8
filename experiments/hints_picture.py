"""One photo colorized by a user-guided model with 0, 3 and 10 hints (points taken from the photo's
own colours), beside its gray input and the original: the README's picture.

    python -m experiments.hints_picture skimage:chelsea --checkpoint runs/user_guided_tiny \\
        --size 32 --out docs/hints_picture.png

PHOTO is an image file or ``skimage:NAME``, a photo scikit-image ships (astronaut, coffee, chelsea
...). The points are chosen by a fixed rule: on a 20 x 20 lattice away from the border, the first is
the most colourful (chroma of the 5 x 5 mean), each next one the lattice point that is farthest, in
position and colour, from those already chosen (so the 10 points spread over the photo's regions
and colours); the 3-hint set is the first three. Each hint has the mean ab of the original's 5 x 5
neighbourhood and a patch of 3 px on the net's grid (the command line's default). Hinted points are
ringed in the output panels.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw


from colorjax.inference import Colorizer
from colorjax.color import rgb_uint8_to_lab
from colorjax.data import load_image
from colorjax.hints import Hint

COUNTS = (0, 3, 10)
PANEL = 256  # panel height, px


LATTICE = 20  # candidate points per side
COLOUR_DISTANCE = 100.0  # ab units counted as far as the photo's diagonal when spreading the points


def load_photo(spec: str) -> np.ndarray:
    """uint8 RGB of an image file or of ``skimage:NAME``."""
    if spec.startswith("skimage:"):
        from skimage import data

        name = spec.split(":", 1)[1]
        if not hasattr(data, name):
            raise SystemExit(f"{spec}: scikit-image ships no photo named {name!r}")
        return np.asarray(getattr(data, name)())[..., :3]
    return load_image(spec)


def photo_hints(rgb: np.ndarray, count: int) -> list[Hint]:
    """``count`` hints at points spread over the photo's regions and colours (module docstring)."""
    height, width = rgb.shape[:2]
    lab = np.asarray(rgb_uint8_to_lab(rgb))
    ys = np.linspace(height * 0.08, height * 0.92, LATTICE).astype(int)
    xs = np.linspace(width * 0.08, width * 0.92, LATTICE).astype(int)
    points = np.array([(y, x) for y in ys for x in xs])
    ab = np.array([lab[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3, 1:].reshape(-1, 2).mean(0) for y, x in points])
    position = points / np.hypot(height, width)
    colour = ab / COLOUR_DISTANCE
    chosen = [int(np.argmax(np.hypot(ab[:, 0], ab[:, 1])))]
    while len(chosen) < count:
        gap = np.min([np.hypot(*(position - position[c]).T) + np.hypot(*(colour - colour[c]).T) for c in chosen], axis=0)
        chosen.append(int(np.argmax(gap)))
    return [Hint(x=int(points[c][1]), y=int(points[c][0]), ab=(float(ab[c][0]), float(ab[c][1])), size=3,
                 name=f"point {i + 1}") for i, c in enumerate(chosen)]


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
    parser.add_argument("photo", help="an image file or skimage:NAME (a photo scikit-image ships)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--size", type=int, default=64, help="the side the net sees")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    rgb = load_photo(args.photo)
    all_hints = photo_hints(rgb, max(COUNTS))
    sets = [all_hints[:n] for n in COUNTS]
    outputs = Colorizer.from_checkpoint(args.checkpoint, size=args.size).colorize_arrays([rgb] * len(COUNTS), hints=sets)
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
