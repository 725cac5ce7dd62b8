"""The one default training config: every field defined once, with its meaning and source.

Experiment files under ``experiments/configs/`` import :func:`get_config`, override a few fields and return
it. :func:`apply_overrides` locks the ConfigDict and hands each ``--config.a.b=value`` string to
ml_collections' ``config_flags``, which parses the value as the field's type; unknown fields are
refused. ``method`` implies the model's head (:func:`model_head`). :func:`validate` refuses bad
combinations before anything is built or compiled.
"""

from __future__ import annotations

import ast
import math
import os

import ml_collections
from absl import flags
from ml_collections import config_dict, config_flags

from colorjax.bins import SOFT_ENCODE_K, SOFT_ENCODE_SIGMA
from colorjax.decode import ANNEALED_MEAN_TEMPERATURE
from colorjax.models.winograd import ALGORITHMS
from colorjax.prior import PRIOR_SMOOTHING_SIGMA, REBALANCE_LAMBDA
from colorjax.training.simulated_hints import GEOMETRIC_P, PLACEMENTS

METHODS = ("regression", "classification", "pix2pix", "nogan")
# The most steps a run may take: the optimizer's and the schedules' step counters are int32 on device.
MAX_STEPS = 2**31 - 1
GAN_METHODS = ("pix2pix", "nogan")  # the methods that train a PatchGAN discriminator beside the generator
# The head each method trains: Q-bin logits for Zhang et al.'s classification, ab for the others.
HEAD_OF_METHOD = {"regression": "regression", "classification": "classification", "pix2pix": "regression",
                  "nogan": "regression"}
# pix2pix (Isola et al. 2017): G loss = GAN + 100 * L1 on ab / 110; Adam 2e-4 (its betas, the
# discriminator's loss factor and NoGAN's critic rate factor are constants of optim.py and steps.py).
LAMBDA_L1 = 100.0
PIX2PIX_LEARNING_RATE = 2e-4


