"""Pappalardo and Caterini's NoGAN attempt (after DeOldify): pre-train the U-Net generator, pre-train the PatchGAN
on its outputs, then a short GAN phase at a low learning rate, in cycles.

Full scale (ImageNet via TFDS, GPU / TPU):

    colorjax train --config experiments/configs/comparison_nogan.py --workdir runs/comparison_nogan_full \\
        --config.data.data_dir=/data/tfds

Expected: the study reports no numbers (its discriminator was undertrained and the GAN phase made the
generator worse); DeOldify's schedule (docs/reference.md section 6) is what this config follows.

Tiny scale (here, 2-core CPU): ``python -m experiments.run_table comparison --scale tiny --workdir
runs/comparison_tiny --rows nogan``. Measured (250 steps, 96 test photos, 387 s): custom accuracy
0.730, RMSE 0.1314, PSNR 17.63 dB.
"""

from colorjax.training.config import get_config as default_config

from .scales import TINY_STEPS, apply_scale


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "nogan"
    config.model.backbone = "unet"
    config.loss.pixel = "l1"
    config = apply_scale(config, scale)
    config.optim.learning_rate = 2e-4
    config.optim.weight_decay = 0.0
    config.optim.schedule = "constant"
    if scale == "full":
        config.data.crop_size = 256
        config.data.batch_size = config.data.eval_batch_size = 16
        config.train.num_steps = 0  # the NoGAN schedule's own length
    else:
        # the same step budget as the other tiny rows, split over DeOldify's phases
        config.nogan.generator_steps = TINY_STEPS // 2
        config.nogan.critic_steps = TINY_STEPS // 12
        config.nogan.gan_steps = TINY_STEPS // 12
        config.nogan.cycles = 2
        config.train.num_steps = 0
        config.discriminator.width = 0.25
    return config
