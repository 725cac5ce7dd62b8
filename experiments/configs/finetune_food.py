"""Fine-tune the CPU recipe's colorizer on one subject: tiny-imagenet-64's food photos.

    python -m experiments.tiny_food --out runs/tiny_food      # the folder of links, once
    colorjax train --config experiments/configs/finetune_food.py --workdir runs/finetune_food \
        --config.train.init_from=runs/cpu_colorizer

The model, loss and decoding are the CPU recipe's (experiments/configs/cpu_colorizer.py: ECCV16 at
1/4 width, 313 bins, rebalanced soft cross-entropy, 64 px); the data are the 17 food classes of
tiny-imagenet-64 (experiments/tiny_food.py: 3,393 training photos; validation on half of the classes'
held-out ``val/`` photos, the other half kept for the test). ``COLORJAX_TINY_FOOD`` names another
folder. Started from a checkpoint (``train.init_from``) the run keeps the checkpoint's bins and decoding,
recounts the colour prior on the food photos (``prior.recount``: rebalancing by the general prior
over-weights the oranges and yellows food is full of; on the validation half it cost 0.4 raw AuC
for no gain) and trains at :data:`FINE_TUNE_LEARNING_RATE`; without one (``get_config("scratch")``)
it trains from random weights at the recipe's rate and counts its own prior.
``experiments/finetune_domain.py`` compares the two with the un-tuned model.
"""

from __future__ import annotations

import os
from pathlib import Path

from experiments.configs.cpu_colorizer import CROP
from experiments.configs.cpu_colorizer import get_config as cpu_colorizer
from experiments.configs.finetune_samples import target_run

FOOD = os.environ.get("COLORJAX_TINY_FOOD", str(Path(__file__).resolve().parents[2] / "runs/tiny_food"))
SIDE = CROP  # 64 px: tiny-imagenet's own size, trained and scored on whole photos
STEPS = 1200
FINE_TUNE_LEARNING_RATE = 1e-4  # a tenth of the recipe's peak: the start is already a colorizer


def get_config(start: str = "fine_tune"):
    if start not in ("fine_tune", "scratch"):
        raise ValueError(f"experiments/configs/finetune_food.py: unknown start {start!r} (fine_tune | scratch)")
    if not Path(FOOD, "train").is_dir():
        raise ValueError(f"experiments/configs/finetune_food.py: {FOOD} has no train/ folder: make it with "
                         "python -m experiments.tiny_food --out runs/tiny_food (or set COLORJAX_TINY_FOOD)")
    config = cpu_colorizer()
    config.data.spec = FOOD
    config.data.eval_batch_size = 32
    config.prior.images = 2048  # a scratch run (or prior.recount) counts two thirds of the training photos
    config.prior.recount = start == "fine_tune"
    return target_run(config, start, steps=STEPS, learning_rate=FINE_TUNE_LEARNING_RATE,
                      warmup_steps=60 if start == "scratch" else 20, log_every=100, eval_images=205)
