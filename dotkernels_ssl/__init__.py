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

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # The losses (and torch) load on first use, so the command line answers --help and errors without torch.
    losses = importlib.import_module(f"{__name__}.losses")

    if name == "__all__":
        return list(losses.__all__)
    if name in losses.__all__:
        return getattr(losses, name)
    raise AttributeError(f"module 'dotkernels_ssl' has no attribute {name!r}")


def __dir__() -> list[str]:
    losses = importlib.import_module(f"{__name__}.losses")
    return sorted({*globals(), *losses.__all__})
