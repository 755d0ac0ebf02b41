r"""What every loss shares: :class:`LossTerms`, option validation, view handling, the batch layout and the module base.

Terms
-----
A loss is a weighted sum of named, unweighted terms, :math:`\text{loss} = \sum_k \text{weights}[k] \cdot
\text{terms}[k]`; the weight of term ``X`` is the option ``X_weight``. The functional twins return a
:class:`LossTerms`; the modules' ``forward`` returns its ``loss`` and ``forward_terms`` the whole.

Views
-----
Every loss takes two views ``(z1, z2)`` of shape ``(n, q)`` (row ``i`` of each view is the same image) or a list of
``V >= 2`` views (multi-crop; the first two are the global views). Pairwise terms are averaged over the pairs
``(0, 1)`` and ``(g, v)`` for ``g in {0, 1}``, ``v >= 2``; per-view terms over all views. Inputs in float16/bfloat16
are promoted to float32 and the losses run with autocast disabled (covariances and Gram matrices in half precision
lose the digits that matter); float64 stays float64.

Distributed
-----------
Under ``torch.distributed`` each rank passes its local rows and every term is computed as a *rank share*
:math:`L_r` whose mean over the ``W`` ranks is the term of the global batch (a replicated global statistic is its
own share). :func:`combine` then returns, on every rank,

.. math::  L_r + \Big(\frac1W \sum_s L_s - L_r\Big)_{\text{detached}}

for the loss and for each term (one all-reduce of the detached terms, no autograd): the *value* is that of the
global loss, identical on all ranks, so what a rank prints or logs is the loss of the whole batch; the *gradient*
is the exact rank share's, so DDP's averaging gives the full-batch gradient (see
:mod:`dotkernels_ssl.losses.distributed`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dotkernels._validate import check_block_size, check_estimator, check_real
from dotkernels.kernels import DotProductKernel, parse_kernel

from . import distributed as D
from .presets import PRESETS

__all__ = ["LossTerms", "TermsLoss"]

Views = Tensor | Sequence[Tensor]

#: Methods of :func:`dotkernels_ssl.losses.functional.kernel_regularizer`.
METHODS = ("auto", "gram", "blocked", "moments")
#: Reductions of the Wang & Isola alignment.
ALIGN_REDUCTIONS = ("sample", "element")
#: Default normalisation floor of the losses that project onto the sphere.
DEFAULT_EPS = 1e-12


class LossTerms(NamedTuple):
    """A loss together with its unweighted terms and their weights.

    Parameters
    ----------
    loss : Tensor
        The scalar loss.
    terms : dict[str, Tensor]
        The unweighted scalar terms.
    weights : dict[str, float]
        The coefficient of each term.

    Attributes
    ----------
    loss : Tensor
        The scalar loss, ``sum(weights[k] * terms[k] for k in terms)``.
    terms : dict[str, Tensor]
        Unweighted scalar terms, attached to the autograd graph (call :meth:`scalars` for logging).
    weights : dict[str, float]
        The coefficient of each term in ``loss``.

    See Also
    --------
    TermsLoss.forward_terms : The loss modules' call that returns it.

    Examples
    --------
    >>> import torch
    >>> t = LossTerms(torch.tensor(3.0), {"a": torch.tensor(1.0), "b": torch.tensor(0.5)}, {"a": 2.0, "b": 2.0})
    >>> t.scalars()
    {'loss': 3.0, 'a': 1.0, 'b': 0.5}
    """

    loss: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, float]

    def scalars(self) -> dict[str, float]:
        """Detached Python floats ``{"loss": ..., **terms}`` for logging (one device sync).

        Returns
        -------
        dict[str, float]
            ``loss`` and then every term, by name.

        See Also
        --------
        TermsLoss.forward_terms : What returns the terms.

        Examples
        --------
        >>> import torch
        >>> LossTerms(torch.tensor(2.0), {"a": torch.tensor(1.0)}, {"a": 2.0}).scalars()
        {'loss': 2.0, 'a': 1.0}
        """
        names = ["loss", *self.terms]
        values = torch.stack([self.loss.detach(), *(t.detach() for t in self.terms.values())]).tolist()
        return dict(zip(names, values))


# ----------------------------------------------------------------------------------------------------
# options: one validator per option name, used by the functions and the modules alike
# ----------------------------------------------------------------------------------------------------


def as_kernel(kernel: Any) -> DotProductKernel:
    """A :class:`dotkernels.DotProductKernel` from a kernel or a :func:`dotkernels.parse_kernel` string."""
    if not isinstance(kernel, (str, DotProductKernel)):
        raise TypeError(f"kernel must be a string or a DotProductKernel, got {type(kernel).__name__}")
    return parse_kernel(kernel)


def check_method(method: Any) -> str:
    """One of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, name: str) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        return value

    return check


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _nonnegative(value: Any, name: str) -> float:
    return check_real(value, name, nonnegative=True)


