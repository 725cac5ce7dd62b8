"""Zhang et al. 2016, Table 1, row "Ours (class)": ECCV16, Q = 313 classification, no rebalancing.

Full scale (ImageNet via TFDS, GPU / TPU):

    colorjax train --config experiments/configs/zhang_classification.py --workdir runs/zhang_class_full \\
        --config.data.data_dir=/data/tfds

Expected (the paper): AuC 91.6 raw, 65.1 rebalanced (recalled values, docs/reference.md section 2): higher
raw AuC than the rebalanced model, lower rebalanced AuC, duller colours.

Tiny scale (here, 2-core CPU, about 4 minutes): ``python -m experiments.run_table zhang --scale tiny
--workdir runs/zhang_tiny --rows classification``. Measured: AuC 89.3 raw, 57.4 rebalanced, PSNR
20.04 dB, colourfulness 3.2 (nearly gray at T = 0.38).
"""

from colorjax.training.config import get_config as default_config

from .scales import apply_scale


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "classification"
    config.model.backbone = "eccv16"
    config.prior.rebalance = False  # plain soft cross-entropy: every pixel weighs 1
    return apply_scale(config, scale)
