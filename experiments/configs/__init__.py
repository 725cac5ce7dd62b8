"""Training configs: the paper rows and the recipes the tests load, with ``scales.py``.

Passed by path (``colorjax train --config experiments/configs/zhang_classification.py``);
``colorjax.training.commands.load_config_file`` loads a file here as the module
``experiments.configs.NAME``, so a config imports its siblings package-relatively
(``from .scales import apply_scale``).
"""