def _positive(value: Any, name: str) -> float:
    return check_real(value, name, positive=True)


_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "invariance_weight": _nonnegative,
    "uniformity_weight": _nonnegative,
    "variance_weight": _nonnegative,
    "covariance_weight": _nonnegative,
    "redundancy_weight": _nonnegative,
    "target_std": _nonnegative,
    "gamma": _positive,
    "alpha": _positive,
    "temperature": _positive,
    "eps": _positive,
    "bn_eps": _nonnegative,
    "align_reduction": _choice(ALIGN_REDUCTIONS),
    "estimator": lambda value, name: check_estimator(value),
    "method": lambda value, name: check_method(value),
    "block_size": lambda value, name: check_block_size(value),
    "kernel": lambda value, name: as_kernel(value),
    "check_finite": _flag,
}


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a loss with every option checked by the one validator of its name.

    A loss function passes its own arguments (``check_options(locals())`` as its first statement); names without
    a validator (the views) pass through unchanged. Raises ValueError/TypeError naming the option.
    """
    return {
        name: _OPTION_CHECKS[name](value, name) if name in _OPTION_CHECKS else value for name, value in options.items()
    }


# ----------------------------------------------------------------------------------------------------
# views and batch layout
# ----------------------------------------------------------------------------------------------------


def no_autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast disabled on ``device`` (a null context on device types without autocast)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


def _view_list(z1: Views, z2: Tensor | None, min_views: int) -> list[Tensor]:
    if isinstance(z1, (list, tuple)):
        if z2 is not None:
            raise TypeError("pass either two tensors (z1, z2) or one list of views, not both")
        views = list(z1)
    elif isinstance(z1, Tensor):
        views = [z1] if z2 is None else [z1, z2]
    else:
        raise TypeError(f"z1 must be a torch.Tensor or a list or tuple of views, got {type(z1).__name__}")
    if len(views) < min_views:
        need = "two views: pass (z1, z2) or a list of views" if min_views == 2 else f"{min_views} view(s)"
        raise ValueError(f"this loss needs at least {need}, got {len(views)}")
    return views


def check_matrix(x: Any, name: str) -> Tensor:
    """``x`` itself when it is a 2-D floating-point tensor (rows of points); TypeError/ValueError naming ``name``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, dim), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def _check_view(k: int, v: Any, first: Tensor) -> None:
    check_matrix(v, f"view {k}")
    if v.shape != first.shape:
        raise ValueError(
            f"all views must have the same shape: view 0 is {tuple(first.shape)}, view {k} is {tuple(v.shape)}"
        )
    if v.dtype != first.dtype or v.device != first.device:
        raise ValueError(f"view {k} has dtype/device {v.dtype}/{v.device}, view 0 {first.dtype}/{first.device}")


def as_views(z1: Views, z2: Tensor | None = None, *, min_views: int = 2) -> list[Tensor]:
    """The views of a loss call, checked: ``(z1, z2)``, one tensor (``min_views = 1``) or a list of views."""
    views = _view_list(z1, z2, min_views)
    for k, v in enumerate(views):
        _check_view(k, v, views[0])
    if views[0].shape[0] < 1 or views[0].shape[1] < 1:
        raise ValueError(f"views must be non-empty, got shape {tuple(views[0].shape)}")
    return views


def _check_finite(views: list[Tensor]) -> None:
    """One fused reduction and one sync; the per-view test only runs when the sum is not finite."""
    acc = torch.float64 if views[0].dtype == torch.float64 else torch.float32
    total = torch.stack([v.detach().sum(dtype=acc) for v in views]).sum()
    if bool(torch.isfinite(total)):
        return
    for k, v in enumerate(views):
        if not bool(torch.isfinite(v.detach()).all()):
            raise ValueError(f"view {k} contains non-finite values (nan or inf)")


