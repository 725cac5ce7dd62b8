"""The published numbers our tables are set beside, each with its source.

These are the papers' values on their data (ImageNet at full scale), never results of this code.
A cell that the source does not report is ``None``.
"""

from __future__ import annotations

import math

# Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016 (arXiv 1603.08511), Table 1:
# ImageNet validation, 10k images; AuC of the per-pixel ab-error CDF for thresholds 0..150, raw and
# rebalanced (docs/reference.md section 2). The full method's 89.5 / 67.3 is the paper's; the other
# rows are recalled values, not verified against the paper (random: recalled here, equally
# unverified). PSNR and colourfulness are not in Zhang's table: for the full method they come from
# DDColor's Table 1 (Kang et al. 2023, ImageNet val first 5000 images; docs/reference.md section 7).
ZHANG_TABLE1 = {
    "gray": {"auc_raw": 89.1, "auc_rebalanced": 58.0, "psnr": None, "colourfulness": None},
    "random": {"auc_raw": 84.2, "auc_rebalanced": 57.3, "psnr": None, "colourfulness": None},
    "regression_l2": {"auc_raw": 91.2, "auc_rebalanced": 64.4, "psnr": None, "colourfulness": None},
    "classification": {"auc_raw": 91.6, "auc_rebalanced": 65.1, "psnr": None, "colourfulness": None},
    "classification_rebalanced": {"auc_raw": 89.5, "auc_rebalanced": 67.3, "psnr": 22.64, "colourfulness": 31.60},
}
ZHANG_TABLE1_SOURCE = (
    "Zhang et al. 2016, Table 1 (ImageNet val, 10k images; AuC of the full method as published, other rows "
    "recalled, not verified); PSNR and colourfulness of the full method from DDColor Table 1 (ImageNet "
    "val, first 5000 images, a different protocol)"
)

# The perceptual-loss U-Net / Pix2Pix / NoGAN comparison (Pappalardo and Caterini, "Image
# colorization"), section 5: their own ImageNet subset, 1500 test images at 256 x 256; custom
# accuracy with eps_inf 0.14, eps_2 0.17 (docs/reference.md section 4). The PSNR column is printed
# as "--150.4" / "--153.5": inconsistent with the RMSE column.
COMPARISON_TABLE = {
    "unet": {"custom_accuracy": 0.265, "rmse": 0.206, "psnr_printed": -150.4},
    "pix2pix": {"custom_accuracy": 0.380, "rmse": 0.216, "psnr_printed": -153.5},
    "nogan": {"custom_accuracy": None, "rmse": None, "psnr_printed": None},  # failed in the study, no numbers
}
COMPARISON_SOURCE = "Pappalardo and Caterini, \"Image colorization\" (the U-Net / Pix2Pix / NoGAN comparison), section 5 table"

# The patch-network RReLU study (docs/reference.md section 5): the activation comparison ran on
# MNIST, not on colorization, and reports plots only, no numbers.
RRELU_FINDING = (
    "the patch-network RReLU study (on MNIST classification, plots only): ReLU performs best with batch normalization and "
    "almost best without; RReLU is among the worst"
)
ACTIVATIONS = ("relu", "leaky_relu", "prelu", "elu", "rrelu")

# Zhang et al. 2016, Fig. 3: the annealed-mean temperatures shown, from the mean (T = 1) to the
# mode (T = 0); 0.38 is the paper's choice.
SWEEP_TEMPERATURES = (1.0, 0.77, 0.58, 0.38, 0.29, 0.14, 0.0)


def psnr_from_rmse(rmse: float, peak: float = 1.0) -> float:
    """PSNR in dB that an RMSE on values in [0, ``peak``] implies: 20 log10(peak / rmse)."""
    return 20.0 * math.log10(peak / rmse)
