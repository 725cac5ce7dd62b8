"""Zhang et al.'s claims on the colour world, as a table with bootstrap errors and Bayes-optimal figures.

    python -m experiments.colour_world_table --workdir runs/world
    python -m experiments.colour_world_table --workdir runs/world --rows unet,pix2pix,nogan,rrelu --steps 150

Writes the world (``WORKDIR/scenes/{train,val}``, seeded PNGs, :mod:`colorjax.data.colour_world`),
trains each row's config from ``experiments/`` (the same files as ``experiments/run_table.py``'s
tables, at their tiny scale, with the world as data) into ``WORKDIR/<row>`` unless that run already
finished, and scores every row on ``TEST_SCENES`` held-out scenes generated with their class maps:
AuC raw / rebalanced, PSNR, colourfulness, per-class ab error and accuracy, the balloon's (two-colour
class) chroma, pixels at a mode and pixels nearer the mean of the modes. Classification rows are
decoded at several temperatures and, for the rebalanced row, with half the rebalancing undone
(the inference layer's ``prior_correction``, strength 0.5): defect 3 of issue 25. Beside every
result stands the Bayes-optimal value under that row's decoding (``colour_world.bayes_ab`` scored by
the same code). Standard errors: bootstrap over the test scenes (``colorjax.evaluation.bootstrap``).

Outputs: ``WORKDIR/colour_world.json``, ``WORKDIR/colour_world.md`` and ``WORKDIR/colour_world.png``
(truth | gray | lookup | regression | classification T = 1 | T = 0.38 | rebalanced T = 0.38).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from colorjax.data import colour_world as world
from experiments.run_table import ROWS, finished, load_row_config

TRAIN_SCENES, VAL_SCENES, TEST_SCENES = 2000, 16, 200
SIZE = 64
TRAIN_STEPS = 300  # the tiny scale's budget: a few minutes per row on 2 shared CPU cores
TEMPERATURES = (1.0, 0.38, 0.1, 0.0)  # Zhang et al. 2016 Fig. 3's sweep, down to the mode (T = 0)
PICTURE_SCENES = 6
RESAMPLES = 500

# row -> (config file, get_config keywords); the Zhang rows train by default, the others on request.
TRAINED = {
    "regression_l2": ROWS["zhang"]["regression_l2"],
    "classification": ROWS["zhang"]["classification"],
    "classification_rebalanced": ROWS["zhang"]["classification_rebalanced"],
    "unet": ROWS["comparison"]["unet"],
    "pix2pix": ROWS["comparison"]["pix2pix"],
    "nogan": ROWS["comparison"]["nogan"],
    "patchnet_relu_bn": ROWS["rrelu"]["patchnet_relu_bn"],
    "patchnet_rrelu_bn": ROWS["rrelu"]["patchnet_rrelu_bn"],
}
DEFAULT_ROWS = ("regression_l2", "classification", "classification_rebalanced")
ROW_GROUPS = {"rrelu": ("patchnet_relu_bn", "patchnet_rrelu_bn")}


def world_config(row: str, scenes: Path, data_dir: Path, steps: int):
    """The row's tiny-scale config with the colour world as its data."""
    config = load_row_config(TRAINED[row][0], "tiny", **TRAINED[row][1])
    config.data.spec = str(scenes)
    config.data.data_dir = str(data_dir)
    if config.data.crop_size != 32:  # the patch net keeps its study's 32 px windows
        config.data.crop_size = SIZE
    config.train.eval_images = VAL_SCENES
    config.train.tensorboard = False
    if config.method == "nogan":
        total = sum((config.nogan.generator_steps, config.nogan.cycles * (config.nogan.critic_steps + config.nogan.gan_steps)))
        factor = steps / total
        config.nogan.generator_steps = max(1, round(config.nogan.generator_steps * factor))
        config.nogan.critic_steps = max(1, round(config.nogan.critic_steps * factor))
        config.nogan.gan_steps = max(1, round(config.nogan.gan_steps * factor))
    else:
        config.train.num_steps = config.train.checkpoint_every = steps
    return config


