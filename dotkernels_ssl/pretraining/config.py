"""Typed configuration of a pretraining run: dataclasses, named presets, YAML files and command-line overrides.

A :class:`Config` has six sections, each a dataclass: :class:`DataConfig` (``data.*``), :class:`ModelConfig`
(``model.*``), :class:`LossConfig` (``loss.*``), :class:`OptimConfig` (``optim.*``), :class:`RunConfig` (``run.*``,
including the distributed settings) and :class:`EvalConfig` (``eval.*``).

Resolution order (later wins):

1. the dataclass defaults;
2. the named preset (:data:`~dotkernels_ssl.pretraining.presets.PRESETS`, ``--preset``; ``fashion-mnist-cpu``
   by default), then the preset's settings for the chosen method
   (:data:`~dotkernels_ssl.pretraining.presets.METHOD_DEFAULTS`: the loss preset, the projector);
3. a YAML file (``--config file.yaml``), nested (``optim: {base_lr: 0.3}``) or dotted (``optim.base_lr: 0.3``);
4. command-line overrides: dotted (``--optim.base_lr 0.3``, ``--loss.options.invariance_weight 100``) or the flat
   aliases of :data:`FLAT_ALIASES` (``--lr 0.3``, ``--epochs 5``, ``--batch-size 512``, ``--quiet``...).

The sections are OmegaConf structured configs: OmegaConf converts and validates every value against the field's
type (booleans ``true/false/yes/no/on/off/1/0``, numbers, tuples of the right length); the command line adds
``"none"`` for None in optional fields and tuples written ``"64,128,256,256"``; ``loss.options.*`` values are read
as YAML scalars.
Unknown keys, wrong types, unknown methods and kernel strings that :func:`dotkernels.parse_kernel` rejects raise
:class:`ConfigError` (a ``ValueError``) before anything is written. The module imports neither torch nor the
losses, so the command line answers ``--help`` and configuration errors at once.

Examples
--------
>>> cfg = parse_config(["--preset", "fashion-mnist-cpu", "--method", "vicreg", "--epochs", "2"])
>>> cfg.loss.method, cfg.optim.epochs, cfg.model.backbone
('vicreg', 2, 'convnet')
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import tempfile
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dotkernels import parse_kernel

from .presets import (
    BACKBONES,
    DATA_HINTS,
    DATASET_NAMES,
    DEFAULT_PRESET,
    KERNEL_METHODS,
    METHOD_DEFAULTS,
    METHODS,
    PRESETS,
    RECIPE_NAMES,
)

__all__ = [
    "FLAT_ALIASES",
    "FLAT_SWITCHES",
    "HELP",
    "RUN_FILES",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "build_config",
    "check_data_dir",
    "check_device",
    "check_kernel",
    "check_run_folder",
    "check_writable",
    "config_from_dict",
    "config_to_dict",
    "is_run_folder",
    "load_yaml",
    "parse_config",
    "parse_projector_spec",
    "save_yaml",
    "set_option",
    "usage",
]


class ConfigError(ValueError):
    """An invalid configuration: unknown key, bad value, unknown method or kernel, inconsistent settings."""


# --------------------------------------------------------------------------------------------------------------
# Sections


@dataclass
class DataConfig:
    """Data set, splits and augmentations.

    Attributes
    ----------
    dataset
        A name of :data:`dotkernels_ssl.data.DATASET_NAMES` (``"imagefolder:PATH"`` also works).
    data_dir
        The folder holding the data set, and the only one looked in when set (it must exist and hold the
        data); unset: ``$DOTKERNELS_DATA``, then ``/usr/share/datasets``.
    train_split
        The pretraining split: ``"train"`` (the official training set minus the validation split), ``"trainval"``,
        or for STL-10 ``"train+unlabeled"``/``"unlabeled"``.
    val_fraction, split_seed
        The validation split carved out of the training set (stratified): the kNN monitor and every
        hyper-parameter choice of the evaluation use it, never the test set.
    image_size
        Resize stored images to this side (in-memory data sets) or the output side of folder data sets.
    crop_size
        Side of the augmented views (default: the image side).
    folder_resize
        Folder data sets: shorter side before the centre crop to ``image_size``.
    per_class
        Keep only the first ``per_class`` training images per class (ImageNet-20%: 260).
    limit
        Keep only the first ``limit`` images of the pretraining split (quick runs and tests).
    eval_limit
        Keep only the first ``eval_limit`` images of each labelled evaluation split (train bank, val, test).
    recipe
        Augmentation recipe (:data:`dotkernels_ssl.augment.RECIPES`: ``vicreg``, ``simclr``, ``auh``, ``small``),
        or ``"none"``: view 1 is the image and view 2 its horizontal mirror, with no randomness (for tests and
        exactness checks).
    crop_scale
        Overrides the recipe's RandomResizedCrop area range.
    local_crops, local_size
        Multi-crop: number and side of the extra small views (0: two views).
    resident
        In-memory data sets: copy the whole training set to the device once.
    num_workers
        DataLoader workers for folder data sets.
    """

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_split: str = "train"
    val_fraction: float = 0.1
    split_seed: int = 0
    image_size: int | None = None
    crop_size: int | None = None
    folder_resize: int | None = None
    per_class: int | None = None
    limit: int | None = None
    eval_limit: int | None = None
    recipe: str = "small"
    crop_scale: tuple[float, float] | None = None
    local_crops: int = 0
    local_size: int | None = None
    resident: bool = True
    num_workers: int = 4


@dataclass
class ModelConfig:
    """Backbone and projector.

    Attributes
    ----------
    backbone
        ``"convnet"``, ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
    convnet_widths
        Channels of the ConvNet's four blocks.
    convnet_pool
        ConvNet features: ``"avg"`` (global average pooling, ``widths[-1]`` features) or ``"flatten"`` (the last
        feature map flattened, e.g. 3 x 3 x ``widths[-1]`` for 28 x 28 images: it keeps the spatial layout, which
        matters for small centred images such as Fashion-MNIST).
    small_image_stem
        ResNets: 3x3 stride-1 first convolution, no max-pool (CIFAR stem).
    zero_init_residual
        ResNets: zero-initialise the last BN gamma of each residual block.
    projector
        Projector widths, e.g. ``"8192-8192-8192"`` (Linear-BN-ReLU hidden layers, last Linear without bias).
    sync_bn
        Convert BatchNorm to SyncBatchNorm when distributed (statistics over the global batch).
    concat_views
        Forward the views of a batch in one call (one BN statistic over both views) instead of one call per view
        (the papers' convention, the default).
    """

    backbone: str = "convnet"
    convnet_widths: tuple[int, ...] = (64, 128, 256, 256)
    convnet_pool: str = "avg"
    small_image_stem: bool = False
    zero_init_residual: bool = True
    projector: str = "8192-8192-8192"
    sync_bn: bool = True
    concat_views: bool = False


@dataclass
class LossConfig:
    """The self-supervised loss: ``dotkernels_ssl.losses.build_loss(method, kernel=..., preset=..., **options)``.

    Attributes
    ----------
    method
        One of :data:`~dotkernels_ssl.pretraining.presets.METHODS`.
    kernel
        Kernel of ``sfrik``/``kernel`` (any :func:`dotkernels.parse_kernel` string, e.g. ``"gaussian:gamma=2.5"``,
        ``"sfrik:1,40,40"``, ``"heat:time=0.01"``); None is the method's default (the SFRIK kernel). It is also the
        kernel of the MMD collapse monitor (the SFRIK kernel for the other methods).
    preset
        A preset name of ``dotkernels_ssl.losses.PRESETS[method]`` (the papers' coefficients), or None for the
        loss's defaults; set by the run preset.
    options
        Keyword arguments of the loss over the preset: e.g. ``invariance_weight``, ``uniformity_weight``
        (sfrik, auh), ``gamma`` (auh), ``variance_weight``, ``covariance_weight`` (vicreg),
        ``redundancy_weight`` (barlow), ``temperature`` (simclr).
    """

    method: str = "sfrik"
    kernel: str | None = None
    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes
    ----------
    optimizer
        ``"lars"`` (the paper's), ``"sgd"`` or ``"adamw"``; biases and norm parameters are excluded from weight
        decay (and from the LARS adaptation).
    batch_size
        Global batch size (split evenly over the processes).
    epochs
        Number of epochs (the schedule spans them).
    base_lr
        Base learning rate; the peak is ``base_lr * batch_size / 256`` when ``scale_lr``.
    scale_lr
        Apply the linear scaling rule.
    weight_decay, momentum, eta
        Weight decay, momentum, LARS trust coefficient.
    warmup_epochs
        Linear warm-up length in epochs (may be fractional; capped at half of the run so that short runs still
        anneal, :func:`dotkernels_ssl.optim.warmup_steps`), then cosine decay, set every step.
    final_lr_ratio
        Final learning rate as a fraction of the peak.
    grad_clip
        Clip the gradient norm to this value (None: no clipping).
    """

    optimizer: str = "lars"
    batch_size: int = 256
    epochs: int = 100
    base_lr: float = 0.3
    scale_lr: bool = True
    weight_decay: float = 1e-6
    momentum: float = 0.9
    eta: float = 0.001
    warmup_epochs: float = 10.0
    final_lr_ratio: float = 0.001
    grad_clip: float | None = None


@dataclass
class RunConfig:
    """Run folder, devices, precision, logging, checkpoints and distribution.

    Attributes
    ----------
    out
        Run folder (default ``runs/<dataset>-<method>``); an existing run folder is resumed.
    seed
        Seed of python, numpy and torch (rank ``r`` adds ``r`` after building the model).
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Under torchrun each
        process takes ``cuda:LOCAL_RANK``.
    amp
        Mixed precision: ``"off"``, ``"bf16"``, ``"fp16"`` (with a gradient scaler) or ``"auto"`` (bf16 on a GPU
        that supports it, fp16 on other GPUs, bf16 on a CPU with bfloat16 instructions, else off).
    compile
        ``torch.compile`` the model.
    channels_last
        Channels-last memory format for the model and the images.
    quiet
        No progress bar.
    threads
        ``torch.set_num_threads`` (None: torch's default).
    log_every
        Write a step row to the CSV and TensorBoard every ``log_every`` steps.
    eval_every
        Run the monitors (kNN on the validation split, collapse monitors) every ``eval_every`` epochs (0: never;
        the last epoch is always monitored when > 0).
    checkpoint_every
        Besides ``last.pt`` (every epoch), keep ``epoch-XXXX.pt`` every ``checkpoint_every`` epochs (0: never).
    checkpoint_minutes
        Also write ``last.pt`` during an epoch every ``checkpoint_minutes`` minutes of training (0: only at the
        end of each epoch and when the run is interrupted by SIGINT or SIGTERM).
    stop_after
        Stop this invocation after this many epochs in total (the schedule still spans ``optim.epochs``);
        resuming the run folder continues it.
    final_eval
        Evaluate the backbone at the end (kNN, linear probe, logistic regression) and write ``eval.json``.
    tensorboard
        Write TensorBoard events.
    dist_backend
        ``"auto"`` (nccl on GPU, gloo on CPU), ``"nccl"`` or ``"gloo"``.
    dist_timeout_s
        Timeout of the collectives.
    """

    out: str | None = None
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    compile: bool = False
    channels_last: bool = False
    quiet: bool = False
    threads: int | None = None
    log_every: int = 1
    eval_every: int = 1
    checkpoint_every: int = 0
    checkpoint_minutes: float = 5.0
    stop_after: int | None = None
    final_eval: bool = True
    tensorboard: bool = True
    dist_backend: str = "auto"
    dist_timeout_s: int = 1800


@dataclass
class EvalConfig:
    """Monitors and the final evaluation (frozen backbone features).

    Attributes
    ----------
    batch_size
        Batch size of the feature extraction.
    knn_k
        Values of k of the weighted kNN (the best one on the validation split is also reported on test).
    knn_temperatures
        Temperatures T of the votes ``exp(sim / T)``; the final evaluation chooses T together with k on the
        validation split (cosine similarities of backbone features spread less than those of the 128-d embeddings
        T = 0.07 was set for, so their best T is smaller).
    monitor_k, monitor_temperature
        k and T of the per-epoch kNN monitor.
    monitor_bank
        Number of training images in the monitor's kNN bank (None: all).
    monitor_queries
        Number of validation images the monitors use (None: all).
    linear
        Run the linear probe (SGD momentum 0.9, cosine schedule, pre-extracted features).
    linear_epochs, linear_lrs, linear_batch_size, linear_weight_decay, linear_momentum
        The probe's settings; the learning rate is chosen on the validation split among ``linear_lrs``.
    linear_standardize
        Standardise features with the training statistics before the probe (a frozen BatchNorm).
    linear_refit
        Once the learning rate is chosen, also train the probe on the training and validation splits together
        and report its test accuracy (``test_acc_refit_trainval``).
    logreg
        Also fit scikit-learn's logistic regression (the fast variant), C chosen on the validation split.
    logreg_cs
        The values of C tried.
    logreg_max_iter
        Iteration limit of each lbfgs fit (standardised features, the values of C fitted in increasing order, each
        from the previous solution); ``eval.json`` records the iterations and whether every fit converged.
    """

    batch_size: int = 512
    knn_k: tuple[int, ...] = (10, 20, 100, 200)
    knn_temperatures: tuple[float, ...] = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.07)
    monitor_k: int = 20
    monitor_temperature: float = 0.07
    monitor_bank: int | None = 10000
    monitor_queries: int | None = None
    linear: bool = True
    linear_epochs: int = 100
    linear_lrs: tuple[float, ...] = (0.4,)
    linear_batch_size: int = 256
    linear_weight_decay: float = 1e-6
    linear_momentum: float = 0.9
    linear_standardize: bool = True
    linear_refit: bool = True
    logreg: bool = True
    logreg_cs: tuple[float, ...] = (0.1, 1.0, 10.0)
    logreg_max_iter: int = 1000


@dataclass
class Config:
    """A whole run's configuration (see the module docstring)."""

    preset: str | None = DEFAULT_PRESET
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (tuples as lists): what :func:`save_yaml` writes."""
        return config_to_dict(self)

    def validate(self) -> Config:
        """Check the values that can be checked without data or devices; return ``self``.

        Raises
        ------
        ConfigError
            Unknown method, kernel string, backbone, optimizer, precision, recipe, or an impossible value.
        """
        _validate(self)
        return self

    @property
    def out_dir(self) -> Path:
        """The run folder (``run.out``, or ``runs/<dataset>-<method>``)."""
        if self.run.out:
            return Path(self.run.out)
        name = self.data.dataset.replace(":", "_").replace("/", "_")
        return Path("runs") / f"{name}-{self.loss.method}"


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "eval": EvalConfig,
}

# --------------------------------------------------------------------------------------------------------------
# Command-line vocabulary

FLAT_ALIASES: dict[str, str] = {
    "method": "loss.method",
    "kernel": "loss.kernel",
    "epochs": "optim.epochs",
    "batch-size": "optim.batch_size",
    "lr": "optim.base_lr",
    "optimizer": "optim.optimizer",
    "warmup-epochs": "optim.warmup_epochs",
    "weight-decay": "optim.weight_decay",
    "out": "run.out",
    "seed": "run.seed",
    "device": "run.device",
    "amp": "run.amp",
    "threads": "run.threads",
    "eval-every": "run.eval_every",
    "stop-after": "run.stop_after",
    "dist-backend": "run.dist_backend",
    "dataset": "data.dataset",
    "data-dir": "data.data_dir",
    "limit": "data.limit",
    "subset": "data.limit",
    "eval-limit": "data.eval_limit",
    "recipe": "data.recipe",
    "workers": "data.num_workers",
    "backbone": "model.backbone",
    "projector": "model.projector",
    "linear-epochs": "eval.linear_epochs",
}
"""Flat command-line flags and the dotted keys they set (``--lr 0.3`` is ``--optim.base_lr 0.3``)."""

FLAT_SWITCHES: dict[str, tuple[str, Any]] = {
    "quiet": ("run.quiet", True),
    "compile": ("run.compile", True),
    "channels-last": ("run.channels_last", True),
    "no-final-eval": ("run.final_eval", False),
    "no-tensorboard": ("run.tensorboard", False),
    "no-linear": ("eval.linear", False),
    "no-logreg": ("eval.logreg", False),
}
"""Flags without a value and the (dotted key, value) they set."""


# --------------------------------------------------------------------------------------------------------------
# Type conversion


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _cli_value(value: Any, tp: Any) -> Any:
    """The command line's spellings OmegaConf does not read, in its terms.

    ``none`` (or ``null``, or nothing) for an optional field, ``64,128,256`` for a tuple, an integral float
    (``2.0`` in a YAML file) for an int; everything else is OmegaConf's to convert and validate.
    """
    args = typing.get_args(tp)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), tp) if optional else tp
    if isinstance(value, str) and optional and value.strip().lower() in ("none", "null", "~", ""):
        return None
    if typing.get_origin(inner) is tuple:
        if isinstance(value, str):
            return [p.strip() for p in value.strip().strip("()[]").replace(";", ",").split(",") if p.strip()]
        if isinstance(value, (int, float)):
            return [value]
    if inner is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _yaml_scalar(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


# --------------------------------------------------------------------------------------------------------------
# dict <-> Config


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Nested plain dict of a :class:`Config` (tuples become lists), YAML- and JSON-serialisable."""
    out: dict[str, Any] = {"preset": cfg.preset}
    for name in SECTIONS:
        section = getattr(cfg, name)
        out[name] = {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested mapping to dotted keys; ``loss.options`` stays a mapping unless written dotted."""
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key != "loss.options" and (key in SECTIONS or prefix == ""):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


# Keys of earlier versions, still read (stored run configurations, YAML files) under their current name.
_RENAMED_KEYS = {"eval.knn_temperature": "eval.knn_temperatures"}


def _set(node: DictConfig, key: str, value: Any) -> None:
    """Set the dotted ``key`` of a structured configuration; OmegaConf converts and validates the value."""
    key = key.strip().replace("-", "_") if key.count(".") <= 1 else key.strip()
    key = _RENAMED_KEYS.get(key, key)
    if key == "preset":
        node.preset = None if value is None else str(value)
        return
    section_name, _, rest = key.partition(".")
    if section_name not in SECTIONS or not rest:
        raise ConfigError(
            f"unknown configuration key {key!r}; keys look like 'optim.base_lr' with a section among "
            f"{', '.join(SECTIONS)}"
        )
    types_ = _section_types(SECTIONS[section_name])
    if section_name == "loss" and rest.startswith("options."):
        opt = rest[len("options.") :]
        if not opt:
            raise ConfigError(f"empty loss option name in {key!r}")
        node.loss.options[opt] = _yaml_scalar(value)
        return
    rest = rest.replace("-", "_")
    if rest not in types_:
        known = ", ".join(f"{section_name}.{n}" for n in types_)
        raise ConfigError(f"unknown configuration key {key!r}; the {section_name} section has {known}")
    if section_name == "loss" and rest == "options":
        value = _yaml_scalar(value)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise ConfigError(f"bad value for {key}: {value!r} (not a mapping)")
        value = {**OmegaConf.to_container(node.loss.options), **{str(k): v for k, v in value.items()}}
    try:
        OmegaConf.update(node, f"{section_name}.{rest}", _cli_value(value, types_[rest]), merge=False)
    except OmegaConfBaseException as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"bad value for {key}: {value!r} ({why})") from None


def _resolved(node: DictConfig) -> Config:
    """The :class:`Config` of a structured configuration."""
    cfg = OmegaConf.to_object(node)
    assert isinstance(cfg, Config)
    cfg.loss.options = {str(k): v for k, v in cfg.loss.options.items()}
    return cfg


def set_option(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` converted to the field's type (by OmegaConf).

    Parameters
    ----------
    cfg
        The configuration, changed in place.
    key
        A dotted key, ``"optim.base_lr"``, ``"loss.options.NAME"`` or ``"preset"``.
    value
        The value, or its command-line spelling (``"0.3"``, ``"none"``, ``"64,128"``).

    Raises
    ------
    ConfigError
        Unknown key, or a value the field's type does not take.
    """
    node = OmegaConf.structured(cfg)
    _set(node, key, value)
    new = _resolved(node)
    cfg.preset = new.preset
    for name in SECTIONS:
        setattr(cfg, name, getattr(new, name))


def config_from_dict(d: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a nested or dotted mapping (no preset applied: the values are taken as is)."""
    node = OmegaConf.structured(Config(preset=None))
    for key, value in _flatten(d).items():
        _set(node, key, value)
    return _resolved(node)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML configuration file into a mapping (empty file: empty mapping)."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {str(path)!r} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration file must hold a mapping, got {type(data).__name__}")
    return data


def save_yaml(cfg: Config, path: str | os.PathLike) -> None:
    """Write the resolved configuration as YAML (atomically: temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        yaml.safe_dump(config_to_dict(cfg), f, sort_keys=False)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------
# Building


def build_config(
    preset: str | None = DEFAULT_PRESET,
    overrides: dict[str, Any] | None = None,
    yaml_file: str | os.PathLike | None = None,
    *,
    validate: bool = True,
) -> Config:
    """Resolve a configuration: defaults, preset, the preset's method defaults, YAML file, then overrides.

    Parameters
    ----------
    preset
        A name of :data:`PRESETS`, or None for the plain dataclass defaults. A ``preset`` key in the YAML file or
        in ``overrides`` takes precedence.
    overrides
        Dotted keys (``"optim.base_lr"``) or nested sections and their values (strings are converted).
    yaml_file
        A YAML file of the same form.
    validate
        Run :meth:`Config.validate`.

    Raises
    ------
    ConfigError
        Unknown preset or key, bad value; and what :meth:`Config.validate` rejects.
    """
    file_items = _flatten(load_yaml(yaml_file)) if yaml_file is not None else {}
    cli_items = _flatten(dict(overrides or {}))
    for items in (file_items, cli_items):
        if "preset" in items:
            preset = items.pop("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    node = OmegaConf.structured(Config(preset=preset))
    for key, value in PRESETS[preset].items() if preset is not None else ():
        _set(node, key, value)
    # The method decides the preset's method defaults: find it first.
    method = node.loss.method
    for items in (file_items, cli_items):
        if "loss.method" in items:
            method = items["loss.method"]
    method = str(method).strip().lower()
    _check_method(method)
    for key, value in METHOD_DEFAULTS.get(preset, {}).get(method, {}).items() if preset is not None else ():
        if key == "loss.options":
            node.loss.options = dict(value)
        else:
            _set(node, key, value)
    for items in (file_items, cli_items):
        for key, value in items.items():
            _set(node, key, value)
    cfg = _resolved(node)
    cfg.loss.method = cfg.loss.method.strip().lower()
    if validate:
        cfg.validate()
    return cfg


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _validate(cfg: Config) -> None:
    _check_method(cfg.loss.method)
    if cfg.loss.kernel is not None:
        if cfg.loss.method not in KERNEL_METHODS:
            raise ConfigError(
                f"--kernel applies to the kernel methods ({', '.join(KERNEL_METHODS)}), not to {cfg.loss.method!r}"
            )
        check_kernel(cfg.loss.kernel)
    elif cfg.loss.method == "kernel":
        raise ConfigError("method 'kernel' needs a kernel: pass --kernel, e.g. --kernel gaussian:gamma=2.5")
    name = cfg.data.dataset
    if name.split(":", 1)[0] not in DATASET_NAMES:
        raise ConfigError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    if cfg.data.recipe not in (*RECIPE_NAMES, "none"):
        raise ConfigError(
            f"unknown augmentation recipe {cfg.data.recipe!r}; choose one of {', '.join(RECIPE_NAMES)}, none"
        )
    if cfg.data.local_crops < 0:
        raise ConfigError("data.local_crops must be >= 0")
    if cfg.data.local_crops and cfg.model.backbone == "convnet" and cfg.model.convnet_pool == "flatten":
        raise ConfigError("multi-crop views of several sizes need model.convnet_pool = 'avg' (flattened maps differ)")
    if cfg.data.local_crops and cfg.data.recipe == "none":
        raise ConfigError("multi-crop (data.local_crops > 0) needs a random augmentation recipe")
    if not 0 <= cfg.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.run.final_eval and cfg.data.val_fraction == 0:
        raise ConfigError(
            "the final evaluation chooses its hyper-parameters on a validation split: set data.val_fraction > 0 "
            "(or --no-final-eval)"
        )
    if cfg.model.convnet_pool not in ("avg", "flatten"):
        raise ConfigError(f"model.convnet_pool must be 'avg' or 'flatten', got {cfg.model.convnet_pool!r}")
    if cfg.model.backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {cfg.model.backbone!r}; choose one of {', '.join(BACKBONES)}")
    try:
        dims = parse_projector_spec(cfg.model.projector)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.loss.method in (*KERNEL_METHODS, "auh", "simclr") and dims and dims[-1] < 2:
        raise ConfigError("the embedding dimension must be >= 2 for losses on the sphere")
    if cfg.optim.optimizer not in ("lars", "sgd", "adamw"):
        raise ConfigError(f"unknown optimizer {cfg.optim.optimizer!r}; choose lars, sgd or adamw")
    for key in ("batch_size", "epochs"):
        if getattr(cfg.optim, key) < 1:
            raise ConfigError(f"optim.{key} must be >= 1")
    if cfg.optim.base_lr < 0 or cfg.optim.warmup_epochs < 0:
        raise ConfigError("need optim.base_lr >= 0 and optim.warmup_epochs >= 0")
    if cfg.run.amp not in ("off", "bf16", "fp16", "auto"):
        raise ConfigError(f"run.amp must be off, bf16, fp16 or auto, got {cfg.run.amp!r}")
    if cfg.run.dist_backend not in ("auto", "nccl", "gloo"):
        raise ConfigError(f"run.dist_backend must be auto, nccl or gloo, got {cfg.run.dist_backend!r}")
    if cfg.run.log_every < 1 or cfg.run.eval_every < 0 or cfg.run.checkpoint_every < 0:
        raise ConfigError("need run.log_every >= 1, run.eval_every >= 0, run.checkpoint_every >= 0")
    if cfg.run.checkpoint_minutes < 0:
        raise ConfigError(f"run.checkpoint_minutes must be >= 0, got {cfg.run.checkpoint_minutes}")
    if cfg.run.threads is not None and cfg.run.threads < 1:
        raise ConfigError(f"--threads must be >= 1 (or none for torch's default), got {cfg.run.threads}")
    if cfg.data.num_workers < 0:
        raise ConfigError(f"--workers (data.num_workers) must be >= 0, got {cfg.data.num_workers}")
    check_device(cfg.run.device)
    if cfg.run.stop_after is not None and cfg.run.stop_after < 1:
        raise ConfigError("run.stop_after must be >= 1 (or none)")
    if any(k < 1 for k in cfg.eval.knn_k) or cfg.eval.monitor_k < 1 or not cfg.eval.knn_k:
        raise ConfigError("kNN k values must be >= 1")
    if not cfg.eval.knn_temperatures or not all(math.isfinite(t) and t > 0 for t in cfg.eval.knn_temperatures):
        raise ConfigError(
            f"eval.knn_temperatures must be one or more finite values > 0, got {list(cfg.eval.knn_temperatures)}"
        )
    if not (math.isfinite(cfg.eval.monitor_temperature) and cfg.eval.monitor_temperature > 0):
        raise ConfigError(f"eval.monitor_temperature must be finite and > 0, got {cfg.eval.monitor_temperature}")
    if not cfg.eval.linear_lrs or not cfg.eval.logreg_cs:
        raise ConfigError("eval.linear_lrs and eval.logreg_cs need at least one value")


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(spec: str) -> None:
    """Raise :class:`ConfigError` unless ``spec`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Parameters
    ----------
    spec
        The device of ``--device`` / ``run.device``.
    """
    if not _DEVICE.match(str(spec).strip()):
        raise ConfigError(f"unknown device {spec!r}; choose auto, cpu, cuda or cuda:N (e.g. cuda:1)")


RUN_FILES: tuple[str, ...] = ("config.yaml", "last.pt")
"""A folder holding one of these files is a run folder (it is resumed, never overwritten by another run)."""


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder (it holds ``config.yaml`` or ``last.pt``).

    Parameters
    ----------
    path
        A folder (it need not exist).

    Returns
    -------
    bool
        True when one of :data:`RUN_FILES` is a file in it.
    """
    return any((Path(path) / name).is_file() for name in RUN_FILES)


def check_run_folder(out: Path) -> None:
    """Raise :class:`ConfigError` unless ``out`` can be a run folder: a new folder, an empty one, or a run.

    A file (or a path below a file), an existing folder holding other files, and a place where nothing can be
    written are refused before any work, and nothing is created.

    Parameters
    ----------
    out
        The run folder of ``--out``.
    """
    out = Path(out)
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            where = "is a file" if path == out else f"is below the file {path}"
            raise ConfigError(f"--out {out} {where}; pass a folder (a new one starts a run, an existing one resumes)")
    if out.is_dir() and not is_run_folder(out) and any(out.iterdir()):
        raise ConfigError(
            f"--out {out} is a folder with other files and not a run folder (no config.yaml, no last.pt); pass a "
            "new or empty folder to start a run, or a run folder to resume it"
        )
    check_writable(out)


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` when nothing can be created at ``path`` (tried in its nearest existing folder).

    The probe (a temporary folder) is removed at once: nothing is left behind.

    Parameters
    ----------
    path
        A folder or file to be created (it need not exist, nor its parents).
    """
    path = Path(path)
    base = next(p for p in (path, *path.parents) if p.exists())  # "." or "/" at the latest
    base = base if base.is_dir() else base.parent
    try:
        probe = Path(tempfile.mkdtemp(prefix=".dotkernels-probe-", dir=base))
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write in {base} ({exc.strerror or exc})") from None
    probe.rmdir()


def check_data_dir(data_dir: str | os.PathLike | None, dataset: str) -> None:
    """Raise :class:`ConfigError` when an explicit ``data_dir`` is missing, not a folder, or empty.

    An explicit folder is the only place the data set is looked for, so an empty one is an error rather than a
    silent fall-back to another copy.

    Parameters
    ----------
    data_dir
        The folder of ``--data-dir`` (None: nothing to check).
    dataset
        The data set's name, for the message's hint on how to get it.
    """
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    problem = (
        "does not exist"
        if not path.exists()
        else "is not a folder"
        if not path.is_dir()
        else "is empty"
        if not any(path.iterdir())
        else None
    )
    if problem is None:
        return
    how = DATA_HINTS.get(dataset.split(":", 1)[0], "put the data set's files in it")
    raise ConfigError(
        f"--data-dir {data_dir} {problem}. It must hold the {dataset} files: {how}. Or leave --data-dir out to use "
        "$DOTKERNELS_DATA or /usr/share/datasets. Nothing is ever downloaded."
    )


def parse_projector_spec(spec: str | Sequence[int]) -> list[int]:
    """Layer widths of a projector spec: ``"8192-8192-8192"`` -> ``[8192, 8192, 8192]``; ``""`` -> ``[]``.

    Raises
    ------
    ValueError
        For a malformed spec or a non-positive width.

    Examples
    --------
    >>> parse_projector_spec("1024-1024-1024")
    [1024, 1024, 1024]
    """
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            return []
        try:
            dims = [int(s) for s in text.split("-")]
        except ValueError:
            raise ValueError(f"projector spec must look like '8192-8192-8192', got {spec!r}") from None
    else:
        dims = [int(d) for d in spec]
    if any(d < 1 for d in dims):
        raise ValueError(f"projector widths must be positive, got {spec!r}")
    return dims


def check_kernel(spec: str) -> Any:
    """Parse a kernel string with :func:`dotkernels.parse_kernel`, raising :class:`ConfigError` when it fails."""
    try:
        return parse_kernel(spec)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad kernel {spec!r}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# Command line


def _cli_items(argv: list[str]) -> tuple[dict[str, Any], str | None, str | None, bool]:
    """Turn ``argv`` into (dotted overrides, preset, yaml file, help requested)."""
    items: dict[str, Any] = {}
    preset = None
    yaml_file = None
    help_ = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            help_ = True
            i += 1
            continue
        key, eq, value = arg.partition("=")
        if not arg.startswith("-") and eq and "." in key:  # Hydra's spelling: optim.base_lr=0.3
            items[key] = value
            i += 1
            continue
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(
                f"unexpected argument {arg!r}; options look like --epochs 5, --optim.base_lr 0.3 or optim.base_lr=0.3"
            )
        name, eq, inline = arg[2:].partition("=")
        if name in FLAT_SWITCHES and not eq:
            key, value = FLAT_SWITCHES[name]
            items[key] = value
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(argv):
                raise ConfigError(f"option --{name} needs a value")
            value = argv[i + 1]
            i += 2
        if name == "preset":
            preset = value
        elif name == "config":
            yaml_file = value
        elif name in FLAT_ALIASES:
            items[FLAT_ALIASES[name]] = value
        elif "." in name:
            items[name] = value
        else:
            flat = ", ".join(f"--{k}" for k in (*FLAT_ALIASES, *FLAT_SWITCHES))
            raise ConfigError(
                f"unknown option --{name}; use a dotted key (--optim.base_lr) or one of --preset, --config, {flat}"
            )
    return items, preset, yaml_file, help_


HELP: dict[str, str] = {
    "data.dataset": "data set: fashion-mnist, mnist, digits, cifar10, cifar100, stl10, imagenet(20), imagefolder:PATH",
    "data.data_dir": "folder holding the data set, the only one looked in (default: $DOTKERNELS_DATA, system)",
    "data.train_split": "pretraining split: train (official train minus validation), trainval, ...",
    "data.val_fraction": "share of the training set held out for validation (stratified)",
    "data.split_seed": "seed of the validation split",
    "data.image_size": "resize stored images to this side",
    "data.crop_size": "side of the augmented views (none: the image side)",
    "data.folder_resize": "folder data sets: shorter side before the centre crop",
    "data.per_class": "keep only the first N training images per class",
    "data.limit": "keep only the first N images of the pretraining split (quick runs)",
    "data.eval_limit": "keep only the first N images of each evaluation split",
    "data.recipe": "augmentations: " + ", ".join(RECIPE_NAMES) + ", or none (deterministic mirror views)",
    "data.crop_scale": "RandomResizedCrop area range (none: the recipe's)",
    "data.local_crops": "multi-crop: number of extra small views",
    "data.local_size": "multi-crop: side of the small views",
    "data.resident": "in-memory data sets on a GPU: copy the training set to the device once",
    "data.num_workers": "DataLoader workers (>= 0) for folder data sets",
    "model.backbone": "backbone: " + ", ".join(BACKBONES),
    "model.convnet_widths": "channels of the ConvNet's four blocks",
    "model.convnet_pool": "ConvNet features: avg (global pooling) or flatten (the last map)",
    "model.small_image_stem": "ResNets: 3x3 stride-1 stem without max-pool (CIFAR)",
    "model.zero_init_residual": "ResNets: zero-initialise each block's last BatchNorm",
    "model.projector": "projector widths (Linear-BN-ReLU layers, last one plain)",
    "model.sync_bn": "SyncBatchNorm when distributed",
    "model.concat_views": "forward both views in one call (one BatchNorm statistic)",
    "loss.method": "method: " + ", ".join(METHODS),
    "loss.kernel": "kernel of sfrik/kernel: any dotkernels string (none: SFRIK's)",
    "loss.preset": "loss coefficients: a preset of dotkernels_ssl.losses.PRESETS[method]",
    "loss.options": "loss keyword arguments over the preset (--loss.options.NAME VALUE)",
    "optim.optimizer": "optimizer: lars, sgd or adamw",
    "optim.batch_size": "global batch size",
    "optim.epochs": "number of epochs (the schedule spans them)",
    "optim.base_lr": "base learning rate (peak = base_lr x batch / 256 with scale_lr)",
    "optim.scale_lr": "linear scaling rule for the peak learning rate",
    "optim.weight_decay": "weight decay (not on biases and norm parameters)",
    "optim.momentum": "momentum",
    "optim.eta": "LARS trust coefficient",
    "optim.warmup_epochs": "linear warm-up in epochs (at most half the run), then cosine decay",
    "optim.final_lr_ratio": "final learning rate as a fraction of the peak",
    "optim.grad_clip": "clip the gradient norm (none: no clipping)",
    "run.out": "run folder: a new or empty one starts a run, a run folder resumes (default runs/DATASET-METHOD)",
    "run.seed": "random seed",
    "run.device": "auto, cpu, cuda or cuda:N",
    "run.amp": "mixed precision: auto (bf16/fp16 on GPU, bf16 on CPUs with bf16 instructions), off, bf16, fp16",
    "run.compile": "torch.compile the model",
    "run.channels_last": "channels-last memory format",
    "run.quiet": "no progress bars",
    "run.threads": "CPU threads of torch (>= 1; none: torch's default)",
    "run.log_every": "write a step row to the CSV and TensorBoard every N steps",
    "run.eval_every": "monitors (kNN on validation, uniformity, rank) every N epochs (0: never)",
    "run.checkpoint_every": "also keep epoch-XXXX.pt every N epochs (0: never)",
    "run.checkpoint_minutes": "also write last.pt inside an epoch every N minutes (0: epoch ends and signals only)",
    "run.stop_after": "stop after N epochs in total (resume later; the schedule spans all epochs)",
    "run.final_eval": "evaluate the backbone at the end and write eval.json",
    "run.tensorboard": "write TensorBoard events",
    "run.dist_backend": "torchrun backend: auto, nccl or gloo",
    "run.dist_timeout_s": "timeout of the collectives in seconds",
    "eval.batch_size": "batch size of the feature extraction",
    "eval.knn_k": "values of k of the weighted kNN (the best on validation is reported)",
    "eval.knn_temperatures": "temperatures of the kNN votes (chosen on validation with k)",
    "eval.monitor_k": "k of the per-epoch kNN monitor",
    "eval.monitor_temperature": "temperature of the per-epoch kNN monitor",
    "eval.monitor_bank": "training images in the monitor's kNN bank (none: all)",
    "eval.monitor_queries": "validation images the monitors use (none: all)",
    "eval.linear": "run the linear probe",
    "eval.linear_epochs": "epochs of the linear probe",
    "eval.linear_lrs": "learning rates of the probe (chosen on validation)",
    "eval.linear_batch_size": "batch size of the probe",
    "eval.linear_weight_decay": "weight decay of the probe",
    "eval.linear_momentum": "momentum of the probe",
    "eval.linear_standardize": "standardise the features before the probe",
    "eval.linear_refit": "also refit the probe on train + validation at the chosen lr",
    "eval.logreg": "fit the logistic regression (scikit-learn, lbfgs)",
    "eval.logreg_cs": "values of C of the logistic regression (chosen on validation)",
    "eval.logreg_max_iter": "iteration limit of each lbfgs fit",
}
"""One line of help per dotted key (the sections' docstrings hold the details)."""

_FLAT_HELP = {"subset": "the same as --limit"}


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return "none" if value is None else str(value)


def usage(cfg: Config | None = None, *, default_preset: bool = True) -> str:
    """Help text of the pretraining command line, with the values a run of ``cfg`` would use.

    Parameters
    ----------
    cfg
        The resolved configuration whose values are shown (default: the default preset with its default method).
    default_preset
        ``cfg`` is the default preset (the text says how to see another one).

    Returns
    -------
    str
        One line per option: the flag, the value of this configuration, a description.
    """
    cfg = build_config(DEFAULT_PRESET, validate=False) if cfg is None else cfg
    values = _flatten(config_to_dict(cfg))
    which = f"preset {cfg.preset} with method {cfg.loss.method}" if cfg.preset else "no preset"
    lines = [
        "usage: dotkernels-pretrain [--preset NAME] [--config FILE.yaml] [--method M] [--out DIR] [options]",
        "",
        "Self-supervised pretraining (SFRIK and baselines), then the evaluation of the frozen backbone. An existing",
        "run folder (--out) is resumed from its last checkpoint; Ctrl-C or SIGTERM writes a checkpoint first.",
        "",
        f"Values shown: those a run of {which} uses"
        + (" (the default;\n--preset NAME --help shows another preset's)." if default_preset else "."),
        "",
        f"  --preset NAME          {cfg.preset or 'none'}: one of {', '.join(PRESETS)}",
        "  --config FILE.yaml     a YAML file of settings (nested or dotted keys), applied over the preset",
        "",
        "common options (each sets the dotted key in brackets):",
    ]
    for flag, key in FLAT_ALIASES.items():
        text = _FLAT_HELP.get(flag, HELP.get(key, ""))
        lines.append(f"  --{flag:<20} {_shown(values.get(key)):<16} {text} [{key}]")
    lines += ["", "switches (no value):"]
    for flag, (key, value) in FLAT_SWITCHES.items():
        lines.append(f"  --{flag:<20} {'':<16} sets {key} = {_shown(value)}: {HELP.get(key, '')}")
    lines += ["", "every setting as --section.field VALUE, section.field=VALUE, or in a --config file:"]
    for key, value in values.items():
        if key != "preset":
            lines.append(f"  --{key:<28} {_shown(value):<16} {HELP.get(key, '')}")
    lines.append(f"  --{'loss.options.NAME VALUE':<28} {'':<16} any keyword argument of the loss")
    lines += [
        "",
        f"methods: {', '.join(METHODS)}; kernels: any dotkernels string (gaussian:gamma=2.5, sfrik:1,40,40, ...)",
        "exit status: 0 done, 2 refused (nothing written), 1 failed while running, 130/143 interrupted",
    ]
    return "\n".join(lines)


def parse_config(argv: list[str] | None = None, *, validate: bool = True) -> Config:
    """Build the configuration of a run from command-line arguments (see the module docstring).

    When ``--out`` names an existing run folder (with ``config.yaml``) and neither ``--preset`` nor ``--config``
    is given, the stored configuration is the starting point, so ``--out DIR`` alone resumes a run as it was
    configured; other options still override it.

    Raises
    ------
    ConfigError
        For anything invalid. ``SystemExit(0)`` after printing the help for ``-h``/``--help``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    items, preset, yaml_file, help_ = _cli_items(argv)
    if help_:
        items.pop("run.out", None)  # the values of a new run, not of a stored one
        cfg = build_config(DEFAULT_PRESET if preset is None else preset, items, yaml_file, validate=False)
        print(usage(cfg, default_preset=preset is None and yaml_file is None))
        raise SystemExit(0)
    out = items.get("run.out")
    stored = Path(str(out)) / "config.yaml" if out else None
    if stored is not None and stored.is_file() and preset is None and yaml_file is None:
        base = load_yaml(stored)
        cfg = config_from_dict(base)
        method = items.get("loss.method")
        if method is not None and str(method).strip().lower() != cfg.loss.method:
            raise ConfigError(
                f"{out} is a {cfg.loss.method!r} run; it cannot be resumed as {method!r} (use another --out)"
            )
        for key, value in items.items():
            set_option(cfg, key, value)
        if validate:
            cfg.validate()
        return cfg
    return build_config(DEFAULT_PRESET if preset is None else preset, items, yaml_file, validate=validate)
