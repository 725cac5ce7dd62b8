"""Start a run from a trained model: ``train.init_from``, ``train.reinit``, ``optim.freeze``,
``optim.lr_mults`` and the bins, prior and decoding a fine-tuned run keeps.

``train.init_from`` names a colorjax checkpoint (a training workdir, its ``checkpoints`` folder, or
a ``save_model`` / ``colorjax convert`` folder; ``train.init_step``: a saved step, default the
latest). The new run's model is built from the run's own config; every parameter and BatchNorm
statistic whose path and shape match the checkpoint's is loaded, those matching a ``train.reinit``
pattern keep their fresh initialisation (the idea of big_vision's ``dont_load``), and any other
difference is refused before any work with one message listing every differing array (path,
expected shape, found shape). The optimizer state and the step start fresh: this is not
``--resume``, and the two together are refused.

Patterns are regular expressions matched in full (``re.fullmatch``) against paths such as
``backbone/blocks/0/0/kernel`` or ``head/conv/bias``: every parameter and batch statistic of the
model has one. A pattern that matches nothing is an error (a typo must not freeze or reset nothing).

- ``optim.freeze``: parameters matching a pattern are not updated (optax ``set_to_zero`` in an
  ``optax.multi_transform`` partition, :func:`colorjax.training.optim.make_optimizer`), and the
  running statistics of the BatchNorm layers matching a pattern are kept as loaded
  (``optim.freeze_batch_stats``; False lets them follow the new data).
- ``optim.lr_mults``: ``"PATTERN=MULT"`` strings; the first pattern a parameter matches scales its
  learning rate (a frozen parameter stays frozen).

Starting one backbone from another (``train.init_rename``, a name of :data:`RENAMINGS`): the
checkpoint's paths are renamed to the run's before anything is compared. ``eccv16_to_siggraph17``
starts a SIGGRAPH17 from an ECCV16 run where the layers match (Zhang, Zhu et al. 2017 train the
user-guided network from the automatic one): blocks 1-7, their BatchNorms, block 8 and the
output layer load (a stride-2 ECCV16 conv is the same kernel as SIGGRAPH17's conv after its
subsampling); the first conv gains the hint channels (a, b, mask) with zero weights and the block-8
shortcut starts at zero, so in evaluation the started network computes the ECCV16 model's function
until it learns to use the hints; BatchNorm 8 and the full-resolution decoder (blocks 9-10, a
regression SIGGRAPH17's) keep their fresh initialisation. A classification ECCV16 keeps its bins.

Bins, prior and decoding (a classification head that is not re-initialised keeps the checkpoint's
bins, so its outputs keep their meaning): the colour prior is the checkpoint's, unless
``prior.recount`` counts it on the new training data with those bins, or ``prior.path`` names one
with the same bins (anything else is refused: a prior of other bins or another domain must be
chosen, as Zhang et al.'s issue #76 showed, where a Places prior turned outputs green and blue). The
checkpoint's decoding (temperature, rebalancing correction) carries over unless
``train.init_decoding`` is False. Where the run started, what was loaded, re-initialised and frozen
and which prior it uses are written to ``WORKDIR/init_from.json``; the saved training config holds
the resolved checkpoint folder and step.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from colorjax import checkpointing
from colorjax.bins import zhang_bins
from colorjax.training import config as config_lib

RECORD = "init_from.json"  # written into the new run's workdir
FROZEN = "frozen"  # the optimizer partition that is not updated
# Names of the arrays a layer learns or keeps (convolutions, BatchNorm, PReLU slopes): a checkpoint
# array of this name that the run's model lacks is a difference, not something to drop silently.
LAYER_ARRAYS = ("kernel", "bias", "scale", "mean", "var", "slope")


@dataclasses.dataclass(frozen=True)
class Renaming:
    """How a checkpoint of one backbone starts a run of another: ``rules`` rename checkpoint paths
    (``(regular expression, template)``, the first that matches the whole path, ``re.Match.expand``);
    ``widen``: run kernels with more input channels than the checkpoint's, whose extra channels start
    at zero; ``zero``: run arrays the checkpoint lacks that start at zero; ``fresh``: run arrays the
    checkpoint lacks that keep their initialisation (``widen``, ``zero`` and ``fresh`` are patterns
    that may match nothing: a regression and a classification SIGGRAPH17 differ in their layers)."""

    rules: tuple[tuple[str, str], ...]
    widen: tuple[str, ...] = ()
    zero: tuple[str, ...] = ()
    fresh: tuple[str, ...] = ()

    def apply(self, arrays: dict) -> dict:
        renamed = {}
        for path, array in arrays.items():
            for pattern, template in self.rules:
                if m := re.fullmatch(pattern, path):
                    path = m.expand(template)
                    break
            renamed[path] = array
        return renamed


def _eccv16_to_siggraph17() -> Renaming:
    encoder = [(f"backbone/{old}/{i}/(.*)", f"backbone/{new}{i + 1}/\\1")
               for i in range(7) for old, new in (("blocks", "model"), ("block_acts", "acts"), ("norms", "norm"))]
    return Renaming(
        rules=(*encoder, ("backbone/up/(.*)", "backbone/model8up/\\1"), ("backbone/up_convs/(.*)", "backbone/model8/\\1"),
               ("backbone/up_acts/(.*)", "backbone/acts8/\\1"), ("backbone/out/(.*)", "backbone/model_class/\\1")),
        widen=("backbone/model1/0/kernel",),
        zero=("backbone/model3short8/(kernel|bias)",),
        fresh=("backbone/norm(8|9)/.*", "backbone/model(9|10)(up)?/.*", "backbone/model(1|2)short(9|10)/.*",
               "backbone/acts(9|10)/.*", "backbone/model_out/.*"))


RENAMINGS = {"eccv16_to_siggraph17": _eccv16_to_siggraph17()}


class InitFromError(ValueError):
    """A checkpoint, a pattern or a combination that cannot start the run (before any work)."""


# ---- paths and patterns ----------------------------------------------------------------------------

def path_string(key_path) -> str:
    """``backbone/blocks/0/0/kernel`` from a jax key path or a tuple of keys (nnx's ``value`` dropped)."""
    parts = []
    for key in key_path:
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                key = getattr(key, attribute)
                break
        parts.append(str(key))
    if parts and parts[-1] == "value":
        parts.pop()
    return "/".join(parts)


def model_arrays(module_or_state, kinds=(nnx.Param, nnx.BatchStat)) -> dict[str, tuple]:
    """``{path: shape}`` of a module's (or an nnx state's) parameters and batch statistics."""
    state = module_or_state if isinstance(module_or_state, nnx.State) else nnx.state(module_or_state)
    return {path_string(path): tuple(np.shape(var.get_value())) for path, var in nnx.to_flat_state(state)
            if isinstance(var, kinds)}


def compile_patterns(patterns, field: str) -> list[re.Pattern]:
    """The regular expressions of config field ``field``; a clear error for one that does not compile."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    compiled = []
    for pattern in patterns or ():
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise InitFromError(f"config {field}: pattern {pattern!r} is not a regular expression ({error})") from None
    return compiled


def matches(patterns, path: str) -> bool:
    """Whether any of ``patterns`` (compiled or strings) matches the whole ``path``."""
    return any(re.fullmatch(p, path) for p in patterns)


def require_matches(patterns: list[re.Pattern], paths, field: str) -> None:
    """Refuse a pattern that matches no path (naming it and a few paths it could have meant)."""
    paths = sorted(paths)
    for pattern in patterns:
        if not any(pattern.fullmatch(p) for p in paths):
            examples = ", ".join(paths[:4] + ["..."] + paths[-2:]) if len(paths) > 6 else ", ".join(paths)
            raise InitFromError(f"config {field}: pattern {pattern.pattern!r} matches no parameter or batch statistic "
                                f"of the model (patterns match whole paths such as {examples})")


def lr_multipliers(optim: ml_collections.ConfigDict) -> list[tuple[re.Pattern, float]]:
    """``optim.lr_mults`` as ``[(pattern, multiplier)]``; a clear error for a malformed entry."""
    pairs = []
    for item in optim.get("lr_mults", ()) or ():
        pattern, sep, text = str(item).rpartition("=")
        try:
            mult = float(text)
        except ValueError:
            mult = float("nan")
        if not sep or not pattern or not (mult >= 0 and np.isfinite(mult)):
            raise InitFromError(f"config optim.lr_mults: {item!r} must be 'PATTERN=MULT' with MULT a finite number >= 0")
        pairs.append((compile_patterns([pattern], "optim.lr_mults")[0], mult))
    return pairs


def parameter_groups(optim: ml_collections.ConfigDict):
    """``(label_fn, {label: learning-rate multiplier})`` for ``optax.multi_transform`` (multiplier 0:
    the frozen partition), or None when the run has no freeze or lr_mults patterns."""
    frozen = compile_patterns(optim.get("freeze", ()), "optim.freeze")
    mults = lr_multipliers(optim)
    if not frozen and not mults:
        return None
    multipliers = {"base": 1.0, FROZEN: 0.0} | {f"lr_mult_{i}": m for i, (_, m) in enumerate(mults)}

    def label(path: str) -> str:
        if matches(frozen, path):
            return FROZEN
        return next((f"lr_mult_{i}" for i, (p, _) in enumerate(mults) if p.fullmatch(path)), "base")

    def label_fn(params):
        return jax.tree_util.tree_map_with_path(lambda path, _: label(path_string(path)), params)

    return label_fn, multipliers


def keep_frozen_statistics(step_fn, optim: ml_collections.ConfigDict, statistic_paths):
    """``step_fn`` whose updated batch statistics (``state["rest"]``) are put back to their values
    before the step wherever they match ``optim.freeze`` (unless ``optim.freeze_batch_stats`` is
    False); ``step_fn`` itself when nothing is frozen."""
    frozen = compile_patterns(optim.get("freeze", ()), "optim.freeze")
    keep = {p for p in statistic_paths if matches(frozen, p)}
    if not keep or not optim.get("freeze_batch_stats", True):
        return step_fn

    def step(state, batch):
        new_state, metrics = step_fn(state, batch)
        rest = jax.tree_util.tree_map_with_path(
            lambda path, old, new: old if path_string(path) in keep else new, state["rest"], new_state["rest"])
        return {**new_state, "rest": rest}, metrics

    return step


# ---- the starting checkpoint ------------------------------------------------------------------------

@dataclasses.dataclass
class StartFrom:
    """A checkpoint read to start a run, and what the run keeps of it."""

    directory: Path
    step: int
    model_config: dict
    prior: object | None
    arrays: dict  # {path: numpy array} of the checkpoint's model item
    reinit: list = dataclasses.field(default_factory=list)  # compiled train.reinit patterns
    renaming: Renaming | None = None  # train.init_rename: applied to ``arrays`` already
    loaded: list = dataclasses.field(default_factory=list)
    reinitialised: list = dataclasses.field(default_factory=list)
    widened: list = dataclasses.field(default_factory=list)  # loaded into the first input channels
    zeroed: list = dataclasses.field(default_factory=list)
    prior_source: str = ""

    @property
    def head_reinitialised(self) -> bool:
        """Whether ``train.reinit`` resets the classifier's output layer (a parameter whose last
        axis has one entry per bin of the checkpoint): then the run's bins come from its config."""
        if self.model_config.get("head") != "classification":
            return False
        bins = len(self.model_config.get("centres") or zhang_bins())
        return any(matches(self.reinit, p) and np.shape(a)[-1:] == (bins,) for p, a in self.arrays.items()
                   if p.rpartition("/")[2] in ("kernel", "bias"))

    def centres(self, config):
        """The new run's classification bins: the checkpoint's (None: the model's default, Zhang's
        313) unless the head is re-initialised or the checkpoint is not a classifier."""
        if config_lib.model_head(config) != "classification" or self.head_reinitialised:
            return None
        if self.model_config.get("head") != "classification":
            return None
        return self.model_config.get("centres")

    def plan(self, expected: dict[str, tuple]) -> None:
        """Decide what loads; refuse every other difference in one message."""
        found = {p: tuple(np.shape(a)) for p, a in self.arrays.items()}
        differing, self.loaded, self.reinitialised, self.widened, self.zeroed = [], [], [], [], []
        r = self.renaming or Renaming(rules=())
        for path, shape in sorted(expected.items()):
            have = found.get(path)
            if matches(self.reinit, path):
                self.reinitialised.append(path)
            elif have == shape:
                self.loaded.append(path)
            elif (have is not None and matches(r.widen, path) and len(have) == len(shape) >= 2
                  and have[:-2] + have[-1:] == shape[:-2] + shape[-1:] and have[-2] < shape[-2]):
                extra = np.zeros(shape[:-2] + (shape[-2] - have[-2], shape[-1]), self.arrays[path].dtype)
                self.arrays[path] = np.concatenate([self.arrays[path], extra], axis=-2)
                self.loaded.append(path)
                self.widened.append(path)
            elif have is None and matches(r.zero, path):
                self.zeroed.append(path)
            elif have is None and matches(r.fresh, path):
                self.reinitialised.append(path)
            else:
                differing.append(f"{path}: expected {shape}, found {'nothing' if have is None else have}")
        for path, shape in sorted(found.items()):
            if path not in expected and not matches(self.reinit, path) and _is_array_of_model(path):
                differing.append(f"{path}: expected nothing, found {shape}")
        if differing:
            raise InitFromError(
                f"{self.directory}/{self.step}: {len(differing)} parameter(s) or batch statistic(s) differ from the run's "
                f"model (another backbone, width or head? re-initialise parts with train.reinit): " + "; ".join(differing))
        if not self.loaded:
            raise InitFromError(f"{self.directory}/{self.step}: train.reinit re-initialises every array; nothing would load")

    def load_into(self, state: dict, sharding) -> dict:
        """``state`` (fresh, replicated) with the planned arrays replaced by the checkpoint's."""
        loaded, zeroed = set(self.loaded), set(self.zeroed)

        def put(path, fresh):
            name = path_string(path)
            if name in zeroed:
                return jax.device_put(np.zeros(fresh.shape, fresh.dtype), sharding)
            if name not in loaded:
                return fresh
            return jax.device_put(np.asarray(self.arrays[name], dtype=fresh.dtype), sharding)

        return {**state, "params": jax.tree_util.tree_map_with_path(put, state["params"]),
                "rest": jax.tree_util.tree_map_with_path(put, state["rest"])}

    def bins_and_prior(self, config, centres, count):
        """``(centres, prior)`` of the run: ``count(centres)`` counts them on the new training data
        (the fresh-run path); the checkpoint's prior is kept unless told otherwise."""
        p = config.prior
        if self.head_reinitialised or config_lib.model_head(config) != "classification":
            self.prior_source = "as a fresh run (the head is re-initialised or not a classifier)"
            if self.prior is not None and not p.recount and not p.path:
                self.prior_source = "the checkpoint's"
                return None, self.prior
            return count(None)
        # The head's bins: the checkpoint's, or the model's default (Zhang's 313) when it saved none.
        want = np.asarray(centres if centres is not None else zhang_bins(), np.float32)
        if p.path:
            _, prior = count(None)
            if len(prior.centres) != len(want) or not np.allclose(prior.centres, want):
                raise InitFromError(f"config prior.path = {p.path}: its {len(prior.centres)} bins are not the "
                                    f"checkpoint's {len(want)} (a prior of other bins would mis-weight every pixel)")
            self.prior_source = f"loaded from {p.path}"
            return centres, prior
        if p.recount or self.prior is None:
            self.prior_source = ("recounted on the new training data" if p.recount
                                 else "counted on the new training data (the checkpoint holds none)")
            return count(want)
        if len(self.prior.centres) != len(want) or not np.allclose(self.prior.centres, want):
            raise InitFromError(f"{self.directory}/{self.step}: its prior's {len(self.prior.centres)} bins are not its "
                                f"head's {len(want)}: set prior.recount=true to count one on the new data")
        self.prior_source = "the checkpoint's"
        return centres, self.prior

    def record(self, workdir: Path, config) -> dict:
        """Write ``init_from.json`` (where the run started and what it kept) and return it."""
        frozen = list(config.optim.get("freeze", ()) or ())
        record = {"directory": str(self.directory), "step": self.step, "loaded": len(self.loaded),
                  "reinitialised": self.reinitialised, "renaming": config.train.get("init_rename") or None,
                  "widened": self.widened, "zeroed": self.zeroed, "reinit_patterns": [p.pattern for p in self.reinit],
                  "freeze_patterns": frozen, "freeze_batch_stats": bool(config.optim.get("freeze_batch_stats", True)),
                  "lr_mults": list(config.optim.get("lr_mults", ()) or ()), "prior": self.prior_source,
                  "decoding": {"temperature": config.bins.temperature, "prior_correction": config.bins.prior_correction,
                               "from_checkpoint": bool(config.train.init_decoding)},
                  "source_model_config": {k: v for k, v in self.model_config.items() if k != "centres"}}
        if jax.process_index() == 0:
            (workdir / RECORD).write_text(json.dumps(record, indent=1))
        return record


