"""Does starting from a trained model pay on a new domain? Un-tuned vs fine-tuned vs from scratch.

    python -m experiments.finetune_domain --workdir runs/finetune_food --source runs/cpu_colorizer

1. Source: a trained CPU recipe (experiments/configs/cpu_colorizer.py: tiny-imagenet-64 at 64 px),
   ``--source WORKDIR``; without it, the recipe trained here for ``--source-steps`` steps into
   ``WORKDIR/source`` (reused when it already holds a checkpoint).
2. Target domain (``--domain``):
   - ``food`` (default): one subject, tiny-imagenet-64's 17 food classes (experiments/tiny_food.py,
     experiments/configs/finetune_food.py): 3,393 training photos; the classes' held-out ``val/``
     photos, halved into validation (205) and test (222), which no tiny-imagenet run has seen;
   - ``samples``: imagenet-samples at 128 px (experiments/configs/finetune_samples.py; the project's
     hash split). Not a shift for a 64 px model: its checkpoint colorizes at 64 px, the scale it was
     trained at, and that beats every model fine-tuned to 128 px (docs/finetune.md).
   The same number of steps (``--steps``, default the domain config's) for (b) fine-tuning from the
   source (``train.init_from``, at ``--fine-tune-lr``, optionally ``--freeze`` patterns) and (c)
   training from scratch (the recipe's rate); wall time and load average are recorded beside them.
3. Scoring on the target's held-out photos (``--split``: ``test``; ``validation`` to choose settings
   without touching the test), every row decoded as its checkpoint says and scored with one colour
   prior (the one counted on the target's training photos by the scratch run): raw and rebalanced
   AuC, PSNR, colourfulness; paired bootstrap leads of the fine-tuned model over the other two
   (1,000 resamples over the photos).

Writes ``WORKDIR/finetune_domain.json``, ``WORKDIR/finetune_domain.md`` (the table) and
``WORKDIR/finetune_photos.png``: gray | un-tuned | scratch | fine-tuned | truth on the photos
scikit-image ships (publishable; the ImageNet photos are not).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROWS = ("untuned", "scratch", "fine_tuned")
LABELS = {"untuned": "un-tuned (source, 64 px)", "scratch": "from scratch", "fine_tuned": "fine-tuned",
          "lightness": "lightness baseline"}


def _load():
    return os.getloadavg()


def train_source(workdir: Path, steps: int, data_dir: str) -> dict:
    from colorjax.training import train
    from experiments.configs.cpu_colorizer import get_config

    if done := _finished(workdir):
        return done
    config = get_config()
    config.data.data_dir = data_dir
    config.train.num_steps = steps
    config.optim.warmup_steps = min(config.optim.warmup_steps, steps // 10)
    config.prior.images = 2048
    config.train.eval_images = 0
    config.train.eval_every = 0
    config.train.checkpoint_every = steps
    config.train.tensorboard = False
    return _timed(train, config, workdir)


def _finished(workdir: Path) -> dict | None:
    """The record of a run already trained in ``workdir`` (reused), else None."""
    record = workdir / "run.json"
    return json.loads(record.read_text()) if record.exists() else None


def _timed(train, config, workdir, **settings) -> dict:
    """Train ``config`` into ``workdir`` and write its ``run.json``: steps, wall time, load average
    before and after, final loss, and ``settings``."""
    load_before, start = _load(), time.perf_counter()
    summary = train(config, workdir)
    record = {"steps": summary["steps"], "wall_s": round(time.perf_counter() - start, 1), "load_before": load_before,
              "load_after": _load(), "final_train_loss": summary["final_train_loss"], **settings}
    (workdir / "run.json").write_text(json.dumps(record))
    return record


DOMAINS = ("food", "samples")


def domain_config(domain: str):
    """The target domain's config module: experiments/configs/finetune_food.py or finetune_samples.py."""
    if domain == "food":
        from experiments.configs import finetune_food as module
    elif domain == "samples":
        from experiments.configs import finetune_samples as module
    else:
        raise ValueError(f"unknown domain {domain!r}: expected one of {DOMAINS}")
    return module


