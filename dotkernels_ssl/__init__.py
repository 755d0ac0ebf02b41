"""dotkernels_ssl: PyTorch self-supervised learning with dot-product kernels.

- :mod:`dotkernels_ssl.losses` — :class:`SFRIKLoss`, :class:`KernelUniformityLoss` and the baselines
  (:class:`AlignUniformLoss`, :class:`VICRegLoss`, :class:`BarlowTwinsLoss`, :class:`NTXentLoss`), each with a
  functional twin and ``forward_terms`` for logging; :func:`build_loss` from a method name; the fused kernel
  regulariser (:mod:`dotkernels_ssl.losses.functional`) and the one module that talks to ``torch.distributed``
  (:mod:`dotkernels_ssl.losses.distributed`).
- :mod:`dotkernels_ssl.pretraining` — the pretraining system built on the losses: configuration, data,
  augmentations, models, optimisation, the loop, checkpoints, evaluation, monitors and the command line
  (``dotkernels-pretrain``, ``dotkernels-eval``).
"""

from .losses import *  # noqa: F403
from .losses import __all__ as _losses_all

__all__ = list(_losses_all)
