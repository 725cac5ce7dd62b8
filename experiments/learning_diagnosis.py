"""Why a colorizer stalls at a per-lightness tint: sweeps and probes, in numbers.

    python -m experiments.learning_diagnosis sweep --workdir runs/diagnosis --steps 800
    python -m experiments.learning_diagnosis sweep --workdir runs/diagnosis --variants base,wd_1e-3
    python -m experiments.learning_diagnosis probe runs/cpu_colorizer --out runs/diagnosis/probe.md

``sweep`` trains each variant of ``experiments/configs/cpu_colorizer.py`` (one changed lever per variant,
the same number of steps, the same data order) in its own process and validates it on the same
``--eval-images`` tiny-imagenet-64 ``val/`` photos, beside the lightness baseline on those photos;
it appends one JSON line per variant to ``WORKDIR/sweep.jsonl`` and prints the Markdown table.

``probe`` reads a checkpoint and measures on validation batches: the gradient norm of every layer
(first vs last layers shows whether the encoder learns), the rebalanced loss split by the pixels'
rebalancing weight (which pixels the loss is spent on), and the accuracy of the most likely bin per
ground-truth bin, grouped by how common the bin is in the prior (whether rare colours are ever
predicted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EXPERIMENTS = Path(__file__).resolve().parent
CONFIG = EXPERIMENTS / "configs" / "cpu_colorizer.py"

# variant -> the --config overrides that define it (one lever at a time against "base").
VARIANTS = {
    "base": [],
    "wd_1e-3": ["optim.weight_decay=1e-3"],  # Zhang's L2 weight decay, coupled into Adam
    "lr_3e-4": ["optim.learning_rate=3e-4"],
    "lr_3e-3": ["optim.learning_rate=3e-3"],
    "batch_32": ["data.batch_size=32"],
    "width_0.5": ["model.width=0.5"],
    "no_batchnorm": ["model.batch_norm=False"],
    "no_rebalancing": ["prior.rebalance=False"],
    "lambda_0.9": ["prior.lam=0.9"],  # milder rebalancing
    "unet": ["model.backbone=unet", "model.width=0.25"],
    "regression_l1": ["method=regression", "model.head=regression"],
    "crop_48": ["data.crop_size=48"],
}


def run_variant(name: str, workdir: Path, steps: int, eval_images: int, extra: list[str]) -> dict:
    """Train variant ``name`` for ``steps`` steps in a fresh process; its final validation record."""
    run_dir = workdir / name
    overrides = [*VARIANTS[name], *extra, f"train.num_steps={steps}", "train.eval_every=0",
                 f"train.eval_images={eval_images}", f"train.checkpoint_every={steps}", "train.keep_checkpoints=1",
                 "train.tensorboard=False", f"train.log_every={max(1, steps // 8)}"]
    command = [sys.executable, "-m", "colorjax.cli", "train", "--config", str(CONFIG), "--workdir", str(run_dir),
               *(f"--config.{o}" for o in overrides)]
    if (run_dir / "checkpoints" / str(steps)).is_dir():
        command.append("--resume")  # finished already: resuming does no step, only reports
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r.get("split") == "validation"][-1]
    train = [r for r in records if r.get("split") == "train"]
    return {"variant": name, "overrides": VARIANTS[name] + extra, "steps": steps, "wall_s": round(wall, 1),
            "train_loss_last": float(np.mean([r["loss"] for r in train[-2:]])),
            **{k: val[k] for k in ("val_loss", "val_auc_raw", "val_auc_rebalanced", "val_colourfulness",
                                   "val_colourfulness_true", "val_psnr")}}


def lightness_row(workdir: Path, eval_images: int) -> dict:
    """The lightness baseline on the same validation photos (prior of the base run's checkpoint)."""
    from colorjax.evaluation.commands import evaluate_to_file
    from colorjax.training.commands import load_config_file

    config = load_config_file(str(CONFIG))
    record = evaluate_to_file(baseline="lightness", data=config.data.spec, split="validation",
                              out=workdir / "lightness", size=config.data.crop_size, batch_size=32,
                              max_images=eval_images, data_dir=config.data.data_dir,
                              prior_path=None)
    m = record["metrics"]
    return {"variant": "lightness baseline", "val_auc_raw": m["auc_raw"], "val_auc_rebalanced": m["auc_rebalanced"],
            "val_colourfulness": m["colourfulness"], "val_psnr": m["psnr"]}


def sweep_table(rows: list[dict]) -> str:
    lines = ["| variant | changed | val loss | AuC raw | AuC rebal. | colourfulness | PSNR dB | wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fmt = lambda k, d=2: "-" if r.get(k) is None else f"{r[k]:.{d}f}"  # noqa: E731
        lines.append(f"| {r['variant']} | {', '.join(r.get('overrides', [])) or '-'} | {fmt('val_loss', 3)} | "
                     f"{fmt('val_auc_raw')} | {fmt('val_auc_rebalanced')} | {fmt('val_colourfulness', 1)} | "
                     f"{fmt('val_psnr')} | {fmt('wall_s', 0)} |")
    return "\n".join(lines) + "\n"


def sweep(args) -> int:
    args.workdir.mkdir(parents=True, exist_ok=True)
    names = list(VARIANTS) if args.variants is None else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    results = args.workdir / "sweep.jsonl"
    for name in names:
        row = run_variant(name, args.workdir, args.steps, args.eval_images, args.override)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    if not any(r["variant"] == "lightness baseline" for r in rows):
        rows.append(lightness_row(args.workdir, args.eval_images))
        with results.open("a") as f:
            f.write(json.dumps(rows[-1]) + "\n")
    table = sweep_table(rows)
    (args.workdir / "sweep.md").write_text(table)
    print(table)
    return 0


def probe(args) -> int:
    """Layer gradient norms, loss by rebalancing weight and per-bin accuracy of a checkpoint."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from colorjax.bins import nearest_bin, soft_encode
    from colorjax.checkpointing import load_model
    from colorjax.data import make_loader
    from colorjax.training.commands import load_config_file
    from colorjax.training.steps import lab_batch

    config = load_config_file(str(CONFIG))
    model, model_config, prior = load_model(args.checkpoint)
    centres = jnp.asarray(prior.centres)
    weights = jnp.asarray(prior.weights, jnp.float32)
    stride = model.backbone.output_stride
    loader = make_loader(config.data.spec, "validation", crop_size=config.data.crop_size, batch_size=32,
                         train=False, data_dir=config.data.data_dir, num_epochs=1)
    model.train()  # batch statistics, as in a training step

    def loss_fn(model, rgb):
        L, ab, _ = lab_batch(rgb)
        logits = model(L)
        true_ab = ab[:, ::stride, ::stride][:, : logits.shape[1], : logits.shape[2]]
        target = soft_encode(true_ab, centres, 5, 5.0)
        w = weights[nearest_bin(true_ab, centres)]
        ce = -jnp.sum(target * jax.nn.log_softmax(logits, -1), -1)
        return jnp.mean(w * ce), (ce, w, logits, true_ab)

    grad_sq, ce_all, w_all, hits, seen = None, [], [], np.zeros(len(centres)), np.zeros(len(centres))
    for i, batch in enumerate(loader):
        if i == args.batches:
            break
        (_, (ce, w, logits, true_ab)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, jnp.asarray(batch["rgb"]))
        flat = {"/".join(map(str, k)): float(jnp.sum(v[...] ** 2)) for k, v in nnx.to_flat_state(grads)}
        grad_sq = flat if grad_sq is None else {k: grad_sq[k] + flat[k] for k in flat}
        ce_all.append(np.asarray(ce).ravel())
        w_all.append(np.asarray(w).ravel())
        truth = np.asarray(nearest_bin(true_ab, centres)).ravel()
        guess = np.asarray(jnp.argmax(logits, -1)).ravel()
        np.add.at(seen, truth, 1)
        np.add.at(hits, truth[guess == truth], 1)
    n = min(args.batches, i + 1)
    lines = [f"# Probe of {args.checkpoint}", "", "## Gradient norm per layer (RMS over batches)", "",
             "| parameter | gradient norm |", "|---|---|"]
    lines += [f"| {k} | {np.sqrt(v / n):.3e} |" for k, v in grad_sq.items() if k.endswith("kernel")]
    ce, w = np.concatenate(ce_all), np.concatenate(w_all)
    lines += ["", "## Rebalanced loss by the pixels' rebalancing weight", "",
              "| weight range | share of pixels | share of rebalanced loss | mean cross-entropy |", "|---|---|---|---|"]
    edges = [0, 0.5, 1, 2, 5, 10, np.inf]
    for lo, hi in zip(edges[:-1], edges[1:]):
        pick = (w >= lo) & (w < hi)
        if pick.any():
            lines.append(f"| {lo}-{hi} | {pick.mean():.3f} | {np.sum(w[pick] * ce[pick]) / np.sum(w * ce):.3f} | "
                         f"{ce[pick].mean():.3f} |")
    probs = np.asarray(prior.probs)
    order = np.argsort(-probs)
    lines += ["", "## Top-1 bin accuracy by how common the true bin is", "",
              "| bins (by prior rank) | share of pixels | top-1 accuracy |", "|---|---|---|"]
    for lo, hi in ((0, 10), (10, 30), (30, 100), (100, len(order))):
        group = order[lo:hi]
        if seen[group].sum():
            lines.append(f"| {lo + 1}-{hi} | {seen[group].sum() / seen.sum():.3f} | {hits[group].sum() / seen[group].sum():.3f} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep", help="train each variant briefly and compare")
    s.add_argument("--workdir", type=Path, required=True)
    s.add_argument("--steps", type=int, default=800)
    s.add_argument("--eval-images", type=int, default=1024)
    s.add_argument("--variants", default=None, help=f"comma-separated subset of {', '.join(VARIANTS)}")
    s.add_argument("--override", action="append", default=[], help="extra FIELD=VALUE for every variant")
    p = sub.add_parser("probe", help="gradient norms, loss split and per-bin accuracy of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    return sweep(args) if args.command == "sweep" else probe(args)


if __name__ == "__main__":
    raise SystemExit(main())
