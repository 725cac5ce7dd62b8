"""A procedural colour world: scenes whose colours follow shape and texture, never lightness.

A controlled task on which the right answer is known, so that each colorization method can be
checked against what its paper says it learns (Zhang et al. 2016: L2 regression averages the
plausible colours; classification decoded near its mode keeps one vivid colour; rebalancing helps
rare colours; docs/colour_world.md).

Every scene (``size`` x ``size``, default 64 px) is a textured background with up to three objects
drawn on it. Each region's class is fixed by its shape and its texture; its colour by its class:

========== ================================ ============================== ===================
class      shape                            texture (L = m + A s, s = +-1)  ab (Lab units)
========== ================================ ============================== ===================
grass      the background                   horizontal stripes, period 4   (-30, 30): one colour
balloon    a disc                           checkerboard, 4 px squares     (40, 30) or (0, -40),
                                                                            each with p = 1/2, per disc
stone      an axis-aligned square            vertical stripes, period 4     (0, 0): achromatic
flower     a small square, in 3 of 4 scenes diagonal stripes, period 4     (50, -20): rare
========== ================================ ============================== ===================

Lightness carries no information about colour, by construction: each region's mean lightness
``m`` is drawn uniformly from [``L_MIN``, ``L_MAX``] independently of its class, and every texture
is a +-``TEXTURE_AMPLITUDE`` binary pattern with equal halves, so the distribution of a pixel's L
is the same in every class (:func:`lightness_by_class` measures it). The colours sit on Zhang's bin
centres (multiples of 10) and inside the sRGB gamut at every L the scenes use, so the stored 8-bit
image holds them to within rounding (about 1 ab unit).

Because the rules are known, so is the best achievable prediction for each method
(:func:`bayes_ab`): the class mean (what an L2 regressor converges to), one mode (what a
classifier decoded at T -> 0 can at best paint), or the annealed mean of the true posterior at any
T (the midpoint of the two balloon colours for every T > 0, since the posterior is symmetric).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

# The classes, in label order, and their colours (ab in Lab units on Zhang's 10-unit grid).
CLASSES = ("grass", "balloon", "stone", "flower")
GRASS, BALLOON, STONE, FLOWER = range(len(CLASSES))
CLASS_COLOURS = {
    GRASS: ((-30.0, 30.0),),
    BALLOON: ((40.0, 30.0), (0.0, -40.0)),  # two equally likely colours, one per disc
    STONE: ((0.0, 0.0),),
    FLOWER: ((50.0, -20.0),),
}
UNIMODAL = (GRASS,)  # the textured background: one colour
BIMODAL, ACHROMATIC, RARE = BALLOON, STONE, FLOWER
# Lightness: region means uniform in [L_MIN, L_MAX], textures +-TEXTURE_AMPLITUDE around them; every
# class colour is inside the sRGB gamut from L_MIN - A to L_MAX + A.
L_MIN, L_MAX, TEXTURE_AMPLITUDE = 48.0, 64.0, 6.0
TEXTURE_PERIOD = 4  # px at 64 px scenes (scaled up with larger sizes, never below 4)
FLOWER_PROBABILITY = 0.75
# "at a mode": within this many ab units of one of the balloon's two colours (they are 80.6 apart).
MODE_RADIUS = 10.0
# "accurate": within this many ab units of the true colour (per-class accuracy).
ACCURACY_RADIUS = 10.0


@dataclasses.dataclass(frozen=True)
class Scene:
    rgb: np.ndarray  # uint8 [S, S, 3]
    labels: np.ndarray  # int8 [S, S], CLASSES indices
    balloon_colour: int  # which of the two balloon colours this scene's disc has


def _texture(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The +-1 pattern of a class over the whole canvas (each region cuts its part out), at a random
    phase: a net (or a prior) that sees every 4th pixel must not see one class only at its bright
    stripes."""
    period = max(TEXTURE_PERIOD, round(TEXTURE_PERIOD * size / 64))  # 2 px stripes at least
    y, x = np.mgrid[0:size, 0:size] + rng.integers(0, period, 2)[:, None, None]
    half = period // 2
    match kind:
        case 0:  # horizontal stripes
            on = (y // half) % 2 == 0
        case 1:  # checkerboard
            on = ((y // half) + (x // half)) % 2 == 0
        case 2:  # vertical stripes
            on = (x // half) % 2 == 0
        case _:  # diagonal stripes
            on = ((x + y) // half) % 2 == 0
    return np.where(on, 1.0, -1.0)


def _lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    """8-bit sRGB by scikit-image's conversion (D65), not colorjax's own: a learning test that
    checks what a model learnt against the world's colours then also checks colorjax.color."""
    from skimage.color import lab2rgb

    return np.asarray(np.round(np.clip(lab2rgb(np.asarray(lab, np.float64)), 0, 1) * 255.0), np.uint8)


def scene_lab(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray, int]:
    """One scene as ``(Lab float32 [S, S, 3], labels int8 [S, S], balloon colour index)``."""
    scale = size / 64
    labels = np.full((size, size), GRASS, np.int8)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    radius = rng.uniform(9, 14) * scale
    cy, cx = rng.uniform(radius, size - radius, 2)
    labels[(y - cy) ** 2 + (x - cx) ** 2 <= radius**2] = BALLOON
    side = round(rng.uniform(13, 20) * scale)
    top, left = rng.integers(0, size - side + 1, 2)
    labels[top : top + side, left : left + side] = STONE
    if rng.uniform() < FLOWER_PROBABILITY:
        side = round(rng.uniform(9, 13) * scale)
        top, left = rng.integers(0, size - side + 1, 2)
        labels[top : top + side, left : left + side] = FLOWER
    balloon_colour = int(rng.integers(0, 2))
    lab = np.zeros((size, size, 3), np.float32)
    for label in range(len(CLASSES)):
        region = labels == label
        mean_l = rng.uniform(L_MIN, L_MAX)
        lab[region, 0] = (mean_l + TEXTURE_AMPLITUDE * _texture(label, size, rng))[region]
        colours = CLASS_COLOURS[label]
        lab[region, 1:] = colours[balloon_colour if len(colours) > 1 else 0]
    return lab, labels, balloon_colour


def scenes(count: int, *, seed: int, size: int = 64) -> list[Scene]:
    """``count`` scenes from ``seed`` (the same seed always gives the same scenes)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        lab, labels, balloon_colour = scene_lab(rng, size)
        out.append(Scene(_lab_to_rgb_uint8(lab), labels, balloon_colour))
    return out


def write_folder(root: str | os.PathLike, *, train: int, validation: int = 0, test: int = 0, seed: int = 0,
                 size: int = 64, overwrite: bool = False) -> pathlib.Path:
    """Write scenes as PNGs under ``root/train``, ``root/val`` and ``root/test`` (an image folder
    that ``colorjax train --config.data.spec=ROOT`` reads); each split has its own seed."""
    from PIL import Image

    root = pathlib.Path(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root}: exists and is not empty (pass overwrite=True to write over it)")
    for offset, (split, count) in enumerate((("train", train), ("val", validation), ("test", test))):
        if not count:
            continue
        (root / split).mkdir(parents=True, exist_ok=True)
        for i, scene in enumerate(scenes(count, seed=seed * 3 + offset, size=size)):
            Image.fromarray(scene.rgb).save(root / split / f"{i:05d}.png")
    return root


def intended_ab(scene: Scene) -> np.ndarray:
    """The colour every pixel of ``scene`` was drawn with, float32 [S, S, 2]: the world's truth,
    independent of any Lab reading of its 8-bit image."""
    table = [CLASS_COLOURS[c][scene.balloon_colour if c == BALLOON else 0] for c in range(len(CLASSES))]
    return np.asarray(table, np.float32)[scene.labels]


def pixel_fractions(labels: np.ndarray) -> np.ndarray:
    """The fraction of pixels of each class in ``labels`` [..., H, W], float64 [len(CLASSES)]."""
    counts = np.bincount(np.asarray(labels).ravel(), minlength=len(CLASSES)).astype(np.float64)
    return counts / counts.sum()


def lightness_by_class(lab: np.ndarray, labels: np.ndarray, bins: int = 10) -> np.ndarray:
    """Histogram of L per class, float64 [len(CLASSES), bins] (rows sum to 1), over [L_MIN - A, L_MAX + A]."""
    edges = np.linspace(L_MIN - TEXTURE_AMPLITUDE, L_MAX + TEXTURE_AMPLITUDE, bins + 1)
    rows = []
    for label in range(len(CLASSES)):
        values = lab[..., 0][labels == label]
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
        rows.append(counts / max(counts.sum(), 1))
    return np.asarray(rows)


# --- the best achievable predictions -------------------------------------------------------------

BAYES_RULES = ("mean", "mode", "lightness_mean", "annealed")


def class_mean_ab() -> np.ndarray:
    """Each class's mean colour [len(CLASSES), 2]: the L2-optimal prediction given the class."""
    return np.asarray([np.mean(CLASS_COLOURS[c], axis=0) for c in range(len(CLASSES))], np.float32)


def global_mean_ab(fractions) -> np.ndarray:
    """The mean colour of all pixels for class ``fractions``: the best prediction from L alone (the
    lightness lookup's limit, since L says nothing about the class)."""
    return np.asarray(np.asarray(fractions) @ class_mean_ab(), np.float32)


def class_posteriors(centres) -> np.ndarray:
    """What a Q-bin classifier trained to the optimum predicts for each class, float64
    [len(CLASSES), Q]: the expected soft-encoded target (``colorjax.bins.soft_encode``, Zhang's
    k = 5, sigma = 5) over the class's equally likely colours."""
    from colorjax.bins import soft_encode

    return np.asarray([np.mean(np.asarray(soft_encode(np.asarray(CLASS_COLOURS[c], np.float32), centres), np.float64), 0)
                       for c in range(len(CLASSES))])


def annealed_class_ab(centres, temperature: float, weights=None, strength: float = 0.0) -> np.ndarray:
    """The annealed mean (``colorjax.decode.annealed_mean``) of each class's optimal prediction,
    [len(CLASSES), 2]: ``p`` from :func:`class_posteriors`; trained with rebalancing ``weights`` the
    optimum is ``w p`` (normalised), of which decoding with the correction ``strength`` keeps
    ``w ** (1 - strength) p``."""
    from colorjax.decode import annealed_mean

    probs = class_posteriors(centres)
    if weights is not None:
        probs = probs * np.asarray(weights, np.float64) ** (1.0 - strength)
    logits = np.where(probs > 0, np.log(np.maximum(probs, 1e-300)), -1e9)
    return np.asarray(annealed_mean(logits.astype(np.float32), centres, float(temperature)), np.float32)


def bayes_ab(labels: np.ndarray, rule: str, fractions=None, *, centres=None, temperature: float = 1.0,
             weights=None, strength: float = 0.0) -> np.ndarray:
    """The best prediction ab [..., H, W, 2] under a method's decoding, from the true class map.

    ``mean``: each class's mean colour (L2 regression's optimum). ``mode``: one colour of each
    class, the first balloon colour for every balloon (a mode picker that cannot know the disc's
    colour hits it half the time). ``lightness_mean``: the global mean everywhere (``fractions``
    needed). ``annealed``: a Q-bin classifier at its optimum decoded at ``temperature`` over
    ``centres`` (with rebalancing ``weights`` and correction ``strength``: :func:`annealed_class_ab`);
    for T > 0 the balloon's symmetric posterior decodes to the midpoint of its colours, at T = 0 to
    one of them.
    """
    labels = np.asarray(labels)
    match rule:
        case "mean":
            table = class_mean_ab()
        case "mode":
            table = np.asarray([CLASS_COLOURS[c][0] for c in range(len(CLASSES))], np.float32)
        case "lightness_mean":
            table = np.broadcast_to(global_mean_ab(fractions), (len(CLASSES), 2))
        case "annealed":
            table = annealed_class_ab(centres, temperature, weights, strength)
        case _:
            raise ValueError(f"unknown Bayes rule {rule!r}: expected one of {BAYES_RULES}")
    return np.asarray(table, np.float32)[labels]


# --- the per-class figures ------------------------------------------------------------------------

def per_image_class_sums(pred_ab: np.ndarray, true_ab: np.ndarray, labels: np.ndarray) -> dict:
    """Per image and class: pixel counts, ab error, predicted chroma and accurate pixels, and for the
    balloon the pixels at one of its modes and those nearer the midpoint than to either mode.

    Arrays are float64 ``[B, len(CLASSES)]`` (``at_mode`` / ``nearer_mean``: ``[B]``); they add over
    images, so any resample of the images gives its figures (:func:`class_figures`).
    """
    pred_ab, true_ab = np.asarray(pred_ab, np.float64), np.asarray(true_ab, np.float64)
    labels = np.asarray(labels)
    onehot = (labels[..., None] == np.arange(len(CLASSES))).astype(np.float64)  # [B, H, W, C]
    error = np.linalg.norm(pred_ab - true_ab, axis=-1)
    chroma = np.linalg.norm(pred_ab, axis=-1)
    per_class = lambda x: np.einsum("bhw,bhwc->bc", x, onehot)  # noqa: E731
    modes = np.asarray(CLASS_COLOURS[BALLOON], np.float64)
    to_modes = np.linalg.norm(pred_ab[..., None, :] - modes, axis=-1)  # [B, H, W, 2]
    to_mean = np.linalg.norm(pred_ab - modes.mean(0), axis=-1)
    balloon = onehot[..., BALLOON]
    return {
        "pixels": onehot.sum((1, 2)),
        "error": per_class(error),
        "chroma": per_class(chroma),
        "accurate": per_class((error <= ACCURACY_RADIUS).astype(np.float64)),
        "at_mode": np.einsum("bhw,bhw->b", (to_modes.min(-1) <= MODE_RADIUS).astype(np.float64), balloon),
        "nearer_mean": np.einsum("bhw,bhw->b", (to_mean < to_modes.min(-1)).astype(np.float64), balloon),
    }


def class_figures(sums: dict, index=None) -> dict:
    """The figures of the images ``index`` (with repeats; default all) of :func:`per_image_class_sums`."""
    pick = (lambda x: x) if index is None else (lambda x: x[index])  # noqa: E731
    pixels = pick(sums["pixels"]).sum(0)
    out = {}
    for label, name in enumerate(CLASSES):
        n = max(pixels[label], 1.0)
        out[f"{name}_error"] = float(pick(sums["error"])[:, label].sum() / n)
        out[f"{name}_chroma"] = float(pick(sums["chroma"])[:, label].sum() / n)
        out[f"{name}_accuracy"] = float(100.0 * pick(sums["accurate"])[:, label].sum() / n)
    n = max(pixels[BALLOON], 1.0)
    out["balloon_at_mode"] = float(100.0 * pick(sums["at_mode"]).sum() / n)
    out["balloon_nearer_mean"] = float(100.0 * pick(sums["nearer_mean"]).sum() / n)
    common = [c for c in range(len(CLASSES)) if c != RARE]
    out["common_accuracy"] = float(100.0 * pick(sums["accurate"])[:, common].sum() / max(pixels[common].sum(), 1.0))
    return out
