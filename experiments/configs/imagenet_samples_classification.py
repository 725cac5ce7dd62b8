"""Zhang-style classification (ECCV16 at 1/4 width, 313 bins, rebalanced soft cross-entropy) on the
974 ImageNet sample photos at 64 px for 500 steps: the check that training really learns.

    colorjax train --config experiments/configs/imagenet_samples_classification.py \
        --workdir runs/imagenet_samples_classification --config.data.data_dir=/tmp/colorjax_data

The folder is split 80 / 10 / 10 by file hash on first use (built into data_dir). Measured on the
2 shared CPU cores of the build machine (96 validation photos; loss = rebalanced soft
cross-entropy; two runs gave identical numbers):

    step      0     50    100    150    200    250    300    350    400    450    500
    val loss  5.117 4.574 4.249 4.199 4.203 4.171 4.175 4.159 4.155 4.154 4.155
    AuC raw   85.5  87.4  88.9  88.8  89.2  88.7  88.1  88.5  88.3  88.7  88.6

Wall time 712 s and 951 s, on cores shared with other jobs (load average 7 to 9).
"""

from colorjax.training.config import get_config as default_config

from .scales import SAMPLES


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
