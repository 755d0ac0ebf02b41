"""Self-supervised losses on the sphere: the fused kernel regulariser, the loss modules, presets and DDP collectives.

- :mod:`~dotkernels_ssl.losses.functional` — the fused kernel regulariser (gram / blocked / moments / local rows).
- :mod:`~dotkernels_ssl.losses.kernel` — :class:`KernelUniformityLoss`, :class:`SFRIKLoss`.
- :mod:`~dotkernels_ssl.losses.baselines` — :class:`AlignUniformLoss`, :class:`VICRegLoss`,
  :class:`BarlowTwinsLoss`, :class:`NTXentLoss`.
- :mod:`~dotkernels_ssl.losses.distributed` — the one place that talks to ``torch.distributed``.

The package knows nothing of training: :mod:`dotkernels_ssl.pretraining` uses it, never the other way round.
"""

from . import distributed, functional
from .baselines import *  # noqa: F403
from .baselines import __all__ as _baselines_all
from .functional import describe_plan, kernel_regularizer, local_rows_regularizer, moments_regularizer
from .kernel import *  # noqa: F403
from .kernel import __all__ as _kernel_all

__all__ = sorted(
    {
        *_baselines_all,
        *_kernel_all,
        "describe_plan",
        "distributed",
        "functional",
        "kernel_regularizer",
        "local_rows_regularizer",
        "moments_regularizer",
    }
)
