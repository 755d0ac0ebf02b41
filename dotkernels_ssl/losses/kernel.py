r"""Self-supervised losses: the kernel uniformity loss, SFRIK, and the baselines (re-exported), with a factory.

- :class:`KernelUniformityLoss` / :func:`kernel_uniformity_loss`: squared MMD to the uniform distribution on the
  sphere for ANY dotkernels kernel, averaged over views; term ``uniformity``.
- :class:`SFRIKLoss` / :func:`sfrik_loss`: invariance + kernel regulariser (Zheng et al., ICLR 2023), the SFRIK
  kernel by default and any dotkernels kernel through ``kernel=``; terms ``invariance`` and ``uniformity``.
- :class:`AlignUniformLoss`, :class:`VICRegLoss`, :class:`BarlowTwinsLoss`, :class:`NTXentLoss` and their
  functional twins, re-exported from :mod:`dotkernels_ssl.losses_baselines`.
- :func:`build_loss`: ``build_loss("sfrik" | "kernel" | "auh" | "vicreg" | "barlow" | "simclr", kernel, **options)``.

Every loss follows the conventions of :mod:`dotkernels_ssl.losses_baselines`: ``module(z1, z2)`` or
``module([v1, v2, ...])`` returns the scalar loss, ``module.forward_terms(...)`` and the functional twins a
:class:`LossTerms` ``(loss, terms, weights)`` with ``loss = sum(weights[k] * terms[k])``; views of shape
``(n, q)``; multi-crop: the invariance is averaged over the pairs ``(0, 1)`` and ``(g, v)``, ``g in {0, 1}``,
``v >= 2``, the regulariser over all views; half-precision inputs are promoted to float32 and autocast is
disabled inside.

Normalisation
-------------
Embeddings are projected onto the sphere inside the losses, :math:`u_i = z_i / \max(\|z_i\|_2, \varepsilon)`
(``torch.nn.functional.normalize``), with ``eps = 1e-12`` by default: rows with a norm below ``eps`` are only
scaled, not normalised (they contribute a point near the origin, and the gradient stays finite).

Distributed
-----------
The regulariser uses the global batch: every rank evaluates its local rows of the Gram matrix against the
all-gathered embeddings (:func:`dotkernels_ssl.functional.kernel_regularizer`), a *rank share* whose mean over
ranks is the global :math:`R` (``moments`` mode: the replicated global value). The SFRIK invariance is the mean
squared error of the local rows as a rank share :math:`\frac{W}{N q}\sum_{i \in r}\|u^{(1)}_i - u^{(2)}_i\|^2` (the
local mean when the local batch sizes are equal, which is the released code's local ``mse_loss``). With DDP's
gradient averaging the parameter gradients equal the single-process ones on the concatenated batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dotkernels.kernels import DotProductKernel, SFRIKKernel

from . import distributed as D
from .functional import (
    ESTIMATORS,
    METHODS,
    _as_kernel,
    _check_block,
    kernel_regularizer,
    resolve_method,
)
from .baselines import (
    ALIGN_UNIFORM_PRESETS,
    AlignUniformLoss,
    BarlowTwinsLoss,
    LossTerms,
    NTXentLoss,
    VICRegLoss,
    Views,
    _as_views,
    _combine,
    _from_preset,
    _no_autocast,
    _nonnegative,
    _pairs,
    _prepare,
    _prepare_views,
    _TermsLoss,
    align_uniform_loss,
    barlow_twins_loss,
    nt_xent_loss,
    vicreg_loss,
)

__all__ = [
    "ALIGN_UNIFORM_PRESETS",
    "LOSS_NAMES",
    "SFRIK_PRESETS",
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
    "kernel_uniformity_loss",
    "nt_xent_loss",
    "sfrik_loss",
    "vicreg_loss",
]

#: Hyper-parameters of the SFRIK paper's released code: ``sim_coeff`` multiplies the mean squared error over the
#: ``n q`` entries, ``mmd_coeff`` the mean over the two views of the regulariser; kernel weights
#: :math:`(b_1, b_2, b_3) = (1, 40, 40)`. ``"resnet18"``: q = 8192 (ImageNet-20%); ``"resnet50"``: q = 32768
#: (ImageNet-1k), where the per-entry MSE is 4 times smaller and ``sim_coeff`` 10 times larger.
SFRIK_PRESETS: dict[str, dict[str, Any]] = {
    "resnet18": {"weights": (1.0, 40.0, 40.0), "sim_coeff": 4000.0, "mmd_coeff": 1.0},
    "resnet50": {"weights": (1.0, 40.0, 40.0), "sim_coeff": 40000.0, "mmd_coeff": 1.0},
}

_DEFAULT_EPS = 1e-12


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _check_estimator(estimator: str) -> str:
    # case-insensitive like dotkernels.mmd2_uniform, so "V"/"U" (the statistics' usual names) work in both
    if not isinstance(estimator, str) or estimator.lower() not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS} (any case), got {estimator!r}")
    return estimator.lower()


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite positive number, got {eps}")
    return eps


def _sfrik_kernel(weights: Sequence[float] | None, kernel: str | DotProductKernel | None) -> DotProductKernel:
    if kernel is not None:
        return _as_kernel(kernel)
    if weights is None:
        return SFRIKKernel()
    return SFRIKKernel(tuple(float(w) for w in weights))


def _regularizer_views(
    us: list[Tensor], kernel: DotProductKernel, estimator: str, method: str, block_size: int | None, sizes: list[int]
) -> Tensor:
    """Mean over views of the kernel regulariser of the normalised views (global batch; rank shares)."""
    values = [
        kernel_regularizer(
            u,
            kernel,
            estimator=estimator,
            method=method,
            block_size=block_size,
            sizes=sizes if D.is_distributed() else None,
        )
        for u in us
    ]
    return torch.stack(values).mean()


# ----------------------------------------------------------------------------------------------------
# kernel uniformity
# ----------------------------------------------------------------------------------------------------


def _uniformity_views(z1: Views, z2: Tensor | None) -> list[Tensor]:
    """One view, two views or a list of >= 1 views, validated like the baselines' views."""
    if isinstance(z1, Tensor) and z2 is None:
        return _as_views([z1, z1], None)[:1]  # the baselines' checks, on a single view
    if isinstance(z1, (list, tuple)) and len(z1) == 1 and z2 is None:
        return _as_views([z1[0], z1[0]], None)[:1]
    return _as_views(z1, z2)


def kernel_uniformity_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    kernel: str | DotProductKernel = "sfrik",
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    eps: float = _DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""Squared MMD to the uniform distribution on :math:`S^{q-1}`, for any dotkernels kernel, averaged over views.

    On the normalised rows :math:`u_i = z_i / \max(\|z_i\|, \varepsilon)` of each view (global batch of ``N`` rows
    under ``torch.distributed``),

    .. math::

        \mathrm{MMD}_V^2 = \frac{1}{N^2}\sum_{i,j} \varphi(\langle u_i, u_j\rangle) - a_0, \qquad
        \mathrm{MMD}_U^2 = \frac{1}{N(N-1)}\sum_{i \ne j} \varphi(\langle u_i, u_j\rangle) - a_0,

    with :math:`a_0` the uniform mean embedding (``kernel.uniform_mean_embedding(q)``). Computed by the fused
    functions of :mod:`dotkernels_ssl.functional` (one pass over the Gram rows, centred sums, local rows under DDP).

    Parameters
    ----------
    z1, z2 : Tensor
        One view ``z1`` of shape ``(n, q)``, two views, or ``z1`` a list of views.
    kernel : str or DotProductKernel
        Any dotkernels kernel or :func:`dotkernels.parse_kernel` string (default: the SFRIK kernel (1, 40, 40)).
    estimator : {"v", "u"}
        V-statistic (diagonal included) or U-statistic.
    method : {"auto", "gram", "blocked", "moments"}
        See :func:`dotkernels_ssl.functional.resolve_method`.
    block_size : int, optional
        Rows per Gram block (``"blocked"``, or ``"auto"`` when smaller than the local batch).
    eps : float
        Normalisation floor (default 1e-12).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Term ``uniformity`` (weight 1): the mean over views (a rank share under ``torch.distributed``).
    """
    kernel = _as_kernel(kernel)
    estimator = _check_estimator(estimator)
    method = _check_method(method)
    block_size = _check_block(block_size)
    eps = _check_eps(eps)
    views, world = _prepare_views(_uniformity_views(z1, z2), check_finite)
    with _no_autocast(views[0].device):
        us = [F.normalize(v, dim=1, eps=eps) for v in views]
        uniformity = _regularizer_views(us, kernel, estimator, method, block_size, world.sizes)
    return _combine({"uniformity": uniformity}, {"uniformity": 1.0})


class KernelUniformityLoss(_TermsLoss):
    r"""Squared MMD to the uniform distribution for any dotkernels kernel; module of :func:`kernel_uniformity_loss`.

    ``loss(z)`` (one view), ``loss(z1, z2)`` or ``loss([v1, v2, ...])`` gives the mean over views of
    :math:`\frac{1}{N^2}\sum_{ij}\varphi(\langle u_i, u_j\rangle) - a_0` (``estimator="v"``) on the normalised rows
    (``eps`` floor, default 1e-12). The released SFRIK regulariser is this loss with ``kernel="sfrik"``.

    Examples
    --------
    >>> import torch
    >>> loss = KernelUniformityLoss("gaussian:tau=2")
    >>> float(loss(torch.randn(256, 16))) < 0.01
    True
    """

    _loss_fn = staticmethod(kernel_uniformity_loss)
    _loss_options = ("kernel", "estimator", "method", "block_size", "eps", "check_finite")

    def __init__(
        self,
        kernel: str | DotProductKernel = "sfrik",
        estimator: str = "v",
        method: str = "auto",
        block_size: int | None = None,
        eps: float = _DEFAULT_EPS,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.kernel = _as_kernel(kernel)
        self.estimator = _check_estimator(estimator)
        self.method = _check_method(method)
        self.block_size = _check_block(block_size)
        self.eps = _check_eps(eps)
        self.check_finite = bool(check_finite)

    def forward(self, z1: Views, z2: Tensor | None = None) -> Tensor:
        """Scalar loss of one view ``z1``, two views ``(z1, z2)`` or a list of views."""
        return self._call(z1, z2).loss

    def extra_repr(self) -> str:
        return f"kernel={self.kernel!r}, estimator={self.estimator!r}, method={self.method!r}"


# ----------------------------------------------------------------------------------------------------
# SFRIK
# ----------------------------------------------------------------------------------------------------


def sfrik_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    weights: Sequence[float] | None = (1.0, 40.0, 40.0),
    kernel: str | DotProductKernel | None = None,
    sim_coeff: float = 4000.0,
    mmd_coeff: float = 1.0,
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    eps: float = _DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""SFRIK loss: invariance of the normalised views plus the kernel regulariser (Zheng et al., ICLR 2023).

    With :math:`u = z / \max(\|z\|, \varepsilon)` row-wise,

    .. math::

        \mathcal L = \texttt{sim\_coeff} \cdot \frac{1}{N q} \sum_{i} \|u^{(1)}_i - u^{(2)}_i\|_2^2
        + \texttt{mmd\_coeff} \cdot \frac12 \big(R(U^{(1)}) + R(U^{(2)})\big),
        \qquad R(U) = \frac{1}{N^2}\sum_{i,j} \varphi(\langle u_i, u_j\rangle) - a_0,

    the released code's form (``sim_coeff * F.mse_loss(u1, u2) + mmd_coeff * mean of R``). Divided by
    ``sim_coeff / q`` it is the paper's :math:`\frac1N\sum_i\|u^{(1)}_i - u^{(2)}_i\|^2 + \frac\lambda2 \sum_v R`
    with :math:`\lambda = \texttt{mmd\_coeff} \cdot q / \texttt{sim\_coeff}` (2.048 for q = 8192 and 4000).
    The SFRIK kernel :math:`\varphi = \sum_{l=1}^{L} b_l P_{l,q}` has weights ``(1, 40, 40)`` (:math:`a_0 = 0`).
    The invariance uses the local batch (rank share), the regulariser the global batch (local rows against the
    gathered embeddings). Multi-crop: invariance averaged over the view pairs, regulariser over all views.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of ``V >= 2`` views.
    weights : sequence of float
        :math:`b_1, \dots, b_L` of the SFRIK kernel (ignored when ``kernel`` is given).
    kernel : str or DotProductKernel, optional
        Any dotkernels kernel or string (``"gaussian:tau=2"``, ``"heat:tau=0.01"``, ``"legendre:1,40"``, ...);
        replaces the SFRIK kernel.
    sim_coeff : float
        Weight of the invariance (mean over ``n q`` entries): 4000 for q = 8192 (ResNet-18, the paper's
        ImageNet-20% runs); 40000 for q = 32768 (ResNet-50, ImageNet-1k). See :data:`SFRIK_PRESETS`.
    mmd_coeff : float
        Weight of the regulariser (1 in the paper).
    estimator, method, block_size
        See :func:`kernel_uniformity_loss`.
    eps : float
        Normalisation floor (default 1e-12).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance`` (rank share; weight ``sim_coeff``) and ``uniformity`` (rank share of the global
        regulariser, mean over views; weight ``mmd_coeff``).
    """
    kernel_obj = _sfrik_kernel(weights, kernel)
    sim_coeff = _nonnegative("sim_coeff", sim_coeff)
    mmd_coeff = _nonnegative("mmd_coeff", mmd_coeff)
    estimator = _check_estimator(estimator)
    method = _check_method(method)
    block_size = _check_block(block_size)
    eps = _check_eps(eps)
    views, world = _prepare(z1, z2, check_finite)
    with _no_autocast(views[0].device):
        us = [F.normalize(v, dim=1, eps=eps) for v in views]
        q = us[0].shape[1]
        inv = [(us[a] - us[b]).pow(2).sum() * (world.share / q) for a, b in _pairs(len(us))]
        invariance = torch.stack(inv).mean()
        uniformity = _regularizer_views(us, kernel_obj, estimator, method, block_size, world.sizes)
    return _combine(
        {"invariance": invariance, "uniformity": uniformity},
        {"invariance": sim_coeff, "uniformity": mmd_coeff},
    )


class SFRIKLoss(_TermsLoss):
    r"""SFRIK (Zheng et al., ICLR 2023): ``sim_coeff * mse(u1, u2) + mmd_coeff * mean_v R(u_v)``.

    Module form of :func:`sfrik_loss`. Defaults are the paper's ResNet-18 / q = 8192 setting (kernel weights
    (1, 40, 40), ``sim_coeff = 4000``, ``mmd_coeff = 1``); use ``sim_coeff = 40000`` for q = 32768 (ResNet-50),
    or :meth:`from_preset`. ``kernel=`` swaps in any dotkernels kernel (``"gaussian:tau=2"``, a kernel object, ...;
    ``weights`` is then ignored), so every kernel trains the same way.

    Examples
    --------
    >>> import torch
    >>> loss = SFRIKLoss()
    >>> z1, z2 = torch.randn(32, 64), torch.randn(32, 64)
    >>> terms = loss.forward_terms(z1, z2)
    >>> sorted(terms.terms), terms.weights["invariance"]
    (['invariance', 'uniformity'], 4000.0)
    """

    _loss_fn = staticmethod(sfrik_loss)
    _loss_options = ("kernel", "sim_coeff", "mmd_coeff", "estimator", "method", "block_size", "eps", "check_finite")

    def __init__(
        self,
        weights: Sequence[float] | None = (1.0, 40.0, 40.0),
        kernel: str | DotProductKernel | None = None,
        sim_coeff: float = 4000.0,
        mmd_coeff: float = 1.0,
        estimator: str = "v",
        method: str = "auto",
        block_size: int | None = None,
        eps: float = _DEFAULT_EPS,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.kernel = _sfrik_kernel(weights, kernel)
        self.sim_coeff = _nonnegative("sim_coeff", sim_coeff)
        self.mmd_coeff = _nonnegative("mmd_coeff", mmd_coeff)
        self.estimator = _check_estimator(estimator)
        self.method = _check_method(method)
        self.block_size = _check_block(block_size)
        self.eps = _check_eps(eps)
        self.check_finite = bool(check_finite)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> SFRIKLoss:
        """Build from a preset of :data:`SFRIK_PRESETS` (``"resnet18"``, ``"resnet50"``), then apply overrides."""
        return _from_preset(cls, SFRIK_PRESETS, name, overrides)

    def resolved_method(self, n_local: int, n_total: int, q: int) -> tuple[str, int]:
        """The regulariser's method and block size for this batch layout (see ``resolve_method``)."""
        return resolve_method(self.method, self.kernel, q, n_local, n_total, self.block_size)

    def extra_repr(self) -> str:
        return (
            f"kernel={self.kernel!r}, sim_coeff={self.sim_coeff}, mmd_coeff={self.mmd_coeff}, "
            f"estimator={self.estimator!r}, method={self.method!r}"
        )


# ----------------------------------------------------------------------------------------------------
# factory
# ----------------------------------------------------------------------------------------------------

#: Names accepted by :func:`build_loss` (lower case) and the loss each builds.
LOSS_NAMES: dict[str, str] = {
    "sfrik": "SFRIKLoss (SFRIK kernel, or kernel=...)",
    "kernel": "SFRIKLoss with the given kernel (kernel= required)",
    "auh": "AlignUniformLoss",
    "vicreg": "VICRegLoss",
    "barlow": "BarlowTwinsLoss",
    "simclr": "NTXentLoss",
}
_LOSS_ALIASES = {
    "align_uniform": "auh",
    "alignuniform": "auh",
    "barlowtwins": "barlow",
    "barlow_twins": "barlow",
    "ntxent": "simclr",
    "nt_xent": "simclr",
}


def build_loss(method: str, kernel: str | DotProductKernel | None = None, **options: Any) -> _TermsLoss:
    """Build the training loss of a self-supervised method by name.

    Parameters
    ----------
    method : str
        ``"sfrik"`` (:class:`SFRIKLoss`; the SFRIK kernel unless ``kernel`` is given), ``"kernel"``
        (:class:`SFRIKLoss` with ``kernel``, which is then required: invariance + MMD to uniform with that
        kernel), ``"auh"`` (:class:`AlignUniformLoss`; ``preset="sfrik"`` or ``"wang_isola"`` selects
        :data:`ALIGN_UNIFORM_PRESETS`), ``"vicreg"``, ``"barlow"``, ``"simclr"`` (:class:`NTXentLoss`).
        Case-insensitive; aliases ``align_uniform``, ``barlow_twins``, ``nt_xent``.
    kernel : str or DotProductKernel, optional
        Kernel of the ``"sfrik"`` / ``"kernel"`` losses; must be None for the baselines.
    **options
        Keyword arguments of the loss class (``sim_coeff``, ``mmd_coeff``, ``weights``, ``temperature``, ...);
        ``preset=`` selects :data:`SFRIK_PRESETS` (``"resnet18"`` / ``"resnet50"``) for ``"sfrik"`` and
        ``"kernel"`` (as :meth:`SFRIKLoss.from_preset`) and :data:`ALIGN_UNIFORM_PRESETS` for ``"auh"``.

    Returns
    -------
    nn.Module
        A loss module with ``forward`` and ``forward_terms``.

    Raises
    ------
    ValueError
        Unknown method, a kernel given to a baseline, or ``"kernel"`` without a kernel.

    Examples
    --------
    >>> build_loss("sfrik").sim_coeff
    4000.0
    >>> build_loss("kernel", "gaussian:tau=2").kernel
    GaussianKernel(tau=2.0)
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    name = method.strip().lower()
    name = _LOSS_ALIASES.get(name, name)
    if name not in LOSS_NAMES:
        raise ValueError(f"unknown loss method {method!r}; choose from {sorted(LOSS_NAMES)}")
    if name in ("sfrik", "kernel"):
        if name == "kernel" and kernel is None:
            raise ValueError("build_loss('kernel') needs kernel=... (e.g. 'gaussian:tau=2'); use 'sfrik' otherwise")
        preset = options.pop("preset", None)
        if kernel is not None:
            options["kernel"] = _as_kernel(kernel)
        if preset is not None:
            return SFRIKLoss.from_preset(preset, **options)
        return SFRIKLoss(**options)
    if kernel is not None:
        raise ValueError(f"kernel= applies to the 'sfrik' and 'kernel' losses, not to {name!r}")
    if name == "auh":
        preset = options.pop("preset", None)
        return AlignUniformLoss.from_preset(preset, **options) if preset is not None else AlignUniformLoss(**options)
    cls: type[_TermsLoss] = {"vicreg": VICRegLoss, "barlow": BarlowTwinsLoss, "simclr": NTXentLoss}[name]
    return cls(**options)
