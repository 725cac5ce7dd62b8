"""Zhang et al. 2016, Table 1, row "Ours (L2)": the same ECCV16 trunk regressing ab with an L2 loss.

Full scale (ImageNet via TFDS, GPU / TPU):

    colorjax train --config experiments/configs/zhang_regression_l2.py --workdir runs/zhang_l2_full \\
        --config.data.data_dir=/data/tfds

Expected (the paper): AuC 91.2 raw, 64.4 rebalanced (recalled values, docs/reference.md section 2): high raw
AuC from desaturated, near-gray predictions; low colourfulness.

Tiny scale (here, 2-core CPU, about 4 minutes): ``python -m experiments.run_table zhang --scale tiny
--workdir runs/zhang_tiny --rows regression_l2``. Measured: AuC 89.0 raw, 57.9 rebalanced, PSNR
20.26 dB, colourfulness 10.2 (uniform sepia).
"""

from colorjax.training.config import get_config as default_config

from .scales import apply_scale


def get_config(scale: str = "full"):
    config = default_config()
    config.method = "regression"
    config.model.backbone = "eccv16"
    config.loss.pixel = "l2"  # Euclidean loss on ab: the mean of the plausible colours, i.e. grayish
    return apply_scale(config, scale)