def get_config() -> ml_collections.ConfigDict:
    """Defaults: a Zhang-style classifier (ECCV16, rebalanced soft cross-entropy) on embedded data."""
    c = ml_collections.ConfigDict()
    c.method = "classification"  # regression | classification | pix2pix | nogan
    c.seed = 0  # parameter init, dropout and data order

    c.data = ml_collections.ConfigDict()
    c.data.spec = "embedded"  # "embedded", an image folder, or a TFDS name (colorjax.data.make_loader)
    c.data.data_dir = config_dict.placeholder(str)  # TFDS data_dir
    c.data.train_split = "train"
    c.data.eval_split = "validation"
    c.data.crop_size = 64  # square training crops, px (Zhang: 176, pix2pix: 256)
    # shorter side scaled to this before the random training crop; validation and inference run at
    # it (centre squares). None: crop_size (whole images, rescaled). Zhang: 256 for 176 px crops.
    c.data.resize_size = config_dict.placeholder(int)
    c.data.batch_size = 16  # global batch, split over all devices (Zhang: 40, pix2pix: 1, Pappalardo and Caterini: 16)
    c.data.eval_batch_size = 16  # global batch for validation
    c.data.worker_count = 0  # grain worker processes per host (0: in the main process)
    c.data.cache_mb = 1024.0  # decoded training images kept per process, MB (0: decode every epoch)
    c.data.drop_gray = True  # skip gray images (Zhang's non-gray rule) in training

    c.model = ml_collections.ConfigDict()
    c.model.backbone = "eccv16"  # eccv16 | siggraph17 | unet | pix2pix | patchnet (colorjax.models.build_model)
    c.model.head = config_dict.placeholder(str)  # None: the method's head (HEAD_OF_METHOD); if set, must agree
    c.model.width = 1.0  # channel multiplier (1.0: the paper's widths)
    c.model.activation = config_dict.placeholder(str)  # relu | leaky_relu | prelu | elu | rrelu; None: the paper's
    c.model.batch_norm = True
    c.model.conv_algorithm = "auto"  # auto | direct | winograd: what 3 x 3 layers run (colorjax.models.winograd)
    c.model.options = ml_collections.ConfigDict()  # backbone-specific build_model keyword options

    c.bins = ml_collections.ConfigDict()
    c.bins.kind = "zhang"  # zhang: the 313 official centres | grid: the cells occurring in training data
    c.bins.grid = 10  # grid step for kind="grid" (the RReLU study: 10 or 5)
    c.bins.k = SOFT_ENCODE_K  # soft-encoding neighbours (paper 5; released code 10)
    c.bins.sigma = SOFT_ENCODE_SIGMA  # soft-encoding Gaussian width
    c.bins.temperature = ANNEALED_MEAN_TEMPERATURE  # annealed-mean decoding for validation images
    c.bins.prior_correction = 0.0  # colorize / evaluate decode p / w**this (0: as trained, Zhang's choice)

    c.prior = ml_collections.ConfigDict()
    c.prior.rebalance = True  # weight each pixel by the prior's rebalancing weight (classification)
    c.prior.lam = REBALANCE_LAMBDA  # mix with the uniform distribution
    c.prior.smoothing_sigma = PRIOR_SMOOTHING_SIGMA  # Gaussian smoothing in ab (the RReLU study: none)
    c.prior.images = 2048  # training images streamed to count bins (and grid cells) before training
    c.prior.path = config_dict.placeholder(str)  # load a saved ColourPrior instead of counting
    c.prior.recount = False  # with train.init_from: count the prior on this run's data (else the checkpoint's)

    c.loss = ml_collections.ConfigDict()
    c.loss.pixel = "l1"  # l1 | l2 | huber, on ab / 110 (regression and GAN reconstruction)
    c.loss.huber_delta = 0.1  # Huber threshold on ab / 110
    c.loss.lambda_l1 = LAMBDA_L1  # weight of the pixel loss against the GAN loss
    c.loss.perceptual_weight = 0.0  # > 0: add the per-pixel VGG16 feature loss (Pappalardo and Caterini)
    c.loss.vgg_checkpoint = config_dict.placeholder(str)  # directory from `colorjax convert vgg16`
    c.loss.vgg_layers = ("relu2_2",)  # VGG16 layers compared by the perceptual loss
    c.loss.gan = "bce"  # bce (pix2pix) | lsgan (least squares)
    c.loss.class_weight = 1.0  # user-guided regression with model.options.class_bins: auxiliary CE weight

    c.hints = ml_collections.ConfigDict()  # simulated hints, for a model that takes hints (siggraph17)
    c.hints.p = GEOMETRIC_P  # number of points ~ geometric(p), zero allowed (Zhang, Zhu et al. 2017: 1/8)
    c.hints.placement = "mixed"  # mixed (half uniform, half centred Gaussian) | uniform | gaussian

    c.optim = ml_collections.ConfigDict()
    c.optim.optimizer = "adam"  # adam | adamw
    c.optim.learning_rate = 3e-5  # Zhang's released training: 3e-5
    c.optim.b1 = 0.9
    c.optim.b2 = 0.99  # Zhang: betas (0.9, 0.99)
    c.optim.weight_decay = 1e-3  # Zhang: 1e-3 (decoupled for adamw, L2 added to the gradient for adam)
    c.optim.schedule = "constant"  # constant | warmup_cosine | step | linear_decay
    c.optim.warmup_steps = 0  # warmup_cosine: linear warmup length
    c.optim.decay_step = 0  # step: multiply by decay_factor here (Zhang: 225k); linear_decay: start
    c.optim.decay_factor = 0.1  # step: Zhang's x0.1
    c.optim.grad_clip_norm = 0.0  # > 0: clip the global gradient norm
    # Parameter-path patterns (re.fullmatch on paths like backbone/blocks/0/0/kernel; see
    # colorjax/training/init_from.py): frozen parameters are not updated, nor (freeze_batch_stats)
    # the running statistics of matching BatchNorm layers; lr_mults "PATTERN=MULT" scale the rate.
    c.optim.freeze = ()
    c.optim.freeze_batch_stats = True
    c.optim.lr_mults = ()

    c.discriminator = ml_collections.ConfigDict()  # pix2pix and nogan only
    c.discriminator.width = 1.0  # PatchGAN channel multiplier
    c.discriminator.n_layers = 3  # stride-2 convs: 3 gives pix2pix's 70 x 70 patches
    c.discriminator.learning_rate = PIX2PIX_LEARNING_RATE

    c.nogan = ml_collections.ConfigDict()  # DeOldify's NoGAN schedule (docs/reference.md section 6)
    c.nogan.generator_steps = 1000  # generator pre-training (pixel / perceptual loss only)
    c.nogan.critic_steps = 200  # per cycle: discriminator pre-training on the generator's outputs
    c.nogan.gan_steps = 100  # per cycle: short GAN phase
    c.nogan.cycles = 3  # DeOldify's stable model: 3 cycles
    c.nogan.gan_learning_rate = 2e-5  # DeOldify: 2e-5 in the GAN phase
    c.nogan.critic_learning_rate = 1e-4  # discriminator pre-training

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 1000  # for nogan: set from the phase lengths when 0
    c.train.log_every = 50  # steps between JSONL / TensorBoard training records
    c.train.eval_every = 500  # steps between validations (0: only at the end)
    c.train.eval_images = 256  # validation images per validation (0: no validation)
    c.train.checkpoint_every = 500  # steps between checkpoints (and always the last step)
    c.train.keep_checkpoints = 3  # keep the last N checkpoints ...
    c.train.best_metric = "val_loss"  # ... and the best by this validation metric
    c.train.best_mode = "min"  # min | max
    c.train.grid_images = 8  # images in each validation grid PNG
    c.train.compute_dtype = "float32"  # float32 | bfloat16: convolutions in bfloat16, float32 master state
    c.train.remat = "none"  # none | blocks: keep only block outputs for the backward pass (less memory)
    c.train.progress_bar = True
    # Start from a trained model (colorjax/training/init_from.py): a checkpoint folder or workdir,
    # its step (None: the latest); arrays matching a reinit pattern keep their fresh initialisation;
    # init_decoding: the checkpoint's temperature and prior correction carry over (else bins.*).
    c.train.init_from = config_dict.placeholder(str)
    c.train.init_step = config_dict.placeholder(int)
    c.train.reinit = ()
    c.train.init_rename = ""  # start another backbone: a name of init_from.RENAMINGS (eccv16_to_siggraph17)
    c.train.init_decoding = True
    c.train.tensorboard = True  # TensorBoard event files beside metrics.jsonl
    return c


