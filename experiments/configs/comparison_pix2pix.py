"""Pappalardo and Caterini's Pix2Pix: the pix2pix U-Net generator and 70 x 70 PatchGAN, BCE GAN loss + 100 x L1.

Full scale (ImageNet via TFDS, GPU / TPU):

    colorjax train --config experiments/configs/comparison_pix2pix.py --workdir runs/comparison_pix2pix_full \\
        --config.data.data_dir=/data/tfds

Expected (the study, its own 1500 ImageNet test images): custom accuracy 0.380, RMSE 0.216 (PSNR
13.3 dB as implied by that RMSE; the study prints -153.5): more pixels within the accuracy
tolerance than the U-Net, a slightly higher RMSE.

Tiny scale (here, 2-core CPU): ``python -m experiments.run_table comparison --scale tiny --workdir
runs/comparison_tiny --rows pix2pix``; at 64 px the generator has 6 levels instead of 8. Measured
(300 steps, 96 test photos, 380 s): custom accuracy 0.704, RMSE 0.1136, PSNR 18.89 dB.
"""

from colorjax.training.config import PIX2PIX_LEARNING_RATE, get_config as default_config
from colorjax.training.optim import PIX2PIX_BETAS

from .scales import apply_scale

COMPARISON_BATCH, COMPARISON_STEPS = 16, 50 * 4000 // 16  # Pappalardo and Caterini: batch 16, 50 epochs of 4000 images


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "pix2pix"
    config.model.backbone = "pix2pix"
    config.loss.pixel = "l1"
    config = apply_scale(config, scale)
    config.optim.learning_rate = PIX2PIX_LEARNING_RATE  # pix2pix: Adam 2e-4, beta1 0.5, no weight decay
    config.optim.b1, config.optim.b2 = PIX2PIX_BETAS
    config.optim.weight_decay = 0.0
    config.optim.schedule = "constant"
    if scale == "full":
        config.data.crop_size = 256
        config.data.batch_size = config.data.eval_batch_size = COMPARISON_BATCH
        config.train.num_steps = COMPARISON_STEPS
    else:
        config.model.options.num_downs = 6  # 64 px input: 2^6 = 64
        config.discriminator.width = 0.25
    return config