@dataclass(frozen=True)
class World:
    """Batch layout across ranks: local sizes, global size ``N``, world size ``W``, this rank's rows."""

    sizes: list[int]
    world: int
    total: int
    rows: slice

    @property
    def share(self) -> float:
        """Scale turning a local sum into this rank's share of a global mean: ``W / N``."""
        return self.world / self.total


def world_layout(n_local: int, device: torch.device) -> World:
    """The :class:`World` of a local batch of ``n_local`` rows (one small collective under DDP)."""
    sizes = D.gather_sizes(n_local, device) if D.is_distributed() else [n_local]
    total = sum(sizes)
    if total < 2:
        raise ValueError(f"the (global) batch must have at least 2 rows, got {total}")
    return World(sizes, len(sizes), total, D.local_slice(n_local, sizes))


def prepare_views(
    z1: Views, z2: Tensor | None, *, check_finite: bool, min_views: int = 2, normalize_eps: float | None = None
) -> tuple[list[Tensor], World]:
    r"""Checked (finite when ``check_finite``), half-precision-promoted views and their batch layout.

    With ``normalize_eps`` the views are projected onto the sphere, :math:`u_i = z_i / \max(\|z_i\|_2,
    \varepsilon)` (in float32 or float64: the promotion comes first).
    """
    views = as_views(z1, z2, min_views=min_views)
    if check_finite:
        _check_finite(views)
    if views[0].dtype in (torch.float16, torch.bfloat16):
        views = [v.float() for v in views]
    if normalize_eps is not None:
        views = [F.normalize(v, dim=1, eps=normalize_eps) for v in views]
    return views, world_layout(int(views[0].shape[0]), views[0].device)


def view_pairs(n_views: int) -> list[tuple[int, int]]:
    """``(0, 1)`` then every other view against each global view."""
    return [(0, 1)] + [(g, v) for g in (0, 1) for v in range(2, n_views)]


def squared_distance_share(views: list[Tensor], world: World) -> Tensor:
    r"""Mean over view pairs of this rank's share of :math:`\frac1N \sum_i \|a_i - b_i\|^2` (``W/N`` x local sum)."""
    pairs = [(views[a] - views[b]).pow(2).sum() for a, b in view_pairs(len(views))]
    return torch.stack(pairs).mean() * world.share


# ----------------------------------------------------------------------------------------------------
# combining terms; the module base
# ----------------------------------------------------------------------------------------------------


def combine(terms: dict[str, Tensor], weights: Mapping[str, float]) -> LossTerms:
    """``LossTerms(sum_k weights[k] * terms[k], terms, weights)``, with global values under DDP (module docstring)."""
    terms = D.global_values(terms)
    items = list(terms.items())
    loss = weights[items[0][0]] * items[0][1]
    for k, v in items[1:]:
        loss = loss + weights[k] * v
    return LossTerms(loss, terms, {k: float(weights[k]) for k in terms})


def _options_signature(function: Callable[..., LossTerms]) -> inspect.Signature:
    """The options of a functional twin (everything after the views), as a constructor's parameters."""
    params = list(inspect.signature(function).parameters.values())[2:]
    return inspect.Signature([p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in params])


