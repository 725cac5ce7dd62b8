"""The two scales every table config runs at: ``full`` (the paper's setting) and ``tiny`` (here).

Row configs (``zhang_*.py``, ``comparison_*.py``, ``rrelu_patchnet.py``) call :func:`apply_scale`
after setting what defines their row, so the scale settings live only here.

- ``full``: ImageNet (TFDS ``imagenet2012`` prepared in ``data.data_dir``) on a GPU / TPU host,
  Zhang et al.'s released training recipe (Zhang et al. 2016; docs/reference.md section 2): 176 px crops, batch 40, Adam
  3e-5 with betas (0.9, 0.99) and weight decay 1e-3, x0.1 at 225k of 450k steps.
- ``tiny``: the 974 photos of ``../shared/data/imagenet-samples`` (split 80/10/10 by the data
  module's path hash) on a 2-core CPU, a few minutes per run: 64 px crops, networks at reduced
  width, a higher learning rate because the run is short.
- ``tiny_imagenet``: the same networks and rates on the 39,673 training photos of
  ``../shared/data/tiny-imagenet-64`` (the CPU recipe's data, experiments/configs/cpu_colorizer.py),
  scored on its ``val/`` photos (no row chooses anything on them); :data:`TINY_IMAGENET_STEPS` steps.
"""

from __future__ import annotations

import os
from pathlib import Path

import ml_collections

SCALES = ("full", "tiny", "tiny_imagenet")
# The shared sample photos sit beside the repository (../shared/data); COLORJAX_SAMPLES overrides.
SAMPLES = os.environ.get("COLORJAX_SAMPLES", str(Path(__file__).resolve().parents[3] / "shared/data/imagenet-samples"))
TINY_IMAGENET = os.environ.get(
    "COLORJAX_TINY_IMAGENET", str(Path(__file__).resolve().parents[3] / "shared/data/tiny-imagenet-64"))
# Zhang et al. 2016 released training: 176 px crops, batch 40, lr x0.1 at 225k of ~450k iterations.
ZHANG_CROP, ZHANG_BATCH, ZHANG_STEPS, ZHANG_DECAY_STEP = 176, 40, 450_000, 225_000
TINY_STEPS = 300  # about 4 minutes per run of a 1/4-width ECCV16 at 64 px on 2 shared CPU cores
TINY_IMAGENET_STEPS = 1000  # about 4 minutes per run of a 1/4-width ECCV16 at 64 px on 2 idle cores
# Where each scale's table rows are scored: ImageNet's validation set, the samples' test split, and
# tiny-imagenet's val/ (its only held-out photos; the rows are compared there, nothing is tuned).
EVAL_SPLIT = {"full": "validation", "tiny": "test", "tiny_imagenet": "validation"}
EVAL_IMAGES = {"full": None, "tiny": None, "tiny_imagenet": 2048}  # None: the whole split


def apply_scale(config: ml_collections.ConfigDict, scale: str) -> ml_collections.ConfigDict:
    """Set data, size and schedule for ``scale``; the row's method and model are left as they are."""
    match scale:
        case "full":
            config.data.spec = "imagenet2012"
            config.data.eval_split = "validation"
            config.data.crop_size = ZHANG_CROP
            config.data.batch_size = ZHANG_BATCH
            config.data.eval_batch_size = ZHANG_BATCH
            config.data.worker_count = 8  # decoding ImageNet JPEGs needs several processes per host
            config.train.num_steps = ZHANG_STEPS
            config.optim.schedule = "step"
            config.optim.decay_step = ZHANG_DECAY_STEP
            config.train.eval_every = 10_000
            config.train.checkpoint_every = 10_000
            config.train.eval_images = 10_000  # Zhang's Table 1 uses 10k validation images
        case "tiny" | "tiny_imagenet":
            config.data.spec = SAMPLES if scale == "tiny" else TINY_IMAGENET
            config.data.crop_size = 64  # whole photos scaled to 64 px on the shorter side, then cropped
            config.data.batch_size = 16
            config.data.eval_batch_size = 16
            config.model.width = 0.25  # 16 to 128 channels in ECCV16
            config.prior.images = 512  # a prior from 32 batches of the ~780 training photos
            config.optim.learning_rate = 1e-3  # a few hundred steps: 3e-5 would barely move the weights
            config.optim.weight_decay = 0.0
            config.train.num_steps = TINY_STEPS
            config.train.log_every = 50
            config.train.eval_every = 0  # validate once, at the end
            config.train.eval_images = 96
            config.train.checkpoint_every = TINY_STEPS
            config.train.keep_checkpoints = 1
            config.train.progress_bar = False
            if scale == "tiny_imagenet":
                config.prior.images = 2048
                config.train.num_steps = config.train.checkpoint_every = TINY_IMAGENET_STEPS
                config.train.log_every = 100
        case _:
            raise ValueError(f"unknown scale {scale!r}: expected one of {SCALES}")
    return config
