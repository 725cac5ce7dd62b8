"""Score the CPU recipe's model against the lightness baseline on both held-out sets, with pictures.

    python -m experiments.cpu_colorizer_report runs/cpu_colorizer --out runs/cpu_colorizer/report

Sets: tiny-imagenet-64 ``val/`` at 64 px, and the imagenet-samples test split at 256 px (L resized
to the model's saved size, ab lifted back onto the 256 px L: the path of ``colorjax colorize``).
Rows: the model (at its saved temperature), the lightness baseline and gray, all scored with the
checkpoint's colour prior. For each set: the metrics, the model's paired bootstrap lead over the
lightness baseline, and whether the recipe's bar is met (raw AuC at most 0.5 below the baseline,
rebalanced AuC at least 3 above it, colourfulness at least 25, the lead above 2 standard errors).
Pictures: ``grid_<set>.png`` (gray | lightness | model | truth) and ``temperature_<set>.png`` of
the held-out ImageNet photos (keep them out of the repository: ImageNet's terms), and the same two for
the photos scikit-image and scikit-learn ship (``photos_grid.png``, ``photos_temperature.png``),
which may be published.
Everything lands in ``OUT/report.md`` and ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from experiments.configs.scales import TINY_IMAGENET
from experiments.configs.scales import SAMPLES

# (name, data, split, evaluation crop side)
SETS = (("tiny_imagenet_val", TINY_IMAGENET, "validation", 64), ("imagenet_samples_test", SAMPLES, "test", 256))
# The recipe's bar on each set (the learn-colour issue): margins against the lightness baseline.
MAX_RAW_DEFICIT, MIN_REBALANCED_LEAD, MIN_COLOURFULNESS, MIN_LEAD_IN_SE = 0.5, 3.0, 25.0, 2.0
GRID_IMAGES = 8


def score_set(colorizer, name, data, split, size, *, data_dir, out: Path) -> dict:
    """The set's metrics, bootstrap and pictures; ``colorizer`` runs at the checkpoint's size, else ``size``."""
    from colorjax.data import make_loader
    from colorjax.evaluation import bootstrap
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import evaluate, model_predictor
    from colorjax.evaluation.temperature_sweep import labelled_grid, sweep_rows

    model_size, temperature, prior = colorizer.size, colorizer.temperature, colorizer.prior
    loader = make_loader(data, split, crop_size=size, batch_size=32, train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    batches = [np.asarray(b["rgb"]) for b in loader]
    predictors = {"model": model_predictor(colorizer),
                  "lightness": baseline_predictor("lightness", prior=prior), "gray": baseline_predictor("gray")}
    from colorjax.metrics import summarise

    rows, grids, sums = {}, {}, {}
    for row, predictor in predictors.items():
        start = time.perf_counter()
        sums[row] = bootstrap.per_image_sums(predictor, batches, prior)  # one pass: metrics and bootstrap
        rows[row] = {k: float(v) for k, v in summarise({k: v.sum(0) for k, v in sums[row].items()}).items()}
        rows[row]["wall_s"] = round(time.perf_counter() - start, 1)
        grids[row] = evaluate(predictor, [{"rgb": batches[0][:GRID_IMAGES]}], prior=prior, grid_images=GRID_IMAGES)[1]
    lead = bootstrap.paired_lead(sums["model"], sums["lightness"])
    m, b = rows["model"], rows["lightness"]
    checks = {
        f"raw AuC no more than {MAX_RAW_DEFICIT} below the baseline": m["auc_raw"] >= b["auc_raw"] - MAX_RAW_DEFICIT,
        f"rebalanced AuC at least {MIN_REBALANCED_LEAD} above the baseline":
            m["auc_rebalanced"] >= b["auc_rebalanced"] + MIN_REBALANCED_LEAD,
        f"colourfulness at least {MIN_COLOURFULNESS}": m["colourfulness"] >= MIN_COLOURFULNESS,
        f"paired rebalanced lead above {MIN_LEAD_IN_SE} standard errors":
            lead["rebalanced"] > MIN_LEAD_IN_SE * lead["rebalanced_se"],
    }
    # gray | lightness | model | truth, the first GRID_IMAGES photos of the set
    picture = [[g[0], lt[1], md[1], md[2]] for g, lt, md in zip(grids["gray"], grids["lightness"], grids["model"])]
    grid_path = out / f"grid_{name}.png"
    from PIL import Image

    Image.fromarray(labelled_grid(picture, ["gray", "lightness", "model", "truth"])).save(grid_path)
    sweep, sweep_metrics = sweep_rows(colorizer, batches[0][:6], prior=prior)
    from colorjax.evaluation.paper_numbers import SWEEP_TEMPERATURES

    Image.fromarray(labelled_grid(sweep, ["gray", *(f"T={t:g}" for t in SWEEP_TEMPERATURES), "truth"])).save(
        out / f"temperature_{name}.png")
    return {"set": name, "data": data, "split": split, "size": size, "model_size": model_size,
            "temperature": temperature, "rows": rows, "lead_over_lightness": lead, "checks": checks,
            "temperature_sweep": {str(t): {k: v for k, v in mt.items() if k in ("auc_raw", "auc_rebalanced",
                                                                              "colourfulness")}
                                  for t, mt in sweep_metrics.items()}}


def square_photo(rgb: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` square of a photo whose shorter side is scaled to ``side`` (Lanczos)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    im = Image.fromarray(rgb).resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.LANCZOS)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return np.asarray(im.crop((left, top, left + side, top + side)))


def package_photo_pictures(colorizer, out: Path, side: int = 224) -> list[Path]:
    """Pictures safe to publish: the photos scikit-image and scikit-learn ship (never trained on),
    centre-cropped to ``side`` px: ``photos_grid.png`` (gray | lightness | model | truth) and
    ``photos_temperature.png`` (the model at each sweep temperature)."""
    from PIL import Image

    from colorjax import color
    from colorjax.data.embedded import embedded_photos
    from colorjax.evaluation.baselines import lightness_predictor
    from colorjax.evaluation.paper_numbers import SWEEP_TEMPERATURES
    from colorjax.evaluation.temperature_sweep import labelled_grid

    prior, temperature = colorizer.prior, colorizer.temperature
    photos = [square_photo(p, side) for p in embedded_photos().values()]
    lab = color.rgb_uint8_to_lab(np.stack(photos))
    to_uint8 = lambda x: np.asarray(np.round(np.asarray(x) * 255.0)).astype(np.uint8)  # noqa: E731
    gray = to_uint8(color.lab_to_rgb(lab.at[..., 1:].set(0.0)))
    looked_up = lightness_predictor(prior.mean_ab_by_lightness)(lab)
    lightness = to_uint8(color.lab_to_rgb(lab.at[..., 1:].set(looked_up)))
    ours = colorizer.colorize_arrays(photos)
    grid = [[g, lt, md, truth] for g, lt, md, truth in zip(gray, lightness, ours, photos)]
    paths = [out / "photos_grid.png", out / "photos_temperature.png"]
    Image.fromarray(labelled_grid(grid, ["gray", "lightness", f"model (T={temperature:g})", "truth"])).save(paths[0])
    sweep = [colorizer.colorize_arrays(photos, temperature=t) for t in SWEEP_TEMPERATURES]
    rows = [[gray[i], *(s[i] for s in sweep), photos[i]] for i in range(len(photos))]
    Image.fromarray(labelled_grid(rows, ["gray", *(f"T={t:g}" for t in SWEEP_TEMPERATURES), "truth"])).save(paths[1])
    return paths


def markdown(results: list[dict], checkpoint: str) -> str:
    lines = [f"# CPU recipe: {checkpoint}", ""]
    for r in results:
        n = int(r["rows"]["model"]["num_images"])
        lines += [f"## {r['set']}: {n} photos at {r['size']} px (model at {r['model_size']} px, T = {r['temperature']:g})",
                  "", "| row | AuC raw | AuC rebal. | colourfulness (truth) | PSNR dB |", "|---|---|---|---|---|"]
        for row in ("model", "lightness", "gray"):
            m = r["rows"][row]
            lines.append(f"| {row} | {m['auc_raw']:.2f} | {m['auc_rebalanced']:.2f} | {m['colourfulness']:.1f} "
                         f"({m['colourfulness_true']:.1f}) | {m['psnr']:.2f} |")
        lead = r["lead_over_lightness"]
        lines += ["", f"Model minus lightness (paired bootstrap, {lead['resamples']} resamples): raw "
                      f"{lead['raw']:+.2f} +- {lead['raw_se']:.2f}, rebalanced {lead['rebalanced']:+.2f} +- "
                      f"{lead['rebalanced_se']:.2f}.", ""]
        lines += [f"- [{'x' if ok else ' '}] {check}" for check, ok in r["checks"].items()]
        lines += ["", "Temperature sweep (first 6 photos): " + "; ".join(
            f"T={t}: raw {v['auc_raw']:.1f}, rebal. {v['auc_rebalanced']:.1f}, CF {v['colourfulness']:.1f}"
            for t, v in r["temperature_sweep"].items()), ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="the recipe's workdir (or any classification checkpoint)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-dir", default=None, help="TFDS data dir the sets are built into")
    parser.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's")
    parser.add_argument("--prior-correction", type=float, default=None, help="default: the checkpoint's")
    parser.add_argument("--sets", default=None, help=f"comma-separated subset of {[s[0] for s in SETS]}")
    args = parser.parse_args(argv)
    from colorjax.inference import Colorizer

    def colorizer_at(size):  # the checkpoint's own size, else ``size``
        return Colorizer.from_checkpoint(args.checkpoint, temperature=args.temperature,
                                         prior_correction=args.prior_correction, batch_size=32, default_size=size)

    colorizer = colorizer_at(256)
    if colorizer.prior is None or colorizer.prior.lightness_sums is None:
        raise SystemExit(f"{args.checkpoint}: needs a checkpoint whose colour prior has the lightness table")
    print(f"decoding at T = {colorizer.temperature:g}, rebalancing correction {colorizer.prior_correction:g}")
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = None if args.sets is None else set(args.sets.split(","))
    results = []
    for name, data, split, size in SETS:
        if wanted is not None and name not in wanted:
            continue
        if not Path(data).is_dir():
            print(f"{name}: {data} not found, skipped", file=sys.stderr)
            continue
        results.append(score_set(colorizer_at(size), name, data, split, size, data_dir=args.data_dir, out=args.out))
        print(markdown(results[-1:], args.checkpoint), flush=True)
    package_photo_pictures(colorizer, args.out)
    (args.out / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "report.md").write_text(markdown(results, args.checkpoint))
    return 0 if results and all(all(r["checks"].values()) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