def model_head(config: ml_collections.ConfigDict) -> str:
    """The head ``config`` trains: the one its ``method`` implies (``model.head`` may repeat it)."""
    return config.model.get("head") or HEAD_OF_METHOD[config.method]


def _field(config: ml_collections.ConfigDict, path: str, item: str):
    """``(group, name)`` of the field at dotted ``path``; a ValueError naming an unknown field or a group."""
    *parents, name = path.split(".")
    group = config
    for part in parents:
        if part not in group or not isinstance(group[part], ml_collections.ConfigDict):
            raise ValueError(f"config override {item!r}: unknown field {path!r}")
        group = group[part]
    if name not in group:
        raise ValueError(f"config override {item!r}: unknown field {path!r}")
    if isinstance(group[name], ml_collections.ConfigDict):
        raise ValueError(f"config override {item!r}: {path!r} is a group, not a field")
    return group, name


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> ml_collections.ConfigDict:
    """Apply ``a.b=value`` strings (the part after ``--config.``), in order, to ``config``, locked.

    Each value is parsed by ml_collections' ``config_flags`` as its field's type (``1`` for a float
    field is 1.0, ``false`` for a bool, ``('a','b')`` for a tuple); ``none`` sets any field to None.
    ``model.options`` stays open: it holds backbone keywords that ``build_model`` checks itself.
    """
    config.lock()
    config.model.options.unlock()
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"config override {item!r}: expected FIELD=VALUE")
        if path.startswith("model.options.") and path.count(".") == 2:  # a backbone keyword, new or not
            config.model.options.unlock()
            config.model.options[path.rpartition(".")[2]] = _option_value(text)
            continue
        group, name = _field(config, path, item)
        if text.lower() == "none":
            group[name] = None
            continue
        argv = ["colorjax", f"--config.{item}"]
        flag_values = flags.FlagValues()
        config_flags.DEFINE_config_dict("config", config, flag_values=flag_values, sys_argv=argv)
        try:
            flag_values(argv)
        except flags.Error as error:
            expected = " (expected true or false)" if isinstance(group[name], bool) else ""
            raise ValueError(f"config override {item!r}: {error}{expected}") from None
    config.model.options.unlock()  # config_flags locks the whole tree again
    return config


