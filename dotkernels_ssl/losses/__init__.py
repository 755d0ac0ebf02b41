"""Self-supervised losses on the sphere: the fused kernel regulariser, the loss modules, presets and DDP collectives.

- :mod:`~dotkernels_ssl.losses.functional` — the fused kernel regulariser (gram / blocked / moments / local rows).
- :mod:`~dotkernels_ssl.losses.kernel` — :class:`KernelUniformityLoss`, :class:`SFRIKLoss` and :func:`build_loss`.
- :mod:`~dotkernels_ssl.losses.baselines` — :class:`AlignUniformLoss`, :class:`VICRegLoss`,
  :class:`BarlowTwinsLoss`, :class:`NTXentLoss`.
- :mod:`~dotkernels_ssl.losses.presets` — :data:`PRESETS`, the published hyper-parameters (method -> name -> options).
- :mod:`~dotkernels_ssl.losses.distributed` — the one place that talks to ``torch.distributed``.

Every loss is a thin :class:`torch.nn.Module` over a functional twin that returns :class:`LossTerms`; ``forward``
returns the scalar loss and ``forward_terms`` the terms. Under DDP the value a loss returns is that of the global
loss on every rank while its gradient is the rank's exact share. The package knows nothing of training:
:mod:`dotkernels_ssl.pretraining` uses it, never the other way round.
"""

from . import distributed, functional
from ._base import LossTerms, TermsLoss
from .baselines import (
    AlignUniformLoss,
    BarlowTwinsLoss,
    NTXentLoss,
    VICRegLoss,
    align_uniform_loss,
    barlow_twins_loss,
    nt_xent_loss,
    vicreg_loss,
)
from .functional import describe_plan, kernel_regularizer, local_rows_regularizer, moments_regularizer
from .kernel import (
    LOSS_NAMES,
    KernelUniformityLoss,
    SFRIKLoss,
    build_loss,
    kernel_uniformity_loss,
    sfrik_kernel,
    sfrik_loss,
)
from .presets import PRESETS

__all__ = [
    "LOSS_NAMES",
    "PRESETS",
    "AlignUniformLoss",
    "BarlowTwinsLoss",
    "KernelUniformityLoss",
    "LossTerms",
    "NTXentLoss",
    "SFRIKLoss",
    "TermsLoss",
    "VICRegLoss",
    "align_uniform_loss",
    "barlow_twins_loss",
    "build_loss",
    "describe_plan",
    "distributed",
    "functional",
    "kernel_regularizer",
    "kernel_uniformity_loss",
    "local_rows_regularizer",
    "moments_regularizer",
    "nt_xent_loss",
    "sfrik_kernel",
    "sfrik_loss",
    "vicreg_loss",
]
