"""AuC and PSNR against the number of user hints, on held-out photos (Zhang, Zhu et al. 2017's
evidence that the net uses its hints), for a trained user-guided model and a random-init control.

    python -m experiments.hints_curve --checkpoint runs/user_guided_tiny --data-dir DIR --size 32 \\
        --out experiments/results/hints_curve

For each count n in 0, 1, 2, 5, 10, 50 every validation photo gets n hints sampled from its own
ground truth as in training (uniform or centred-Gaussian positions, 1-9 px patches, the patch's mean
ab), with the same positions for both models; the net runs at the photo's size. Reported per n: raw
AuC (ab L2 threshold 0-150), rebalanced AuC (pixels weighted by the inverse of a colour prior
counted on ``--prior-images`` training photos, Zhang et al. 2016), PSNR (RGB), and at each hint's
point (its patch's centre pixel) |predicted ab - hint ab|: mean, median, 95th percentile, max and
the fraction within 5 ab units. The control is the same architecture and width at random init
(seed 1). Writes ``curve.json`` and ``curve.png``.

Measured (2-core Intel Xeon CPU, lightly loaded): ``user_guided.py:tiny`` (width 1/8, 32 px
tiny-imagenet-64 photos, 4500 steps of 16, learning rate x0.1 after 3600; 5.4 min of training),
then ``--size 32 --images 512`` on the validation split:

    hints               0      1      2      5      10     50
    trained AuC       89.00  90.72  91.53  92.65  93.33  94.52
    trained AuC rebal 58.31  64.64  70.18  78.05  79.94  85.20
    trained PSNR      20.07  21.44  22.15  23.39  24.18  25.97
    |ab - hint| mean      -   4.10   4.14   4.00   3.98   4.26
    |ab - hint| median    -   2.36   2.46   2.53   2.55   3.05
    |ab - hint| 95 %      -  13.78  13.68  12.20  11.95  11.60
    within 5 ab           -   0.80   0.80   0.79   0.78   0.73
    control AuC       82.84  81.06  79.33  74.83  69.04  54.53
    control AuC rebal 56.27  55.30  53.75  49.80  46.31  36.16
    control PSNR      18.28  17.40  16.64  15.18  13.77  11.41

Before the recipe weighed the classification term by 1 / 110^2 (weight 1: the cross-entropy drowned
the Huber term), a model trained alike for 300 steps reached AuC 88.24 / 89.31 / 89.22 at 0 / 10 /
50 hints (not monotonic) and stayed 12.6-13.7 ab units from its hints on average. Now AuC, its
rebalanced form and PSNR rise at every step, and the output is on average 4.0-4.3 ab units from
the hint at its point (median 2.4-3.1, four points in five within 5); the rest are mostly saturated
hints pulled towards the gray-ish prior. At 1500 steps the mean was 5.0-5.9 (median 3.4).
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


from colorjax import metrics
from colorjax.bins import zhang_bins
from colorjax.checkpointing import build_model_from_config, load_model
from colorjax.data import make_loader
from colorjax.prior import ColourPrior, count_bins_over
from colorjax.training.simulated_hints import HintSampling, draw_hint_points
from colorjax.training.steps import lab_batch

COUNTS = (0, 1, 2, 5, 10, 50)
CONTROL = "random init (control)"
HIT_TOLERANCE = 5.0  # ab units: a hint's colour counts as reproduced at its point within this


@nnx.jit
def _predict(model, L, hints):
    return model.predict_ab(L, hints=hints)


@functools.partial(jax.jit, static_argnums=(3,))
def _draw(key, ab, counts, sampling):
    return draw_hint_points(key, ab, counts, sampling)


def photos(spec: str, data_dir: str | None, split: str, size: int, count: int) -> np.ndarray:
    loader = make_loader(spec, split, crop_size=size, batch_size=min(count, 64), train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    batches, total = [], 0
    for batch in loader:
        batches.append(batch["rgb"])
        total += len(batch["rgb"])
        if total >= count:
            break
    return np.concatenate(batches)[:count]


def training_prior(rgb: np.ndarray) -> ColourPrior:
    """The rebalanced AuC's colour prior over Zhang et al. 2016's 313 bins, from training photos."""
    ab = (np.asarray(lab_batch(jnp.asarray(rgb[i : i + 64]))[1]) for i in range(0, len(rgb), 64))
    counts, images = count_bins_over(ab, zhang_bins())
    return ColourPrior.from_counts(counts, zhang_bins(), num_images=images)


def curve(model, rgb: np.ndarray, batch_size: int, seed: int, prior: ColourPrior | None = None) -> dict:
    """Metrics per hint count for ``model`` on uint8 photos ``rgb`` [N, S, S, 3]: AuC (raw and, with
    ``prior``, rebalanced), PSNR, and |predicted ab - hint ab| at each hint's point (the centre pixel
    of its patch, against the hint that the map holds there)."""
    sampling = HintSampling(max_points=max(COUNTS))
    results = {}
    for n in COUNTS:
        acc, point_errors = metrics.MetricAccumulator(), []
        for start in range(0, len(rgb) - batch_size + 1, batch_size):
            L, ab, _ = lab_batch(jnp.asarray(rgb[start : start + batch_size]))
            key = jax.random.fold_in(jax.random.key(seed), start)  # same hints for every model
            hints, rows, cols, active = _draw(key, ab, jnp.full((batch_size,), n), sampling)
            pred = _predict(model, L, hints)
            acc.update(metrics.batch_metric_sums_lab(jnp.concatenate([L, pred], -1), jnp.concatenate([L, ab], -1),
                                                     prior=prior))
            images = np.arange(batch_size)[:, None]
            diff = np.asarray(pred)[images, rows, cols] - np.asarray(hints)[images, rows, cols, :2]
            point_errors.append(np.linalg.norm(diff, axis=-1)[np.asarray(active)])
        r = acc.result()
        errors = np.concatenate(point_errors)
        results[n] = {"auc_raw": r["auc_raw"], "auc_rebalanced": r.get("auc_rebalanced"), "psnr": r["psnr"],
                      "images": r["num_images"], "hint_points": int(errors.size)}
        line = f"  {n:3d} hints: AuC {r['auc_raw']:.2f}"
        if "auc_rebalanced" in r:
            line += f"  rebalanced {r['auc_rebalanced']:.2f}"
        line += f"  PSNR {r['psnr']:.2f} dB"
        if errors.size:
            results[n].update(point_ab_error_mean=float(errors.mean()), point_ab_error_median=float(np.median(errors)),
                              point_ab_error_p95=float(np.percentile(errors, 95)), point_ab_error_max=float(errors.max()),
                              points_within_5=float((errors < HIT_TOLERANCE).mean()))
            line += (f"  |ab - hint| at {errors.size} points: mean {errors.mean():.2f}, median {np.median(errors):.2f},"
                     f" 95% {np.percentile(errors, 95):.2f}, max {errors.max():.2f}, within 5: {(errors < HIT_TOLERANCE).mean():.3f}")
        print(line, flush=True)
    return results


def earlier_control(path: str, model_config: dict, settings: dict) -> dict:
    """The control's rows of an earlier ``curve.json``, refused unless its model and settings match
    (a file without settings names them nowhere: it is taken as made with this run's settings)."""
    earlier = json.loads(Path(path).read_text())
    model = {k: v for k, v in model_config.items() if k != "centres"}
    if {k: v for k, v in earlier["model"].items() if k != "centres"} != json.loads(json.dumps(model)):
        raise SystemExit(f"{path}: its control has another model config than {model}")
    if earlier.get("settings", settings) != settings:
        raise SystemExit(f"{path}: measured with {earlier['settings']}, not {settings}")
    print(f"{CONTROL}: rows from {path}")
    return {int(n): row for n, row in earlier["results"][CONTROL].items()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("auc_raw", "AuC, raw (%)"), ("auc_rebalanced", "AuC, rebalanced (%)"), ("psnr", "PSNR (dB)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
    for name, res in results.items():
        counts = list(res)
        for ax, (key, label) in zip(axes, panels):
            if res[counts[0]].get(key) is None:
                continue
            ax.plot(counts, [res[n][key] for n in counts], "o-", label=name)
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xticks(counts, [str(n) for n in counts])
            ax.set_xlabel("hint points")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("User-guided colorization: held-out photos vs number of hints")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a trained user-guided model or training workdir")
    parser.add_argument("--spec", default="tiny_imagenet_64")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior-images", type=int, default=1024,
                        help="training photos counted for the rebalanced AuC's prior (0: raw AuC only)")
    parser.add_argument("--control-json", default=None,
                        help="take the control's rows from this earlier curve.json (same model config, "
                             "photos, sizes and seed) instead of measuring them again")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    settings = {k: getattr(args, k) for k in ("spec", "split", "size", "images", "batch_size", "seed", "prior_images")}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trained, model_config, _ = load_model(args.checkpoint)
    control = build_model_from_config(model_config, nnx.Rngs(1))
    control.eval()
    rgb = photos(args.spec, args.data_dir, args.split, args.size, args.images)
    prior = None
    if args.prior_images:
        prior = training_prior(photos(args.spec, args.data_dir, "train", args.size, args.prior_images))
    print(f"{len(rgb)} held-out photos of {args.size} px; model {model_config['backbone']} width {model_config['width']}")
    results, models = {}, {"trained (tiny)": trained, CONTROL: control}
    if args.control_json:
        results[CONTROL] = earlier_control(args.control_json, model_config, settings)
        del models[CONTROL]
    for name, model in models.items():
        print(name, flush=True)
        results[name] = curve(model, rgb, args.batch_size, args.seed, prior)
    results = {name: results[name] for name in ("trained (tiny)", CONTROL)}
    (out / "curve.json").write_text(json.dumps({"model": model_config | {"centres": None}, "settings": settings,
                                                "results": results}, indent=1))
    plot(results, out / "curve.png")
    print(f"wrote {out / 'curve.json'} and {out / 'curve.png'}")


if __name__ == "__main__":
    main()