def _option_value(text: str):
    """A ``model.options`` value from the command line: true / false, a Python literal, or the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


_CHOICES = {
    "method": METHODS,
    "model.head": ("regression", "classification", None),
    "model.conv_algorithm": ALGORITHMS,
    "bins.kind": ("zhang", "grid"),
    "loss.pixel": ("l1", "l2", "huber"),
    "loss.gan": ("bce", "lsgan"),
    "optim.optimizer": ("adam", "adamw"),
    "optim.schedule": ("constant", "warmup_cosine", "step", "linear_decay"),
    "train.best_mode": ("min", "max"),
    "train.compute_dtype": ("float32", "bfloat16"),
    "train.remat": ("none", "blocks"),
    "hints.placement": PLACEMENTS,
}
_FREE_GROUPS = ("model.options",)  # backbone keyword options: checked by build_model itself


def _unknown_fields(config, default, prefix="") -> list[str]:
    unknown = []
    for key in config.keys():
        path = f"{prefix}{key}"
        if key not in default:
            unknown.append(path)
        elif isinstance(config[key], ml_collections.ConfigDict) and path not in _FREE_GROUPS:
            unknown += _unknown_fields(config[key], default[key], path + ".")
    return unknown


def eval_size(config) -> int:
    """The side validation, colorize and evaluate run the model at: ``data.resize_size``, or the
    crop size when that is None."""
    return config.data.get("resize_size") or config.data.crop_size


def validate(config: ml_collections.ConfigDict, device_count: int, process_count: int = 1) -> None:
    """Refuse a bad config with a ValueError naming the field, before anything is built."""
    unknown = _unknown_fields(config, get_config())
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(unknown)} (see colorjax/training/config.py)")
    for path, choices in _CHOICES.items():
        group, _, name = path.rpartition(".")
        value = (config[group] if group else config)[name]
        if value not in choices:
            raise ValueError(f"config {path} = {value!r}: must be one of {', '.join(str(c) for c in choices if c is not None)}")
    head = config.model.get("head")
    if head is not None and head != HEAD_OF_METHOD[config.method]:
        raise ValueError(f"method {config.method!r} needs model.head = {HEAD_OF_METHOD[config.method]!r} "
                         f"(the method implies the head: leave model.head unset)")
    for name in ("batch_size", "eval_batch_size"):
        size = config.data[name]
        if size <= 0 or size % device_count or size % process_count:
            raise ValueError(
                f"config data.{name} = {size} must be a positive multiple of the device count "
                f"({device_count}) and of the process count ({process_count})"
            )
    resize = config.data.get("resize_size")
    if resize is not None and resize < config.data.crop_size:
        raise ValueError(f"config data.resize_size = {resize} must be >= data.crop_size ({config.data.crop_size}) "
                         f"or None (the crop size)")
    if not config.data.cache_mb >= 0:
        raise ValueError(f"config data.cache_mb = {config.data.cache_mb} must be >= 0 (0: no cache)")
    if config.loss.perceptual_weight > 0 and not (config.loss.vgg_checkpoint and os.path.isdir(config.loss.vgg_checkpoint)):
        raise ValueError(
            f"config loss.perceptual_weight > 0 needs loss.vgg_checkpoint, a directory of converted VGG16 "
            f"weights (got {config.loss.vgg_checkpoint!r}): run `colorjax convert vgg16 vgg16-397923af.pth "
            f"--out DIR` (torchvision's weights), or set loss.perceptual_weight=0"
        )
    if config.method != "nogan" and config.train.num_steps <= 0:
        raise ValueError(f"config train.num_steps = {config.train.num_steps} must be positive")
    _check_step_counts(config)
    _check_train_counts(config.train)
    for name, rate in (("optim.learning_rate", config.optim.learning_rate),
                       ("discriminator.learning_rate", config.discriminator.learning_rate),
                       ("nogan.gan_learning_rate", config.nogan.gan_learning_rate),
                       ("nogan.critic_learning_rate", config.nogan.critic_learning_rate)):
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate >= 0):
            raise ValueError(f"config {name} = {rate!r} must be a finite number >= 0")
    if config.optim.schedule == "step" and config.optim.decay_step <= 0:
        raise ValueError("config optim.schedule = 'step' needs optim.decay_step > 0")


def _check_step_counts(config: ml_collections.ConfigDict) -> None:
    """Step counts whole numbers the device's int32 step counter holds (10**23 steps would hang
    before the first one), by :mod:`colorjax.validation`'s rules."""
    from colorjax import validation

    counts = {"train.num_steps": (config.train.num_steps, 0)}
    counts |= {f"nogan.{name}": (config.nogan[name], 0) for name in ("generator_steps", "critic_steps", "gan_steps", "cycles")}
    try:
        for name, (value, minimum) in counts.items():
            validation.count(value, f"config {name}", minimum=minimum, maximum=MAX_STEPS)
        if config.method == "nogan":
            n = config.nogan
            validation.count(n.generator_steps + n.cycles * (n.critic_steps + n.gan_steps),
                             "config nogan's whole schedule (generator_steps + cycles x (critic_steps + gan_steps))",
                             minimum=0, maximum=MAX_STEPS)
    except validation.ArgumentError as error:
        raise ValueError(str(error)) from None


def _check_train_counts(train: ml_collections.ConfigDict) -> None:
    """Step intervals positive (they divide the step), counts non-negative (they size lists)."""
    for name in ("checkpoint_every", "log_every"):
        if train[name] <= 0:
            raise ValueError(f"config train.{name} = {train[name]} must be positive (a number of steps)")
    if train.eval_every < 0:
        raise ValueError(f"config train.eval_every = {train.eval_every} must be >= 0 (0: only at checkpoints)")
    for name in ("keep_checkpoints", "eval_images", "grid_images"):
        if train[name] < 0:
            raise ValueError(f"config train.{name} = {train[name]} must be >= 0")
    if train.keep_checkpoints == 0:
        raise ValueError("config train.keep_checkpoints = 0 would delete every checkpoint: keep at least 1")


def changed_fields(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two config dicts."""
    changed = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed
