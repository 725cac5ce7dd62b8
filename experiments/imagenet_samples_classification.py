"""Zhang-style classification (ECCV16 at 1/4 width, 313 bins, rebalanced soft cross-entropy) on the
974 ImageNet sample photos at 64 px for 500 steps: the check that training really learns.

    colorjax train --config experiments/imagenet_samples_classification.py \
        --workdir runs/imagenet_samples_classification --config.data.data_dir=/tmp/colorjax_data

The folder is split 80 / 10 / 10 by file hash on first use (built into data_dir). Expected: the
validation loss falls clearly over the 500 steps (numbers in the README's training section).
"""

from colorjax.training.config import get_config as default_config

SAMPLES = "../shared/data/imagenet-samples"


def get_config():
    config = default_config()
    config.data.spec = SAMPLES
    config.data.crop_size = 64  # small enough for CPU; the output grid is 16 x 16
    config.data.batch_size = 16
    config.data.eval_batch_size = 16
    config.model.width = 0.25  # 16 to 128 channels, ~2 M parameters
    config.prior.images = 800  # the whole training split, once
    config.optim.learning_rate = 1e-3  # Zhang's 3e-5 is for batch 40 over 450k steps; 500 steps need more
    config.optim.schedule = "warmup_cosine"
    config.optim.warmup_steps = 25
    config.train.num_steps = 500
    config.train.log_every = 25
    config.train.eval_every = 50
    config.train.eval_images = 96  # the whole validation split (~97 photos) in full batches
    config.train.checkpoint_every = 250
    return config
