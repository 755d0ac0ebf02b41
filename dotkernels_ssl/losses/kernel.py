r"""The kernel losses: the kernel uniformity loss and SFRIK, and :func:`build_loss`, the factory of every loss.

- :class:`KernelUniformityLoss` / :func:`kernel_uniformity_loss`: squared MMD to the uniform distribution on the
  sphere for ANY dotkernels kernel, averaged over views; term ``uniformity``.
- :class:`SFRIKLoss` / :func:`sfrik_loss`: invariance + kernel regulariser (Zheng et al., ICLR 2023), the SFRIK
  kernel by default and any dotkernels kernel through ``kernel=``; terms ``invariance`` and ``uniformity``.
- :func:`build_loss`: ``build_loss("sfrik" | "kernel" | "auh" | "vicreg" | "barlow" | "simclr", kernel=...,
  preset=..., **options)``, presets from :data:`~dotkernels_ssl.losses.PRESETS`.

Normalisation
-------------
Embeddings are projected onto the sphere inside the losses, :math:`u_i = z_i / \max(\|z_i\|_2, \varepsilon)`
(``torch.nn.functional.normalize``), with ``eps = 1e-12`` by default: rows with a norm below ``eps`` are only
scaled, not normalised (they contribute a point near the origin, and the gradient stays finite).

Distributed
-----------
The regulariser uses the global batch: every rank evaluates its local rows of the Gram matrix against the
all-gathered embeddings (:func:`dotkernels_ssl.losses.functional.kernel_regularizer`), a *rank share* whose mean over
ranks is the global :math:`R` (``moments`` method: the replicated global value). The SFRIK invariance is the mean
squared error of the local rows as a rank share :math:`\frac{W}{N q}\sum_{i \in r}\|u^{(1)}_i - u^{(2)}_i\|^2` (the
local mean when the local batch sizes are equal, which is the released code's local ``mse_loss``). With DDP's
gradient averaging the parameter gradients equal the single-process ones on the concatenated batch, and the value
each rank returns is that of the global loss (``share + (global - share).detach()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dotkernels.kernels import DotProductKernel, SFRIKKernel

from . import distributed as D
from ._base import (
    DEFAULT_EPS,
    LossTerms,
    TermsLoss,
    Views,
    as_kernel,
    check_options,
    combine,
    no_autocast,
    prepare_views,
    squared_distance_share,
)
from .baselines import AlignUniformLoss, BarlowTwinsLoss, NTXentLoss, VICRegLoss
from .functional import kernel_regularizer

__all__ = [
    "LOSS_NAMES",
    "KernelUniformityLoss",
    "SFRIKLoss",
    "build_loss",
    "kernel_uniformity_loss",
    "sfrik_kernel",
    "sfrik_loss",
]


def sfrik_kernel(
    coefficients: Sequence[float] | None = None, kernel: str | DotProductKernel | None = None
) -> DotProductKernel:
    r"""The kernel of :class:`SFRIKLoss`: ``kernel``, or the SFRIK kernel of ``coefficients`` (default (1, 40, 40)).

    Parameters
    ----------
    coefficients : sequence of float, optional
        :math:`b_1, \dots, b_L` of the SFRIK kernel (default ``(1, 40, 40)``).
    kernel : str or DotProductKernel, optional
        Any kernel or kernel string, used as it is.

    Returns
    -------
    DotProductKernel
        The kernel of the regulariser.

    Raises
    ------
    ValueError
        Both ``coefficients`` and ``kernel`` are given.

    See Also
    --------
    dotkernels.kernels.SFRIKKernel : The SFRIK kernel.
    dotkernels.kernels.parse_kernel : Kernel strings.

    Examples
    --------
    >>> sfrik_kernel((1.0, 40.0))
    SFRIKKernel(coefficients=(1.0, 40.0))
    """
    if kernel is not None and coefficients is not None:
        raise ValueError(
            "pass either coefficients (the SFRIK kernel's b_1..b_L) or kernel (any dotkernels kernel), not both"
        )
    if kernel is not None:
        return as_kernel(kernel)
    return SFRIKKernel() if coefficients is None else SFRIKKernel(coefficients)  # it checks them (named)


def _mean_regularizer(
    us: list[Tensor], kernel: DotProductKernel, estimator: str, method: str, block_size: int | None, sizes: list[int]
) -> Tensor:
    """Mean over views of the kernel regulariser of the normalised views (global batch; rank shares)."""
    sizes_or_none = sizes if D.is_distributed() else None
    values = [
        kernel_regularizer(u, kernel, estimator=estimator, method=method, block_size=block_size, sizes=sizes_or_none)
        for u in us
    ]
    return torch.stack(values).mean()


# ----------------------------------------------------------------------------------------------------
# kernel uniformity
# ----------------------------------------------------------------------------------------------------


def kernel_uniformity_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    kernel: str | DotProductKernel = "sfrik",
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    eps: float = DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""Squared MMD to the uniform distribution on :math:`S^{q-1}`, for any dotkernels kernel, averaged over views.

    On the normalised rows :math:`u_i = z_i / \max(\|z_i\|, \varepsilon)` of each view (global batch of ``N`` rows
    under ``torch.distributed``),

    .. math::

        \mathrm{MMD}_V^2 = \frac{1}{N^2}\sum_{i,j} \varphi(\langle u_i, u_j\rangle) - a_0, \qquad
        \mathrm{MMD}_U^2 = \frac{1}{N(N-1)}\sum_{i \ne j} \varphi(\langle u_i, u_j\rangle) - a_0,

    with :math:`a_0` the uniform mean embedding (``kernel.uniform_mean_embedding(q=q)``). Computed by the fused
    functions of :mod:`dotkernels_ssl.losses.functional` (one pass over the Gram rows, centred sums, local rows
    under DDP).

    Parameters
    ----------
    z1, z2 : Tensor
        One view ``z1`` of shape ``(n, q)``, two views, or ``z1`` a list of views.
    kernel : str or DotProductKernel
        Any dotkernels kernel or :func:`dotkernels.parse_kernel` string (default: the SFRIK kernel (1, 40, 40)).
    estimator : {"v", "u"}
        V-statistic (diagonal included) or U-statistic.
    method : {"auto", "gram", "blocked", "moments"}
        See :func:`dotkernels_ssl.losses.functional.resolve_method`.
    block_size : int, optional
        Rows per Gram block (``"blocked"``, or ``"auto"`` when smaller than the local batch).
    eps : float
        Normalisation floor (default 1e-12).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Term ``uniformity`` (weight 1): the mean over views; the global value under ``torch.distributed``.

    See Also
    --------
    KernelUniformityLoss : The module.
    sfrik_loss : With an invariance term.
    kernel_regularizer : The regulariser of one view.
    dotkernels.mmd.mmd2_uniform : The same squared MMD on any array library.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf and A. Smola, "A kernel two-sample test",
       Journal of Machine Learning Research 13, 723-773, 2012.

    Examples
    --------
    >>> import torch
    >>> float(kernel_uniformity_loss(torch.randn(512, 16), kernel="gaussian:gamma=2").loss) < 0.01
    True
    """
    o = check_options(locals())
    us, world = prepare_views(z1, z2, check_finite=check_finite, min_views=1, normalize_eps=o["eps"])
    with no_autocast(us[0].device):
        uniformity = _mean_regularizer(us, o["kernel"], o["estimator"], o["method"], o["block_size"], world.sizes)
    return combine({"uniformity": uniformity}, {"uniformity": 1.0})


