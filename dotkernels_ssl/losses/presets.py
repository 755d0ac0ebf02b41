r"""The losses' published hyper-parameters, in one place: ``PRESETS[method][name]`` -> options of the loss.

``method`` is a name of :func:`dotkernels_ssl.losses.build_loss` (``"sfrik"``, ``"kernel"``, ``"auh"``,
``"vicreg"``, ``"barlow"``, ``"simclr"``); every method has the presets

- ``"resnet18"``: as run by the SFRIK paper (Zheng et al., ICLR 2023) with ResNet-18 and q = 8192
  (ImageNet-20%),
- ``"resnet50"``: as run by the SFRIK paper with ResNet-50 (q = 32768 for SFRIK, whose per-entry mean squared
  error is 4 times smaller there and whose invariance weight is 10 times larger; the baselines keep q = 8192),
- ``"fashion-mnist"``: this project's Fashion-MNIST runs (q = 1024; SFRIK's invariance weight
  :math:`q / 2.048 = 500` keeps the paper's balance :math:`\lambda = \texttt{uniformity\_weight} \cdot q /
  \texttt{invariance\_weight} = 2.048`);

and the methods' own papers are ``"wang_isola"`` (``"auh"``), ``"bardes"`` (``"vicreg"``) and ``"zbontar"``
(``"barlow"``).

The SFRIK presets leave the kernel to :class:`~dotkernels_ssl.losses.SFRIKLoss`'s default, the SFRIK kernel with
:math:`(b_1, b_2, b_3) = (1, 40, 40)`, so that ``kernel=`` can replace it; ``"kernel"`` has the same presets.
Barlow Twins' ``scale_loss * (on_diag + lambd * off_diag)`` of the official code is ``invariance_weight =
scale_loss`` and ``redundancy_weight = scale_loss * lambd``.

Examples
--------
>>> PRESETS["sfrik"]["resnet50"]
{'invariance_weight': 40000.0, 'uniformity_weight': 1.0}
>>> PRESETS["auh"]["resnet18"]["gamma"]
2.5
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

_SFRIK = {
    "resnet18": {"invariance_weight": 4000.0, "uniformity_weight": 1.0},
    "resnet50": {"invariance_weight": 40000.0, "uniformity_weight": 1.0},
    "fashion-mnist": {"invariance_weight": 500.0, "uniformity_weight": 1.0},
}
_WANG_ISOLA = {
    "invariance_weight": 1.0,
    "uniformity_weight": 1.0,
    "gamma": 2.0,
    "alpha": 2.0,
    "align_reduction": "sample",
}
# the SFRIK paper's AUH: alignment as a mean squared error over the n q entries, weight 3000, gamma = 2.5
_AUH_SFRIK = {
    "invariance_weight": 3000.0,
    "uniformity_weight": 1.0,
    "gamma": 2.5,
    "alpha": 2.0,
    "align_reduction": "element",
}
_BARDES = {"invariance_weight": 25.0, "variance_weight": 25.0, "covariance_weight": 1.0}
_VICREG_SFRIK = {"invariance_weight": 10.0, "variance_weight": 10.0, "covariance_weight": 1.0}
_ZBONTAR = {"invariance_weight": 1.0, "redundancy_weight": 0.0051}
_SIMCLR_SFRIK = {"temperature": 0.15}


def _same(options: dict[str, Any], *names: str) -> dict[str, dict[str, Any]]:
    return {name: dict(options) for name in names}


#: ``PRESETS[method][name]``: keyword arguments of the loss that :func:`~dotkernels_ssl.losses.build_loss` builds
#: for ``method`` (see the module docstring).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "sfrik": {name: dict(options) for name, options in _SFRIK.items()},
    "kernel": {name: dict(options) for name, options in _SFRIK.items()},
    "auh": {
        **_same(_WANG_ISOLA, "wang_isola", "fashion-mnist"),
        **_same(_AUH_SFRIK, "resnet18", "resnet50"),
    },
    "vicreg": {
        **_same(_BARDES, "bardes", "fashion-mnist"),
        **_same(_VICREG_SFRIK, "resnet18", "resnet50"),
    },
    "barlow": _same(_ZBONTAR, "zbontar", "resnet18", "resnet50", "fashion-mnist"),
    "simclr": _same(_SIMCLR_SFRIK, "resnet18", "resnet50", "fashion-mnist"),
}