def _is_array_of_model(path: str) -> bool:
    """Whether a checkpoint path names a layer's parameter or batch statistic (not an RNG key or
    count, fixed bin centres or the release's projection, which the run's own config decides)."""
    return path.rpartition("/")[2] in LAYER_ARRAYS


def read(path, step: int | None = None) -> StartFrom:
    """The model arrays, config and prior of checkpoint ``path`` at ``step`` (default the latest);
    an :class:`InitFromError` naming the folder when it is not a readable colorjax checkpoint."""
    try:
        directory = checkpointing.checkpoint_folder(path)
    except FileNotFoundError:
        raise InitFromError(f"config train.init_from = {path}: no such checkpoint folder") from None
    if not directory.is_dir():
        raise InitFromError(f"config train.init_from = {directory}: not a colorjax checkpoint (a file, not a folder)")
    with checkpointing.checkpoint_manager(directory, read_only=True) as manager:
        try:
            step = checkpointing.resolve_step(manager, directory, step)
        except FileNotFoundError as error:
            raise InitFromError(f"config train.init_from: {error}") from None
        items = checkpointing.saved_items(directory, step)
        if checkpointing.MODEL not in items or checkpointing.CONFIG not in items:
            raise InitFromError(f"config train.init_from = {directory}/{step}: not a colorjax checkpoint "
                                f"(needs items 'model' and 'config')")
        try:
            checkpointing.verify_manifest(directory / str(step))
            model_config, prior = checkpointing.restore_config_and_prior(manager, step)
            pure = manager.restore(step, args=ocp.args.Composite(
                **{checkpointing.MODEL: ocp.args.StandardRestore()}))[checkpointing.MODEL]
        except Exception as error:  # noqa: BLE001 - orbax / tensorstore raise many kinds
            raise InitFromError(f"config train.init_from = {directory}/{step}: cannot be read: "
                                f"{checkpointing._first_line(error)}") from None
    arrays = {path_string(p): np.asarray(a) for p, a in jax.tree_util.tree_leaves_with_path(pure)
              if not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)}  # RNG keys start fresh
    return StartFrom(Path(str(directory)), step, model_config, prior, arrays)