class KernelUniformityLoss(TermsLoss):
    r"""Squared MMD to the uniform distribution for any dotkernels kernel; module of :func:`kernel_uniformity_loss`.

    ``loss(z)`` (one view), ``loss(z1, z2)`` or ``loss([v1, v2, ...])`` gives the mean over views of
    :math:`\frac{1}{N^2}\sum_{ij}\varphi(\langle u_i, u_j\rangle) - a_0` (``estimator="v"``) on the normalised rows
    (``eps`` floor, default 1e-12). The released SFRIK regulariser is this loss with ``kernel="sfrik"``. Under DDP
    the returned value is the global loss on every rank while the gradient is this rank's exact share
    (``share + (global - share).detach()``).

    Parameters
    ----------
    kernel, estimator, method, block_size, eps, check_finite
        The options of :func:`kernel_uniformity_loss` (same names, defaults and order, positional or keyword),
        checked once here and stored.

    See Also
    --------
    kernel_uniformity_loss : The functional twin.
    SFRIKLoss : With an invariance term.
    dotkernels.mmd.mmd2_uniform : The same squared MMD on any array library.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf and A. Smola, "A kernel two-sample test",
       Journal of Machine Learning Research 13, 723-773, 2012.
    .. [2] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023,
       arXiv:2208.00789.

    Examples
    --------
    >>> import torch
    >>> loss = KernelUniformityLoss("gaussian:gamma=2")
    >>> float(loss(torch.randn(256, 16))) < 0.01
    True
    """

    function = staticmethod(kernel_uniformity_loss)


# ----------------------------------------------------------------------------------------------------
# SFRIK
# ----------------------------------------------------------------------------------------------------