def score(ab_of, test, prior, batch: int = 50) -> dict:
    """Per-image metric sums of ``ab_of(lab, labels) -> ab`` on the test scenes: the library's
    (AuC, PSNR, colourfulness; ``colorjax.metrics``) and the world's per-class sums."""
    from colorjax import color
    from colorjax.metrics import per_image_sums_lab

    parts = []
    for start in range(0, len(test), batch):
        chunk = test[start : start + batch]
        rgb, labels = np.stack([s.rgb for s in chunk]), np.stack([s.labels for s in chunk])
        lab = color.rgb_uint8_to_lab(rgb)
        ab = np.asarray(ab_of(lab, labels), np.float32)
        pred = np.concatenate([np.asarray(lab[..., :1]), ab], axis=-1)
        sums = {k: np.asarray(v, np.float64) for k, v in per_image_sums_lab(pred, lab, prior=prior).items()}
        sums.update({f"world_{k}": v for k, v in world.per_image_class_sums(ab, np.asarray(lab[..., 1:]), labels).items()})
        parts.append(sums)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def figures(sums: dict, index=None) -> dict:
    """Every figure of one row from its per-image sums (``index``: a resample of the images)."""
    from colorjax.metrics import summarise

    index = np.arange(len(sums["pixels"])) if index is None else index
    library = summarise({k: v[index].sum(0) for k, v in sums.items() if not k.startswith("world_")})
    out = {k: float(library[k]) for k in ("auc_raw", "auc_rebalanced", "psnr", "colourfulness")}
    out.update(world.class_figures({k[6:]: v for k, v in sums.items() if k.startswith("world_")}, index))
    return out


def with_errors(sums: dict, seed: int = 0) -> dict:
    """``{figure: [value, bootstrap standard error]}``."""
    point = figures(sums)
    rng, n = np.random.default_rng(seed), len(sums["pixels"])
    draws = [figures(sums, rng.integers(0, n, n)) for _ in range(RESAMPLES)]
    return {k: [v, float(np.std([d[k] for d in draws]))] for k, v in point.items()}


def model_ab(model, temperature: float, size: int, prior=None, strength: float = 0.0):
    """The row's ab as ``colorize`` makes it: the one inference path (:class:`colorjax.inference.Colorizer`)
    at ``size`` and ``temperature``, ``strength`` of the rebalancing undone (with ``prior``'s weights)."""
    from colorjax.evaluation.evaluate import model_predictor
    from colorjax.inference import Colorizer

    colorizer = Colorizer(model, size=size, temperature=temperature, prior_correction=strength, prior=prior)
    predict = model_predictor(colorizer)
    return lambda lab, labels: predict(lab)


def bayes_row(keywords: dict):
    """The Bayes-optimal predictor of a row: ``colour_world.bayes_ab`` on the true class map."""
    return lambda lab, labels: world.bayes_ab(labels, **keywords)


# (figure, column title, decimals) of the table
COLUMNS = (
    ("auc_raw", "AuC raw", 1), ("auc_rebalanced", "AuC rebal.", 1), ("psnr", "PSNR", 2),
    ("colourfulness", "CF", 1), ("grass_error", "grass err", 1), ("stone_error", "stone err", 1),
    ("flower_accuracy", "flower acc %", 1), ("common_accuracy", "common acc %", 1),
    ("balloon_chroma", "balloon chroma", 1), ("balloon_at_mode", "balloon at mode %", 1),
    ("balloon_nearer_mean", "balloon nearer mean %", 1),
)


