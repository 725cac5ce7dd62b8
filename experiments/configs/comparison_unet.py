"""Pappalardo and Caterini's U-Net (LeakyReLU, BatchNorm before each resampling, dropout near the input) regressing
ab with per-pixel L1 plus a per-pixel VGG16 perceptual loss.

Full scale (ImageNet via TFDS, GPU / TPU; the perceptual loss needs VGG16 weights converted with
``colorjax convert vgg16 vgg16.pth --out weights/vgg16``):

    colorjax train --config experiments/configs/comparison_unet.py --workdir runs/comparison_unet_full \\
        --config.data.data_dir=/data/tfds --config.loss.vgg_checkpoint=weights/vgg16

Expected (the study, its own 1500 ImageNet test images): custom accuracy 0.265, RMSE 0.206 (PSNR
13.7 dB as implied by that RMSE; the study prints -150.4).

Tiny scale (here, 2-core CPU): ``python -m experiments.run_table comparison --scale tiny --workdir
runs/comparison_tiny``. No VGG16 weights can be downloaded here, so the tiny run uses L1 only
(``perceptual_weight = 0``): a U-Net L1 regressor, not the study's full loss. Measured (300 steps,
96 test photos at 64 px, 565 s): custom accuracy 0.762, RMSE 0.0967, PSNR 20.30 dB.
"""

from colorjax.training.config import get_config as default_config

from .scales import apply_scale

# Pappalardo and Caterini: batch 16, Adam 2e-4, 50 epochs of 4000 images at 256 x 256 (docs/reference.md section 4).
COMPARISON_BATCH, COMPARISON_LR, COMPARISON_STEPS = 16, 2e-4, 50 * 4000 // 16


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "regression"
    config.model.backbone = "unet"
    config.loss.pixel = "l1"
    config = apply_scale(config, scale)
    if scale == "full":
        config.data.crop_size = 256
        config.data.batch_size = config.data.eval_batch_size = COMPARISON_BATCH
        config.optim.learning_rate = COMPARISON_LR
        config.optim.weight_decay = 0.0
        config.optim.schedule = "constant"
        config.train.num_steps = COMPARISON_STEPS
        config.loss.perceptual_weight = 1.0  # per-pixel VGG16 feature loss added to L1 (the study's lesson)
    return config
