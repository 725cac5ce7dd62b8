"""A tiny classification run for tests and quick checks: ECCV16 at 1/16 width on 32 px crops of
the embedded photos, a few steps, on CPU in seconds.

    colorjax train --config experiments/configs/tiny_classification.py --workdir /tmp/tiny

Tests override the method, backbone and step counts of this file rather than keeping copies.
"""

from colorjax.training.config import get_config as default_config


def get_config():
    config = default_config()
    config.data.crop_size = 32  # the smallest crop ECCV16 (stride 8 inside) handles comfortably
    config.data.batch_size = 8  # divisible by the 8 forced CPU devices of the device-count test
    config.data.eval_batch_size = 8
    config.model.width = 1 / 16  # 4 to 32 channels: compiles in seconds
    config.prior.images = 16  # two batches are enough to count a prior on 6 photos
    config.optim.learning_rate = 1e-3  # a tiny net on tiny data moves fast
    config.optim.weight_decay = 0.0
    config.train.num_steps = 4
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.eval_images = 8
    config.train.checkpoint_every = 2
    config.train.grid_images = 2
    config.train.progress_bar = False
    config.train.tensorboard = False  # tensorboardX imports torch when installed: seconds per process
    return config