def train_target(workdir: Path, start: str, steps: int | None, data_dir: str, source: Path | None,
                 learning_rate: float | None = None, freeze: tuple[str, ...] | None = None,
                 domain: str = "food") -> dict:
    """One trained row on ``domain``: ``start`` is "fine_tune" (from ``source``) or "scratch";
    ``steps``, ``learning_rate`` and ``freeze`` override the domain config's defaults."""
    from colorjax.training import train

    config = domain_config(domain).get_config(start)
    config.data.data_dir = data_dir
    if steps is not None:
        config.train.num_steps = config.train.checkpoint_every = steps
    if learning_rate is not None:
        config.optim.learning_rate = learning_rate
    if freeze is not None:
        config.optim.freeze = tuple(freeze)
    if done := _finished(workdir):
        asked = {"steps": config.train.num_steps, "learning_rate": config.optim.learning_rate,
                 "freeze": list(config.optim.freeze)}
        differs = {k: (done.get(k), v) for k, v in asked.items() if k in done and done[k] != v}
        if differs:
            raise SystemExit(f"finetune_domain: {workdir} holds a finished run with other settings "
                             f"(found, asked: {differs}); pass another --workdir")
        return done
    config.train.eval_images = 0
    config.train.tensorboard = False
    if source is not None:
        config.train.init_from = str(source)
    return _timed(train, config, workdir, learning_rate=config.optim.learning_rate, freeze=list(config.optim.freeze),
                  prior_recount=bool(config.prior.get("recount", False)))


def score(checkpoints: dict[str, Path], data: str, data_dir: str, side: int, resamples: int,
          split: str = "test") -> dict:
    from colorjax.data import make_loader
    from colorjax.evaluation import bootstrap
    from colorjax.evaluation.baselines import baseline_predictor
    from colorjax.evaluation.evaluate import model_predictor
    from colorjax.inference import Colorizer
    from colorjax.metrics import summarise

    loader = make_loader(data, split, crop_size=side, batch_size=32, train=False, data_dir=data_dir,
                         drop_gray=True, num_epochs=1)
    batches = [np.asarray(b["rgb"]) for b in loader]
    colorizers = {name: Colorizer.from_checkpoint(path) for name, path in checkpoints.items()}
    prior = colorizers["scratch"].prior  # counted on the target's training photos
    predictors = {"lightness": baseline_predictor("lightness", prior=prior)}
    for name, colorizer in colorizers.items():
        predictors[name] = model_predictor(colorizer)
    sums, rows = {}, {}
    for name, predictor in predictors.items():
        sums[name] = bootstrap.per_image_sums(predictor, batches, prior)
        rows[name] = {k: float(v) for k, v in summarise({k: v.sum(0) for k, v in sums[name].items()}).items()}
        if name in colorizers:
            c = colorizers[name]
            rows[name]["decoding"] = {"size": c.size, "temperature": c.temperature, "prior_correction": c.prior_correction}
    leads = {f"fine_tuned - {other}": bootstrap.paired_lead(sums["fine_tuned"], sums[other], resamples=resamples)
             for other in ("untuned", "scratch", "lightness")}
    return {"rows": rows, "leads": leads, "images": int(len(sums["fine_tuned"]["pixels"]))}


def picture(checkpoints: dict[str, Path], out: Path, side: int = 128) -> Path:
    from PIL import Image

    from colorjax import color
    from colorjax.data.embedded import embedded_photos
    from colorjax.evaluation.temperature_sweep import labelled_grid
    from colorjax.inference import Colorizer
    from experiments.cpu_colorizer_report import square_photo

    photos = [square_photo(p, side) for p in embedded_photos().values()]
    lab = color.rgb_uint8_to_lab(np.stack(photos))
    gray = np.round(np.asarray(color.lab_to_rgb(lab.at[..., 1:].set(0.0))) * 255).astype(np.uint8)
    columns = []
    for name in ROWS:
        columns.append(Colorizer.from_checkpoint(checkpoints[name], batch_size=len(photos)).colorize_arrays(photos))
    rows = [[gray[i], *(c[i] for c in columns), photos[i]] for i in range(len(photos))]
    Image.fromarray(labelled_grid(rows, ["gray", "un-tuned", "scratch", "fine-tuned", "truth"])).save(out)
    return out