def sfrik_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    coefficients: Sequence[float] | None = None,
    kernel: str | DotProductKernel | None = None,
    invariance_weight: float = 4000.0,
    uniformity_weight: float = 1.0,
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    eps: float = DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""SFRIK loss: invariance of the normalised views plus the kernel regulariser (Zheng et al., ICLR 2023).

    With :math:`u = z / \max(\|z\|, \varepsilon)` row-wise,

    .. math::

        \mathcal L = w_I \cdot \frac{1}{N q} \sum_{i} \|u^{(1)}_i - u^{(2)}_i\|_2^2
        + w_U \cdot \frac12 \big(R(U^{(1)}) + R(U^{(2)})\big),
        \qquad R(U) = \frac{1}{N^2}\sum_{i,j} \varphi(\langle u_i, u_j\rangle) - a_0,

    with :math:`w_I` = ``invariance_weight`` and :math:`w_U` = ``uniformity_weight``: the released code's form
    (``sim_coeff * F.mse_loss(u1, u2) + mmd_coeff * mean of R``). Divided by :math:`w_I / q` it is the paper's
    :math:`\frac1N\sum_i\|u^{(1)}_i - u^{(2)}_i\|^2 + \frac\lambda2 \sum_v R` with :math:`\lambda = w_U q / w_I`
    (2.048 for q = 8192 and 4000). The SFRIK kernel :math:`\varphi = \sum_{l=1}^{L} b_l P_{l,q}` has coefficients
    ``(1, 40, 40)`` (:math:`a_0 = 0`). The invariance uses the local batch (rank share), the regulariser the global
    batch (local rows against the gathered embeddings). Multi-crop: invariance averaged over the view pairs,
    regulariser over all views.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of ``V >= 2`` views.
    coefficients : sequence of float, optional
        :math:`b_1, \dots, b_L` of the SFRIK kernel (default ``(1, 40, 40)``).
    kernel : str or DotProductKernel, optional
        Any dotkernels kernel or string (``"gaussian:gamma=2"``, ``"heat:time=0.01"``, ``"sfrik:1,40"``, ...)
        instead of the SFRIK kernel; giving both ``coefficients`` and ``kernel`` raises ``ValueError``.
    invariance_weight : float
        Weight of the invariance (mean over ``n q`` entries; the released code's ``sim_coeff``): 4000 for q = 8192
        (ResNet-18), 40000 for q = 32768 (ResNet-50); see :data:`~dotkernels_ssl.losses.PRESETS`.
    uniformity_weight : float
        Weight of the regulariser (the released code's ``mmd_coeff``, 1 in the paper).
    estimator, method, block_size
        See :func:`kernel_uniformity_loss`.
    eps : float
        Normalisation floor (default 1e-12).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance`` and ``uniformity`` (mean over views); global values under ``torch.distributed``.

    See Also
    --------
    SFRIKLoss : The module.
    kernel_uniformity_loss : The regulariser alone.
    dotkernels.kernels.SFRIKKernel : The kernel of the regulariser.

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023,
       arXiv:2208.00789.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(32, 64)
    >>> float(sfrik_loss(z, z).terms["invariance"])
    0.0
    """
    kernel = sfrik_kernel(coefficients, kernel)
    o = check_options(locals())
    us, world = prepare_views(z1, z2, check_finite=check_finite, normalize_eps=o["eps"])
    with no_autocast(us[0].device):
        invariance = squared_distance_share(us, world) / us[0].shape[1]
        uniformity = _mean_regularizer(us, o["kernel"], o["estimator"], o["method"], o["block_size"], world.sizes)
    return combine(
        {"invariance": invariance, "uniformity": uniformity},
        {"invariance": o["invariance_weight"], "uniformity": o["uniformity_weight"]},
    )


class SFRIKLoss(TermsLoss):
    r"""SFRIK (Zheng et al., ICLR 2023): ``invariance_weight * mse(u1, u2) + uniformity_weight * mean_v R(u_v)``.

    Module of :func:`sfrik_loss`. Defaults are the paper's ResNet-18 / q = 8192 setting (kernel coefficients
    (1, 40, 40), ``invariance_weight = 4000``, ``uniformity_weight = 1``); ``from_preset("resnet50")`` for q = 32768.
    ``kernel=`` swaps in any dotkernels kernel (``"gaussian:gamma=2"``, a kernel object, ...), so every kernel trains
    the same way; ``coefficients`` and ``kernel`` together raise ``ValueError``. Under DDP the returned value (and
    each term of :meth:`forward_terms`) is that of the global loss on every rank, while the gradient is this rank's
    exact share (``share + (global - share).detach()``, the global value all-reduced without autograd).

    Parameters
    ----------
    coefficients, kernel, invariance_weight, uniformity_weight, estimator, method, block_size, eps, check_finite
        The options of :func:`sfrik_loss` (same names, defaults and order, positional or keyword), checked once
        here and stored; see :func:`sfrik_loss`.

    See Also
    --------
    sfrik_loss : The functional twin.
    KernelUniformityLoss : The kernel regulariser alone.
    dotkernels.kernels.SFRIKKernel : The kernel of the regulariser.

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023,
       arXiv:2208.00789.

    Examples
    --------
    >>> import torch
    >>> loss = SFRIKLoss()
    >>> z1, z2 = torch.randn(32, 64), torch.randn(32, 64)
    >>> terms = loss.forward_terms(z1, z2)
    >>> sorted(terms.terms), terms.weights["invariance"]
    (['invariance', 'uniformity'], 4000.0)
    """

    function = staticmethod(sfrik_loss)
    preset_method = "sfrik"

    @staticmethod
    def prepare_options(options: dict[str, Any]) -> dict[str, Any]:
        """The kernel resolved once from ``coefficients`` or ``kernel`` (:func:`sfrik_kernel`).

        Parameters
        ----------
        options : dict[str, Any]
            The options bound to the constructor's signature, defaults applied.

        Returns
        -------
        dict[str, Any]
            The options with ``kernel`` set and ``coefficients`` removed.

        See Also
        --------
        sfrik_kernel : The resolution.

        Examples
        --------
        >>> SFRIKLoss.prepare_options({"coefficients": (1.0, 40.0), "kernel": None})
        {'kernel': SFRIKKernel(coefficients=(1.0, 40.0))}
        """
        options["kernel"] = sfrik_kernel(options.pop("coefficients"), options["kernel"])
        return options


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
_LOSS_CLASSES: dict[str, type[TermsLoss]] = {
    "sfrik": SFRIKLoss,
    "kernel": SFRIKLoss,
    "auh": AlignUniformLoss,
    "vicreg": VICRegLoss,
    "barlow": BarlowTwinsLoss,
    "simclr": NTXentLoss,
}


def _method_name(method: Any) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    name = method.strip().lower()
    name = _LOSS_ALIASES.get(name, name)
    if name not in LOSS_NAMES:
        raise ValueError(f"unknown loss method {method!r}; choose from {sorted(LOSS_NAMES)}")
    return name


def build_loss(
    method: str, *, kernel: str | DotProductKernel | None = None, preset: str | None = None, **options: Any
) -> TermsLoss:
    """Build the training loss of a self-supervised method by name.

    Parameters
    ----------
    method : str
        ``"sfrik"`` (:class:`SFRIKLoss`; the SFRIK kernel unless ``kernel`` is given), ``"kernel"``
        (:class:`SFRIKLoss` with ``kernel``, which is then required: invariance + MMD to uniform with that
        kernel), ``"auh"`` (:class:`~dotkernels_ssl.losses.AlignUniformLoss`), ``"vicreg"``, ``"barlow"``,
        ``"simclr"`` (:class:`~dotkernels_ssl.losses.NTXentLoss`). Case-insensitive; aliases ``align_uniform``,
        ``barlow_twins``, ``nt_xent``.
    kernel : str or DotProductKernel, optional
        Kernel of the ``"sfrik"`` / ``"kernel"`` losses; must be None for the baselines.
    preset : str, optional
        A name of ``PRESETS[method]`` (:data:`~dotkernels_ssl.losses.PRESETS`: ``"resnet18"``, ``"resnet50"``,
        ``"fashion-mnist"``, ...): its options, overridden by ``options``.
    **options
        Keyword arguments of the loss class (``invariance_weight``, ``uniformity_weight``, ``coefficients``,
        ``temperature``, ...).

    Returns
    -------
    TermsLoss
        A loss module with ``forward`` and ``forward_terms``.

    Raises
    ------
    ValueError
        Unknown method or preset, a kernel given to a baseline, ``"kernel"`` without a kernel, or conflicting
        options (``coefficients`` with ``kernel``).

    See Also
    --------
    PRESETS : The published hyper-parameters.
    TermsLoss.from_preset : A preset of one loss class.

    Examples
    --------
    >>> build_loss("sfrik").invariance_weight
    4000.0
    >>> build_loss("kernel", kernel="gaussian:gamma=2", preset="resnet50").invariance_weight
    40000.0
    """
    name = _method_name(method)
    if name == "kernel" and kernel is None:
        raise ValueError("build_loss('kernel') needs kernel=... (e.g. 'gaussian:gamma=2'); use 'sfrik' otherwise")
    if kernel is not None:
        if name not in ("sfrik", "kernel"):
            raise ValueError(f"kernel= applies to the 'sfrik' and 'kernel' losses, not to {name!r}")
        options["kernel"] = kernel
    cls = _LOSS_CLASSES[name]
    return cls(**options) if preset is None else cls.from_preset(preset, **options)
