"""Fine-tune a trained colorizer on another domain: the imagenet-samples photos at 128 px.

    colorjax train --config experiments/configs/finetune_samples.py --workdir runs/finetune_samples \
        --config.train.init_from=runs/cpu_colorizer

The model and decoding are the CPU recipe's (experiments/configs/cpu_colorizer.py: ECCV16 at 1/4 width, 313
bins, rebalanced soft cross-entropy); the data are the ~780 training photos of
``../shared/data/imagenet-samples`` (the project's hash split, ``COLORJAX_SAMPLES`` overrides), their
shorter side scaled to 128 px and cropped to 64 px squares, so the objects are twice the size in
pixels that tiny-imagenet-64 shows them; validation and the saved inference size are 128 px.
Started from a checkpoint (``train.init_from``) the run keeps its bins, prior and decoding and
trains at a third of the recipe's peak rate; without one it trains from scratch at the recipe's
rate (``get_config("scratch")``). ``experiments/finetune_domain.py`` compares the two with the
un-tuned model.
"""

from __future__ import annotations

from experiments.configs.cpu_colorizer import get_config as cpu_colorizer
from experiments.configs.scales import SAMPLES

SIDE, CROP, STEPS = 128, 64, 300
FINE_TUNE_LEARNING_RATE = 3e-4  # a third of the recipe's 1e-3: the start is already a colorizer


def get_config(start: str = "fine_tune"):
    if start not in ("fine_tune", "scratch"):
        raise ValueError(f"experiments/configs/finetune_samples.py: unknown start {start!r} (fine_tune | scratch)")
    config = cpu_colorizer()
    config.data.spec = SAMPLES
    config.data.resize_size = SIDE
    config.data.crop_size = CROP
    config.data.eval_batch_size = 16
    config.prior.images = 1024  # a scratch run (or prior.recount) counts the whole training split
    return target_run(config, start, steps=STEPS, learning_rate=FINE_TUNE_LEARNING_RATE,
                      warmup_steps=30 if start == "scratch" else 10, log_every=50, eval_images=64)


def target_run(config, start: str, *, steps: int, learning_rate: float, warmup_steps: int, log_every: int,
               eval_images: int):
    """The short run every fine-tuning config shares: ``steps`` steps and one checkpoint at the end,
    no validation during the run (``eval_images`` photos when one is asked for), ``learning_rate``
    for a fine-tune ("fine_tune"); a run from scratch keeps the recipe's rate."""
    config.train.num_steps = config.train.checkpoint_every = steps
    config.optim.warmup_steps = warmup_steps
    if start == "fine_tune":
        config.optim.learning_rate = learning_rate
    config.train.log_every = log_every
    config.train.eval_every = 0
    config.train.eval_images = eval_images
    config.train.keep_checkpoints = 1
    return config