def markdown(record: dict) -> str:
    s, runs = record["scores"], record["runs"]
    lines = [f"Held-out: {record['domain_label']}, {record['split']} split, {s['images']} colour photos at "
             f"{record['side']} px; {record['steps']} steps of 16 for each trained row; scored with the "
             "target-domain prior.", "",
             "| row | steps on target | wall time | load avg (1 min, before / after) | AuC raw | AuC rebal. | PSNR dB | colourfulness (truth) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("untuned", "scratch", "fine_tuned", "lightness"):
        m, run = s["rows"][name], runs.get(name, {})
        wall = f"{run['wall_s'] / 60:.1f} min" if "wall_s" in run else ""
        load = f"{run['load_before'][0]:.1f} / {run['load_after'][0]:.1f}" if "load_before" in run else ""
        steps = run.get("steps", 0 if name == "untuned" else "")
        lines.append(f"| {LABELS[name]} | {steps} | {wall} | {load} | {m['auc_raw']:.2f} | {m['auc_rebalanced']:.2f} | "
                     f"{m['psnr']:.2f} | {m['colourfulness']:.1f} ({m['colourfulness_true']:.1f}) |")
    lines += ["", "| paired bootstrap lead | AuC raw | AuC rebal. | beyond 2 SE (raw / rebal.) |", "|---|---|---|---|"]
    for name, lead in s["leads"].items():
        ok = [lead[k] > 2 * lead[f"{k}_se"] for k in ("raw", "rebalanced")]
        lines.append(f"| {name.replace('_', '-')} | {lead['raw']:+.2f} +- {lead['raw_se']:.2f} | "
                     f"{lead['rebalanced']:+.2f} +- {lead['rebalanced_se']:.2f} | "
                     f"{'yes' if ok[0] else 'no'} / {'yes' if ok[1] else 'no'} |")
    return "\n".join(lines) + "\n"


DOMAIN_LABELS = {"food": "tiny-imagenet-64's food classes", "samples": "imagenet-samples"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--domain", default="food", choices=DOMAINS)
    parser.add_argument("--source", default=None, help="a trained cpu_colorizer workdir to start from")
    parser.add_argument("--source-steps", type=int, default=600, help="without --source: train one this long")
    parser.add_argument("--steps", type=int, default=None, help="steps of each trained row (default: the domain config's)")
    parser.add_argument("--fine-tune-lr", type=float, default=None,
                        help="the fine-tuned row's peak rate (default: the domain config's)")
    parser.add_argument("--freeze", action="append", default=None, help="an optim.freeze pattern (repeatable)")
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--data-dir", default=None, help="TFDS data dir for the built folders (default WORKDIR/tfds)")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)
    module = domain_config(args.domain)
    if args.domain == "food":
        from experiments.tiny_food import make_food_folder

        make_food_folder(module.FOOD)
    steps = args.steps or module.STEPS
    workdir = Path(args.workdir).absolute()
    data_dir = args.data_dir or str(workdir / "tfds")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.source is not None:
        source = Path(args.source).absolute()
        runs = {"source": {"checkpoint": str(source)}}
    else:
        source = workdir / "source"
        runs = {"source": train_source(source, args.source_steps, data_dir)}
    runs["fine_tuned"] = train_target(workdir / "fine_tuned", "fine_tune", steps, data_dir, source,
                                      learning_rate=args.fine_tune_lr, freeze=args.freeze, domain=args.domain)
    runs["scratch"] = train_target(workdir / "scratch", "scratch", steps, data_dir, None, domain=args.domain)
    for name in ("fine_tuned", "scratch"):
        print(f"{name}: {json.dumps(runs[name])}", flush=True)
    checkpoints = {"untuned": source, "scratch": workdir / "scratch", "fine_tuned": workdir / "fine_tuned"}
    spec = module.get_config("scratch").data.spec
    record = {"domain": args.domain, "domain_label": DOMAIN_LABELS[args.domain], "split": args.split,
              "side": module.SIDE, "steps": steps, "source": str(source),
              "source_steps": None if args.source else args.source_steps, "data": spec, "runs": runs,
              "scores": score(checkpoints, spec, data_dir, module.SIDE, args.resamples, split=args.split)}
    (workdir / "finetune_domain.json").write_text(json.dumps(record, indent=1))
    (workdir / "finetune_domain.md").write_text(markdown(record))
    picture(checkpoints, workdir / "finetune_photos.png")
    print(markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