def markdown(results: dict, timings: dict) -> str:
    lines = ["| row | decoding | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for name, entry in results.items():
        cells = []
        for key, _, decimals in COLUMNS:
            value, se = entry["measured"][key]
            bayes = entry["bayes"][key][0]
            cells.append(f"{value:.{decimals}f} ± {se:.{decimals}f} ({bayes:.{decimals}f})")
        lines.append(f"| {entry['row']} | {entry['decoding']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Each cell: measured ± bootstrap standard error over the test scenes (Bayes-optimal under the "
                 "row's decoding). Errors in ab units; accuracy: within "
                 f"{world.ACCURACY_RADIUS:.0f} ab units of the truth; at mode: within {world.MODE_RADIUS:.0f} of a "
                 "balloon colour.")
    if timings:
        lines.append("Wall time per trained row (train), s: " + ", ".join(f"{k} {v}" for k, v in timings.items()) + ".")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/world"))
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                        help=f"comma-separated trained rows of {list(TRAINED)} (or 'rrelu')")
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS, help="training steps per row")
    args = parser.parse_args(argv)
    rows = [r for name in args.rows.split(",") for r in ROW_GROUPS.get(name, (name,))]
    unknown = [r for r in rows if r not in TRAINED]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {list(TRAINED)}")

    from colorjax.checkpointing import load_model
    from colorjax.evaluation.baselines import gray_predictor, lightness_predictor
    from colorjax.grids import image_grid
    from colorjax.prior import ColourPrior
    from colorjax.training import train
    from colorjax.training.trainer import total_steps

    workdir = args.workdir.absolute()
    scenes, data_dir = workdir / "scenes", workdir / "tfds"
    if not (scenes / "train").is_dir():
        world.write_folder(scenes, train=TRAIN_SCENES, validation=VAL_SCENES, seed=0, size=SIZE, overwrite=True)
    test = world.scenes(TEST_SCENES, seed=10_000, size=SIZE)
    fractions = world.pixel_fractions(np.stack([s.labels for s in test]))

    timings_file = workdir / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    for row in rows:
        config = world_config(row, scenes, data_dir, args.steps)
        if not finished(workdir / row, total_steps(config)):
            start = time.perf_counter()
            train(config, workdir / row, resume=(workdir / row / "checkpoints").is_dir())
            timings[row] = round(time.perf_counter() - start, 1)
            timings_file.write_text(json.dumps(timings, indent=2) + "\n")
            print(f"{row}: trained in {timings[row]} s", flush=True)

    # One prior for every row's rebalanced AuC and the lookup: the rebalanced classifier's, counted
    # on the training scenes (Zhang's 313 bins, smoothed), or any trained row's.
    prior = None
    for row in ("classification_rebalanced", "classification", *rows):
        if (workdir / row / "checkpoints").is_dir():
            _, _, prior = load_model(workdir / row / "checkpoints")
            if prior is not None:
                break
    if prior is None:
        from colorjax.evaluation.commands import count_prior

        prior = count_prior(str(scenes), "train", size=SIZE, data_dir=str(data_dir))
    prior = ColourPrior.from_counts(prior.counts, prior.centres, lightness_sums=prior.lightness_sums)

    gray, lookup = gray_predictor(), lightness_predictor(prior.mean_ab_by_lightness)
    entries = {  # name -> (row, decoding, ab_of, the Bayes rule's keywords of colour_world.bayes_ab)
        "gray": ("gray", "ab = 0", lambda lab, labels: gray(lab), None),
        "lookup": ("lightness lookup", "mean ab per L", lambda lab, labels: lookup(lab),
                   {"rule": "lightness_mean", "fractions": fractions}),
    }
    for row in (r for r in TRAINED if (workdir / r / "checkpoints").is_dir()):
        model, _, _ = load_model(workdir / row / "checkpoints")
        size = world_config(row, scenes, data_dir, args.steps).data.crop_size
        if model.head_kind == "regression":
            entries[row] = (row, "regression", model_ab(model, 0.0, size), {"rule": "mean"})
            continue
        trained_prior = prior_of(workdir, row)
        weights = trained_prior.weights if world_config(row, scenes, data_dir, args.steps).prior.rebalance else None
        for strength in (0.0, 0.5) if weights is not None else (0.0,):
            for t in TEMPERATURES:
                name = f"{row} T={t}" + (f" undo={strength}" if strength else "")
                decoding = f"T = {t}" + (f", rebalancing {strength:.0%} undone" if strength else "")
                bayes = {"rule": "annealed", "centres": np.asarray(model.head.centres[...]), "temperature": t,
                         "weights": weights, "strength": strength}
                entries[name] = (row, decoding, model_ab(model, t, size, trained_prior, strength), bayes)

    posteriors = {}
    for row in ("classification", "classification_rebalanced"):
        if (workdir / row / "checkpoints").is_dir():
            model, _, _ = load_model(workdir / row / "checkpoints")
            for strength in (0.0, 0.5) if row.endswith("rebalanced") else (0.0,):
                posteriors[f"{row} undo={strength}"] = balloon_posterior(
                    model, test[:100], SIZE, prior_of(workdir, row).weights, strength)
                print(f"balloon posterior, {row} undo={strength}: {posteriors[f'{row} undo={strength}']}", flush=True)

    from colorjax import color

    picture = test[:PICTURE_SCENES]
    picture_lab = color.rgb_uint8_to_lab(np.stack([s.rgb for s in picture]))
    results, predictions = {}, {}
    for name, (row, decoding, ab_of, bayes) in entries.items():
        measured = with_errors(score(ab_of, test, prior))
        best = measured if bayes is None else with_errors(score(bayes_row(bayes), test, prior))
        results[name] = {"row": row, "decoding": decoding, "measured": measured, "bayes": best}
        ab = np.asarray(ab_of(picture_lab, np.stack([s.labels for s in picture])), np.float32)
        rgb = color.lab_to_rgb(np.concatenate([np.asarray(picture_lab[..., :1]), ab], -1))
        predictions[name] = np.asarray(np.round(np.asarray(rgb) * 255), np.uint8)
        print(f"{name}: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in measured.items()), flush=True)

    (workdir / "colour_world.json").write_text(json.dumps({"results": results, "timings": timings,
                                                           "test_scenes": TEST_SCENES, "fractions": fractions.tolist(),
                                                           "balloon_posterior": posteriors},
                                                          indent=1) + "\n")
    (workdir / "colour_world.md").write_text(markdown(results, timings) + "\nBalloon posterior (T = 1): "
                                             + json.dumps(posteriors) + "\n")
    columns = ["gray", "lookup", "regression_l2", "classification T=1.0", "classification T=0.38",
               "classification_rebalanced T=0.38"]
    columns = [c for c in columns if c in predictions]
    grid = image_grid([[s.rgb] + [predictions[c][i] for c in columns] for i, s in enumerate(test[:PICTURE_SCENES])])
    from PIL import Image

    Image.fromarray(np.kron(grid, np.ones((2, 2, 1), np.uint8))).save(workdir / "colour_world.png")
    print((workdir / "colour_world.md").read_text())
    print("picture columns: truth | " + " | ".join(columns))
    return 0


def balloon_posterior(model, test, size: int, weights=None, strength: float = 0.0) -> dict:
    """What a classifier believes on balloon pixels: the mean probability mass (softmax at T = 1,
    after the correction ``strength``) within ``MODE_RADIUS`` of each balloon colour, and the mean
    per-pixel gap between the two masses. A learner of the true posterior puts half on each mode and
    no gap: then every annealed mean with T > 0 is the midpoint, however long it trains."""
    import jax

    from colorjax import color

    lab = color.rgb_uint8_to_lab(np.stack([s.rgb for s in test]))
    labels = np.stack([s.labels for s in test])
    if size != lab.shape[1]:
        lab = jax.image.resize(lab, (lab.shape[0], size, size, 3), "linear")
        labels = labels[:, :: labels.shape[1] // size, :: labels.shape[1] // size]
    logits = np.asarray(model(lab[..., :1]), np.float64)
    if weights is not None and strength:
        logits = logits - strength * np.log(np.asarray(weights, np.float64))
    stride = labels.shape[1] // logits.shape[1]
    labels = labels[:, stride // 2 :: stride, stride // 2 :: stride]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    centres = np.asarray(model.head.centres[...], np.float64)
    near = [np.linalg.norm(centres - np.asarray(m), axis=-1) <= world.MODE_RADIUS for m in world.CLASS_COLOURS[world.BALLOON]]
    balloon = labels == world.BALLOON
    mass = [probs[..., n].sum(-1)[balloon] for n in near]
    return {"mass_first_colour": float(mass[0].mean()), "mass_second_colour": float(mass[1].mean()),
            "mean_gap": float(np.abs(mass[0] - mass[1]).mean()), "pixels": int(balloon.sum())}


def prior_of(workdir: Path, row: str):
    """The colour prior a row trained with (its rebalancing weights)."""
    from colorjax.checkpointing import load_prior

    return load_prior(workdir / row)


if __name__ == "__main__":
    sys.exit(main())
