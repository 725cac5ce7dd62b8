"""The patch-network RReLU study's activation comparison: the 8-conv patch net as a Zhang-style
Q-bin classifier, one row per activation (relu, leaky_relu, prelu, elu, rrelu) with and without
BatchNorm.

Each row is ``get_config(scale, activation=..., batch_norm=...)``. The study's classifier: bins are
the grid-10 cells that occur in the training data, rebalancing with lambda = 0.5 without the
Gaussian smoothing, annealed-mean decoding (docs/reference.md section 5).

Full scale (ImageNet via TFDS, GPU / TPU), e.g. ELU without BatchNorm:

    colorjax train --config experiments/configs/rrelu_patchnet.py --workdir runs/rrelu_elu_nobn \\
        --config.data.data_dir=/data/tfds --config.model.activation=elu --config.model.batch_norm=false

Expected: the study has no colorization numbers; on MNIST it found ReLU best with BatchNorm and
nearly best without, and RReLU among the worst.

Tiny scale (here, 2-core CPU; ten runs, 831 s in all): ``python -m experiments.run_table rrelu
--scale tiny --workdir runs/rrelu_tiny``. Measured: rebalanced AuC 58.6-59.5 and raw AuC 86.6-88.4
for all ten rows, differences inside the bootstrap error; BatchNorm rows are more colourful (24-31
vs 18-21).
"""

from colorjax.training.config import get_config as default_config

from .scales import apply_scale

RRELU_IMAGE_SIZE = 256  # the study's photos are 256 x 256; its 32 px windows tile them densely


def get_config(scale: str = "full", activation: str = "relu", batch_norm: bool = True):
    config = default_config()
    config.method = "classification"
    config.model.backbone = "patchnet"
    config.model.activation = activation
    config.model.batch_norm = batch_norm
    config.bins.kind = "grid"  # only the grid cells that occur in the training data
    config.bins.grid = 10
    config.prior.smoothing_sigma = 0.0  # the RReLU study skips the Gaussian smoothing
    config = apply_scale(config, scale)
    if scale == "full":
        # A valid-conv net on a whole 256 px image trains every 32 px window of it at once.
        config.data.crop_size = RRELU_IMAGE_SIZE
    else:
        # The study's own geometry: 32 px windows -> 16 px outputs (here whole photos at 32 px), at a
        # quarter of the filters; full-resolution valid convs cost ~20x an ECCV16 of the same width.
        config.data.crop_size = 32
        config.model.width = 0.25
    return config
