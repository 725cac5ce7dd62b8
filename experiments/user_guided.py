"""Zhang, Zhu et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors"):
the SIGGRAPH17 local-hints network trained on simulated hints.

Each training image gets a geometric(1/8) number of hinted patches (zero allowed; uniform or
centred-Gaussian positions, sides 1-9 px, the patch's mean ab as the hint); the regression output
(110 tanh, full resolution) is trained with a Huber (smooth L1) loss of delta 1 ab unit, plus the
soft cross-entropy of the 529-bin classification branch at 1/4 resolution (``loss.class_weight``).

Full scale (ImageNet via TFDS, GPU / TPU; Zhang et al. 2016's released schedule, as scales.py sets):

    colorjax train --config experiments/user_guided.py --workdir runs/user_guided_full \\
        --config.data.data_dir=/data/tfds

Tiny scale (2-core CPU, minutes): tiny-imagenet-64 built once with
``colorjax data build ../shared/data/tiny-imagenet-64 --data-dir DIR``, then

    colorjax train --config experiments/user_guided.py:tiny --workdir runs/user_guided_tiny \\
        --config.data.data_dir=DIR

``experiments/hints_curve.py`` measures AuC and PSNR against the number of hints.
"""

from colorjax.models.siggraph17 import siggraph17_bins
from colorjax.training.config import get_config as default_config

from .scales import apply_scale

HUBER_DELTA_AB = 1.0  # Zhang, Zhu et al. 2017: smooth L1 with delta 1 (ab units); our loss sees ab / 110
TINY_DATA = "tiny_imagenet_64"  # `colorjax data build ../shared/data/tiny-imagenet-64` names it so
TINY_STEPS = 600


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "regression"
    config.model.backbone = "siggraph17"
    config.model.head = "regression"
    config.model.options.class_bins = len(siggraph17_bins())
    config.loss.pixel = "huber"
    config.loss.huber_delta = HUBER_DELTA_AB / 110.0
    config.loss.class_weight = 1.0
    config = apply_scale(config, scale)
    if scale == "tiny":
        config.data.spec = TINY_DATA  # 64 px photos with a validation split, prepared in data.data_dir
        config.data.eval_split = "validation"
        config.train.num_steps = TINY_STEPS
        config.train.checkpoint_every = TINY_STEPS
        config.train.eval_images = 256
    return config