class TermsLoss(nn.Module):
    """Base of the loss modules: a module is its functional twin with options checked once and stored.

    A subclass names its functional twin (``function``) and, optionally, its preset family (``preset_method``, a
    key of :data:`~dotkernels_ssl.losses.PRESETS`). Its constructor takes exactly the options of ``function``
    (same names, defaults and order, positional or keyword); :meth:`forward_terms` calls ``function`` with them.

    Parameters
    ----------
    *args, **options
        The options of the subclass's functional twin ``function``, by position or name.

    See Also
    --------
    SFRIKLoss, KernelUniformityLoss, AlignUniformLoss, VICRegLoss, BarlowTwinsLoss, NTXentLoss : The losses.
    build_loss : A loss from a method name.

    Examples
    --------
    >>> import torch
    >>> from dotkernels_ssl import SFRIKLoss
    >>> loss = SFRIKLoss(invariance_weight=500.0)
    >>> loss.options["invariance_weight"]
    500.0
    """

    function: ClassVar[Callable[..., LossTerms]]
    preset_method: ClassVar[str | None] = None
    _signature: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "function" not in cls.__dict__:
            return
        cls._signature = _options_signature(cls.function)

        def __init__(self: TermsLoss, *args: Any, **options: Any) -> None:
            TermsLoss.__init__(self, *args, **options)

        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        __init__.__signature__ = cls._signature.replace(  # type: ignore[attr-defined]
            parameters=[self_parameter, *cls._signature.parameters.values()], return_annotation=None
        )
        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        __init__.__module__ = cls.__module__
        cls.__init__ = __init__  # type: ignore[method-assign]

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__()
        bound = self._signature.bind(*args, **options)
        bound.apply_defaults()
        checked = check_options(self.prepare_options(dict(bound.arguments)))
        self._option_names = tuple(checked)
        for name, value in checked.items():
            setattr(self, name, value)

    @staticmethod
    def prepare_options(options: dict[str, Any]) -> dict[str, Any]:
        """Options as stored (a subclass may resolve some into others, e.g. SFRIK's coefficients into a kernel).

        Parameters
        ----------
        options : dict[str, Any]
            The options bound to the constructor's signature, defaults applied.

        Returns
        -------
        dict[str, Any]
            The options to check and store.

        See Also
        --------
        TermsLoss.options : The stored options.

        Examples
        --------
        >>> TermsLoss.prepare_options({"eps": 1e-12})
        {'eps': 1e-12}
        """
        return options

    @property
    def options(self) -> dict[str, Any]:
        """The checked options, as passed to the functional twin."""
        return {name: getattr(self, name) for name in self._option_names}

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TermsLoss:
        """The loss with the options of preset ``name`` of its method (:data:`PRESETS`), then ``overrides``.

        Parameters
        ----------
        name : str
            A preset of the loss's method in :data:`PRESETS` (``"resnet18"``, ``"fashion-mnist"``, ...).
        **overrides
            Options that replace the preset's.

        Returns
        -------
        TermsLoss
            The loss, of the class it is called on.

        Raises
        ------
        ValueError
            ``name`` is not a preset of the method.

        See Also
        --------
        PRESETS : The published hyper-parameters.
        build_loss : A loss from a method name.

        Examples
        --------
        >>> from dotkernels_ssl import SFRIKLoss
        >>> SFRIKLoss.from_preset("fashion-mnist").invariance_weight
        500.0
        """
        presets = PRESETS.get(cls.preset_method or "", {})
        if name not in presets:
            raise ValueError(f"unknown preset {name!r} for {cls.__name__}; choose from {sorted(presets)}")
        return cls(**{**presets[name], **overrides})

    def forward_terms(self, z1: Views, z2: Tensor | None = None) -> LossTerms:
        """Loss, unweighted terms and weights; see :class:`LossTerms`.

        Parameters
        ----------
        z1 : Tensor or list of Tensor
            The first view, of shape ``(n, q)``, or a list of ``V >= 2`` views.
        z2 : Tensor, optional
            The second view (omitted when ``z1`` is a list).

        Returns
        -------
        LossTerms
            The loss, its unweighted terms and their weights.

        See Also
        --------
        forward : The scalar loss alone.
        LossTerms.scalars : Python floats for logging.

        Examples
        --------
        >>> import torch
        >>> from dotkernels_ssl import SFRIKLoss
        >>> z = torch.randn(32, 16)
        >>> float(SFRIKLoss().forward_terms(z, z).terms["invariance"])
        0.0
        """
        return type(self).function(z1, z2, **self.options)

    def forward(self, z1: Views, z2: Tensor | None = None) -> Tensor:
        """Scalar loss of two views ``(z1, z2)`` or of a list of views ``z1``.

        Parameters
        ----------
        z1 : Tensor or list of Tensor
            The first view, of shape ``(n, q)``, or a list of ``V >= 2`` views.
        z2 : Tensor, optional
            The second view (omitted when ``z1`` is a list).

        Returns
        -------
        Tensor
            The 0-d loss, differentiable.

        See Also
        --------
        forward_terms : The loss with its terms.

        Examples
        --------
        >>> import torch
        >>> from dotkernels_ssl import SFRIKLoss
        >>> SFRIKLoss()(torch.randn(32, 16), torch.randn(32, 16)).shape
        torch.Size([])
        """
        return self.forward_terms(z1, z2).loss

    def extra_repr(self) -> str:
        """The options in the module's ``repr`` (``check_finite`` left out).

        Returns
        -------
        str
            ``name=value`` pairs separated by commas.

        See Also
        --------
        options : The stored options.

        Examples
        --------
        >>> from dotkernels_ssl import NTXentLoss
        >>> NTXentLoss(temperature=0.5).extra_repr()
        'temperature=0.5, eps=1e-12'
        """
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items() if k != "check_finite")
