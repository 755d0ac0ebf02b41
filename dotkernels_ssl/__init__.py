"""dotkernels_ssl: PyTorch self-supervised learning with dot-product kernels.

- :mod:`dotkernels_ssl.losses` — :class:`SFRIKLoss`, :class:`KernelUniformityLoss` and the baselines
  (:class:`AlignUniformLoss`, :class:`VICRegLoss`, :class:`BarlowTwinsLoss`, :class:`NTXentLoss`), each with a
  functional twin and ``forward_terms`` for logging; :func:`build_loss` from a method name.
- :mod:`dotkernels_ssl.functional` — the fused kernel regulariser (gram / blocked / moments / DDP local rows).
- :mod:`dotkernels_ssl.distributed` — the one place that talks to ``torch.distributed``.
- :mod:`dotkernels_ssl.data`, :mod:`~dotkernels_ssl.augment`, :mod:`~dotkernels_ssl.models`,
  :mod:`~dotkernels_ssl.optim` — local data sets, batched kornia augmentations, backbones and projectors, LARS and
  schedules.
- :mod:`dotkernels_ssl.config`, :mod:`~dotkernels_ssl.train`, :mod:`~dotkernels_ssl.evaluate`,
  :mod:`~dotkernels_ssl.monitors`, :mod:`~dotkernels_ssl.cli` — the pretraining loop and its evaluation
  (``dotkernels-pretrain``, ``dotkernels-eval``).
"""

from . import distributed, functional
from .functional import kernel_regularizer, local_rows_regularizer, moments_regularizer
from .losses import (
    AlignUniformLoss,
    BarlowTwinsLoss,
    KernelUniformityLoss,
    LossTerms,
    NTXentLoss,
    SFRIKLoss,
    VICRegLoss,
    align_uniform_loss,
    barlow_twins_loss,
    build_loss,
    kernel_uniformity_loss,
    nt_xent_loss,
    sfrik_loss,
    vicreg_loss,
)

__all__ = [
    "AlignUniformLoss",
    "BarlowTwinsLoss",
    "KernelUniformityLoss",
    "LossTerms",
    "NTXentLoss",
    "SFRIKLoss",
    "VICRegLoss",
    "align_uniform_loss",
    "barlow_twins_loss",
    "build_loss",
    "distributed",
    "functional",
    "kernel_regularizer",
    "kernel_uniformity_loss",
    "local_rows_regularizer",
    "moments_regularizer",
    "nt_xent_loss",
    "sfrik_loss",
    "vicreg_loss",
]
