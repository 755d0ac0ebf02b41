"""The vocabulary of a pretraining run and its named presets (no torch import: the command line reads them).

- :data:`METHODS`, :data:`KERNEL_METHODS`, :data:`DATASET_NAMES`, :data:`BACKBONES`, :data:`RECIPE_NAMES`: the
  names a configuration accepts.
- :data:`PRESETS`: named runs (data set, model, optimisation, evaluation) as dotted keys and values.
- :data:`METHOD_DEFAULTS`: per preset and method, the settings that depend on the method; the loss coefficients
  themselves are a preset name of :data:`dotkernels_ssl.losses.PRESETS` (``loss.preset``), the one place
  where the papers' coefficients are stored.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BACKBONES",
    "DATASET_NAMES",
    "DATA_HINTS",
    "DEFAULT_PRESET",
    "KERNEL_METHODS",
    "METHODS",
    "METHOD_DEFAULTS",
    "PRESETS",
    "RECIPE_NAMES",
]

METHODS: tuple[str, ...] = ("sfrik", "kernel", "auh", "vicreg", "barlow", "simclr")
"""Pretraining methods: ``sfrik`` (the paper's loss), ``kernel`` (kernel uniformity with any ``--kernel``),
``auh`` (alignment + uniformity on the hypersphere), ``vicreg``, ``barlow`` (Barlow Twins), ``simclr``."""

KERNEL_METHODS: tuple[str, ...] = ("sfrik", "kernel")
"""Methods whose regulariser is a dot-product kernel (``--kernel`` applies to them)."""

DATASET_NAMES: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "digits",
    "cifar10",
    "cifar100",
    "stl10",
    "imagefolder",
    "imagenet",
    "imagenet20",
)
"""Data sets :func:`dotkernels_ssl.pretraining.data.load_dataset` reads from local files."""

DATA_HINTS: dict[str, str] = {
    "fashion-mnist": "`apt-get install -y dataset-fashion-mnist` (Debian) installs them in "
    "/usr/share/datasets/fashion-mnist; or copy the four *-ubyte.gz files of Fashion-MNIST into the folder",
    "mnist": "copy the four *-ubyte.gz files of MNIST into the folder",
    "digits": "scikit-learn ships it (no folder needed)",
    "cifar10": "extract cifar-10-python.tar.gz (University of Toronto) into the folder",
    "cifar100": "extract cifar-100-python.tar.gz (University of Toronto) into the folder",
    "stl10": "extract stl10_binary.tar.gz (Stanford University) into the folder",
    "imagefolder": "one sub-folder of images per class in FOLDER/train (and FOLDER/val for the test split)",
    "imagenet": "the ILSVRC2012 train and val images sorted into class folders FOLDER/train and FOLDER/val",
    "imagenet20": "the ILSVRC2012 train and val images sorted into class folders FOLDER/train and FOLDER/val",
}
"""How to get each data set's files (the data are never downloaded): the hint of a missing ``--data-dir``."""

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "convnet")
"""Backbones of :func:`dotkernels_ssl.pretraining.models.build_backbone` (and the small ConvNet)."""

RECIPE_NAMES: tuple[str, ...] = ("vicreg", "simclr", "auh", "small")
"""Augmentation recipes of :data:`dotkernels_ssl.pretraining.augment.RECIPES` (``"none"`` is also accepted)."""

DEFAULT_PRESET = "fashion-mnist-cpu"

PRESETS: dict[str, dict[str, Any]] = {
    "fashion-mnist-cpu": {
        "data.dataset": "fashion-mnist",
        "data.recipe": "small",
        "data.crop_scale": (0.5, 1.0),
        "model.backbone": "convnet",
        "model.convnet_widths": (24, 48, 96, 192),
        "model.convnet_pool": "flatten",
        "model.projector": "1024-1024-1024",
        "optim.optimizer": "lars",
        "optim.batch_size": 256,
        "optim.epochs": 40,
        "optim.base_lr": 0.6,
        "optim.warmup_epochs": 1.0,
        "run.amp": "auto",
        "run.channels_last": True,  # 1.5x faster convolutions on the CPU too (oneDNN's NHWC kernels)
        # the monitors (4 s an epoch here) every 4 epochs and at the last: they do not change the training
        "run.eval_every": 4,
        "eval.monitor_bank": 10000,
        "eval.linear_epochs": 20,
        "eval.linear_lrs": (0.01, 0.02, 0.05, 0.2),
        # C = 1 lost about 1 point of validation accuracy to C = 0.1 in each of 3 seeds of this preset, and its fit
        # took over a third of the evaluation
        "eval.logreg_cs": (0.1,),
    },
    "cifar10-resnet18": {
        "data.dataset": "cifar10",
        "data.recipe": "small",
        "model.backbone": "resnet18",
        "model.small_image_stem": True,
        "model.projector": "8192-8192-8192",
        "optim.batch_size": 512,
        "optim.epochs": 400,
        "optim.base_lr": 1.2,
        "optim.warmup_epochs": 10.0,
        "data.num_workers": 0,
    },
    "stl10-resnet18": {
        "data.dataset": "stl10",
        "data.train_split": "train+unlabeled",
        "data.recipe": "auh",
        "data.crop_size": 64,
        "data.resident": False,
        "model.backbone": "resnet18",
        "model.projector": "8192-8192-8192",
        "optim.batch_size": 512,
        "optim.epochs": 200,
        "optim.base_lr": 1.2,
        "optim.warmup_epochs": 10.0,
    },
    "imagenet20-resnet18": {
        "data.dataset": "imagenet20",
        "data.image_size": 224,
        "data.recipe": "vicreg",
        "data.resident": False,
        "data.num_workers": 8,
        "model.backbone": "resnet18",
        "model.projector": "8192-8192-8192",
        "optim.batch_size": 2048,
        "optim.epochs": 100,
        "optim.base_lr": 1.2,
        "optim.warmup_epochs": 10.0,
        "eval.monitor_bank": 20000,
    },
    "imagenet-resnet50": {
        "data.dataset": "imagenet",
        "data.image_size": 224,
        "data.recipe": "vicreg",
        "data.resident": False,
        "data.num_workers": 10,
        "model.backbone": "resnet50",
        "model.projector": "8192-8192-32768",
        "optim.batch_size": 2048,
        "optim.epochs": 200,
        "optim.base_lr": 0.4,
        "optim.warmup_epochs": 10.0,
        "eval.monitor_bank": 50000,
    },
}
"""Named presets: dotted keys and their values, applied over the dataclass defaults."""


def _loss_presets(name: str) -> dict[str, dict[str, Any]]:
    return {method: {"loss.preset": name} for method in METHODS}


_R50 = _loss_presets("resnet50")
for _m in ("vicreg", "barlow", "simclr", "auh"):
    _R50[_m] = {**_R50[_m], "model.projector": "8192-8192-8192"}

METHOD_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "fashion-mnist-cpu": _loss_presets("fashion-mnist"),
    "cifar10-resnet18": _loss_presets("resnet18"),
    "stl10-resnet18": _loss_presets("resnet18"),
    "imagenet20-resnet18": _loss_presets("resnet18"),
    "imagenet-resnet50": _R50,
}
"""Per preset and method: the loss preset (a name of ``dotkernels_ssl.losses.PRESETS[method]``) and any other key
that depends on the method (the baselines' projector with the ResNet-50 preset)."""