def prepare(config: ml_collections.ConfigDict, *, resume: bool) -> tuple[ml_collections.ConfigDict, StartFrom | None]:
    """``(config, start)``: the run's config with the checkpoint's folder, step and (by default)
    decoding written in, and the checkpoint read; ``(config, None)`` when ``train.init_from`` is
    unset. Refuses ``--resume`` together with ``train.init_from``."""
    t = config.train
    if not t.get("init_from"):
        if t.get("reinit") or t.get("init_rename"):
            raise InitFromError("config train.reinit and train.init_rename need train.init_from (there is nothing to "
                                "start from)")
        return config, None
    if resume:
        raise InitFromError(f"config train.init_from = {t.init_from} together with --resume: --resume continues this "
                            f"workdir's own run exactly; train.init_from starts a new one (to continue a fine-tuning "
                            f"run, pass --resume with --config.train.init_from=none)")
    start = read(t.init_from, t.get("init_step"))
    start.reinit = compile_patterns(t.get("reinit", ()), "train.reinit")
    if name := t.get("init_rename"):
        if name not in RENAMINGS:
            raise InitFromError(f"config train.init_rename = {name!r}: unknown; known: {sorted(RENAMINGS)}")
        start.renaming = RENAMINGS[name]
        start.arrays = start.renaming.apply(start.arrays)
    config = ml_collections.ConfigDict(config.to_dict())
    config.train.init_from, config.train.init_step = str(start.directory), start.step
    if t.init_decoding:
        saved = checkpointing.inference_defaults(start.model_config)
        for name in ("temperature", "prior_correction"):
            if saved[name] is not None:
                config.bins[name] = float(saved[name])
    return config, start


def check_patterns(config, model_fn, start: StartFrom | None) -> None:
    """Every ``train.reinit``, ``optim.freeze`` and ``optim.lr_mults`` pattern must match an array of
    the run's model (``model_fn`` built abstractly); the checkpoint's arrays must fit it. Before any
    work; a run with no start and no pattern builds nothing here."""
    if start is None and not config.optim.get("freeze", ()) and not config.optim.get("lr_mults", ()):
        return
    abstract_model = nnx.eval_shape(model_fn)
    arrays = model_arrays(abstract_model)
    require_matches(compile_patterns(config.optim.get("freeze", ()), "optim.freeze"), arrays, "optim.freeze")
    params = model_arrays(abstract_model, (nnx.Param,))
    require_matches([p for p, _ in lr_multipliers(config.optim)], params, "optim.lr_mults")
    if start is not None:
        require_matches(start.reinit, arrays, "train.reinit")
        start.plan(arrays)


def statistic_paths(model_fn) -> list[str]:
    """Paths of the batch statistics of the model ``model_fn`` builds."""
    return list(model_arrays(nnx.eval_shape(model_fn), (nnx.BatchStat,)))

