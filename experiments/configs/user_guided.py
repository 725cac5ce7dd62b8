"""Zhang, Zhu et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors"):
the SIGGRAPH17 local-hints network trained on simulated hints.

Each training image gets a geometric(1/8) number of hinted patches (zero allowed; uniform or
centred-Gaussian positions, sides 1-9 px, the patch's mean ab as the hint); the regression output
(110 tanh, full resolution) is trained with a Huber (smooth L1) loss of delta 1 ab unit, plus the
soft cross-entropy of the 529-bin classification branch at 1/4 resolution, both at the scale of a
loss on ab units (``loss.class_weight`` = 1 / 110^2: see :data:`CLASS_WEIGHT`).

Full scale (ImageNet via TFDS, GPU / TPU; Zhang et al. 2016's released schedule, as scales.py sets):

    colorjax train --config experiments/configs/user_guided.py --workdir runs/user_guided_full \\
        --config.data.data_dir=/data/tfds

Tiny scale (2-core CPU, about 6 minutes when not shared: 32 px photos, width 1/8, 4500 steps of
batch 16, Adam at 1e-3 then x0.1 after 3600): tiny-imagenet-64 built once with
``colorjax data build ../shared/data/tiny-imagenet-64 --data-dir DIR``, then

    colorjax train --config experiments/configs/user_guided.py:tiny --workdir runs/user_guided_tiny \\
        --config.data.data_dir=DIR

``experiments/hints_curve.py`` measures AuC, PSNR and the hint-copy error against the number of hints.
"""

from colorjax.models.siggraph17 import siggraph17_bins
from colorjax.training.config import get_config as default_config

from .scales import apply_scale

HUBER_DELTA_AB = 1.0  # Zhang, Zhu et al. 2017: smooth L1 with delta 1 (ab units); our loss sees ab / 110
# The pixel loss is computed on ab / 110, which makes a Huber of delta 1 ab unit 110^2 = 12,100 times
# smaller than the same Huber on ab: (|d| - 0.5) / 110^2 for an error of d ab units. Weighing the
# classification term by 1 / 110^2 makes the sum (Huber on ab + cross-entropy) / 110^2, both terms at
# their natural scale (Adam ignores the common factor). With a weight of 1 the cross-entropy (~5)
# outweighed the Huber term (~1e-3) several thousand times, so the layers both outputs share,
# conv1 included (the only block that sees the hints at full resolution), learned from the
# 1/4-resolution classification alone and the model did not copy its hints.
CLASS_WEIGHT = 1.0 / 110.0**2
TINY_DATA = "tiny_imagenet_64"  # `colorjax data build ../shared/data/tiny-imagenet-64` names it so
TINY_STEPS = 4500
TINY_DECAY_STEP = 3600  # learning rate x0.1 for the last fifth, as Zhang et al.'s step schedule
TINY_CROP = 32  # px: tiny-imagenet's 64 px photos scaled to 32 (a few minutes of a shared 2-core CPU)
TINY_WIDTH = 0.125


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "regression"
    config.model.backbone = "siggraph17"
    config.model.head = "regression"
    config.model.options.class_bins = len(siggraph17_bins())
    config.loss.pixel = "huber"
    config.loss.huber_delta = HUBER_DELTA_AB / 110.0
    config.loss.class_weight = CLASS_WEIGHT
    config = apply_scale(config, scale)
    if scale == "tiny":
        config.data.spec = TINY_DATA  # 64 px photos with a validation split, prepared in data.data_dir
        config.data.eval_split = "validation"
        config.data.crop_size = TINY_CROP
        config.model.width = TINY_WIDTH
        config.train.num_steps = TINY_STEPS
        config.optim.schedule = "step"
        config.optim.decay_step = TINY_DECAY_STEP
        config.train.log_every = 25
        config.train.checkpoint_every = 500
        config.train.keep_checkpoints = 3
        config.train.eval_images = 64  # experiments/hints_curve.py measures the model properly
    return config
