r"""GPyTorch frontend: any dotkernels kernel as a :class:`gpytorch.kernels.Kernel` with learnable raw parameters.

:class:`GPyTorchKernel` evaluates :math:`k(x, y) = \varphi(\langle x, y\rangle)` on :math:`S^{q-1}` for exact GPs
(``ExactGP``: the hyperparameters are learnt by maximising the marginal likelihood with torch autograd) and
variational GPs (``ApproximateGP``). As customary in GPyTorch it has no output scale of its own: wrap it in
``gpytorch.kernels.ScaleKernel``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import gpytorch
import torch
from gpytorch.constraints import Interval
from gpytorch.priors import Prior

from ..kernels import DotProductKernel
from ._common import check_kernel, default_bounds, learnable_names, parameters
from ._common import with_parameters as _with_parameters

__all__ = ["GPyTorchKernel"]


class GPyTorchKernel(gpytorch.kernels.Kernel):
    r"""A dotkernels kernel as a GPyTorch kernel, its parameters learnable under constraints.

    Each hyperparameter ``p`` the kernel's family declares (``kernel.hyperparameters``: ``gamma``, ``kappa``,
    ``time``, ``lengthscale``, the offset ``c`` of the polynomial kernel, ...) is a raw ``torch.nn.Parameter``
    ``raw_p`` of shape ``batch_shape`` mapped through its constraint: by default an
    :class:`~gpytorch.constraints.Interval` over the family's range on the sphere (Notes), the same ranges as the
    default bounds of :class:`~dotkernels.integrations.sklearn.SklearnKernel`; ``constraints`` replaces it (e.g.
    ``Interval(0.05, 5.0)``, or ``Positive()`` for GPyTorch's unbounded default), with an optional prior
    ``p_prior`` (``priors``). ``module.p`` is the
    constrained value, settable as in GPyTorch (``module.p = 0.5``, ``module.initialize(p=0.5)``);
    ``module.lengthscale`` is the ``lengthscale`` parameter when the kernel has one. Every ``forward`` builds the
    kernel with the current values as torch scalars, so gradients flow from the covariance into the raw parameters.

    Parameters
    ----------
    kernel : DotProductKernel
        The kernel; its parameter values are the initial values (e.g. ``GaussianKernel(gamma=1.0)``).
    constraints : mapping, optional
        Hyperparameter name -> :class:`gpytorch.constraints.Interval` (``Positive``, ``GreaterThan``,
        ``Interval``); a constraint given here takes priority over the default ``Interval(low, high)`` of the
        family's range (Notes). The initial value must satisfy the constraint (ValueError otherwise; with the
        default range, it must lie strictly inside it).
    priors : mapping, optional
        Hyperparameter name -> :class:`gpytorch.priors.Prior` on its constrained value (e.g.
        ``{"lengthscale": GammaPrior(3.0, 6.0)}``), registered as ``"<name>_prior"``: the marginal likelihoods of
        GPyTorch add its log density, ``sample_from_prior("<name>_prior")`` draws the parameter from it.
    normalize : bool, default False
        Divide the inputs by their norms first (differentiably), e.g. for inducing points learnt in R^q; otherwise
        inputs whose rows are not unit vectors raise ValueError.
    batch_shape : torch.Size, optional
        One set of parameters per batch entry (batch-independent GPs, as ``batch_shape`` of GPyTorch's kernels);
        default ``torch.Size([])``, parameters shared by every batch.
    active_dims : sequence of int, optional
        GPyTorch's selection of input columns (the selected columns must be the points on the sphere).

    Attributes
    ----------
    kernel : DotProductKernel
        The kernel given, with its initial parameter values.
    learnable : tuple of str
        The names of the learnable parameters, in constructor order.

    See Also
    --------
    dotkernels.integrations.sklearn.SklearnKernel : The same kernels for scikit-learn.
    gpytorch.kernels.ScaleKernel : Adds the output scale.
    dotkernels.DotProductKernel.gram : The Gram matrix this module computes.

    Notes
    -----
    Default constraints. Each hyperparameter is constrained to ``Interval(low, high)`` (GPyTorch's sigmoid
    transform: ``low + (high - low) * sigmoid(raw)``) with the family's range on the sphere, where the kernel is
    meaningful and computed to its stated accuracy, so that an optimiser never reaches a profile that raises
    :class:`~dotkernels.SpectrumAccuracyWarning`: ``MaternKernel`` lengthscale (0.01, 100), (0.01, 10) for
    ``nu = inf``; ``HeatKernel`` time (1e-3, 50); ``GaussianKernel`` gamma (5e-5, 5e3); ``ExponentialKernel``
    kappa (1e-4, 600); ``PolynomialKernel`` offset c (1e-3, 1e3); any other hyperparameter (the factor of
    ``c * kernel``, ...) (1e-5, 1e5). The reasons for each range are in the Notes of
    :class:`~dotkernels.integrations.sklearn.SklearnKernel`. A constraint given in ``constraints`` takes priority
    (``Positive()`` restores GPyTorch's usual unbounded one); a prior in ``priors`` is on the constrained value
    and keeps the default range unless a constraint is given too.

    Derivatives. GPyTorch's optimisers (Adam, L-BFGS, natural gradients on the variational parameters) use only
    the first derivatives of the marginal likelihood in the raw parameters, which torch autograd takes through the
    profile; no second derivative in the hyperparameters is needed.

    The inputs are ``(..., n, q)`` floating-point tensors of unit vectors; the covariance is the profile of the
    (batched) inner products, clipped to [-1, 1] (inside the open interval for kernels with a corner at t = 1, whose
    coinciding points get :math:`\varphi(1)` exactly, so that autograd never meets an infinite derivative).
    ``diag=True`` returns :math:`\varphi(\langle x_{1,i}, x_{2,i}\rangle)` from the n inner products of matching
    rows, without the n x n matrix. With a ``batch_shape``, the input batch broadcasts with it and the kernel is
    evaluated once per parameter set; indexing (``module[i]``) and ``expand_batch`` work as for GPyTorch's kernels.
    The parameters are created in torch's default dtype, as GPyTorch's own, and follow ``module.to(...)``,
    ``.double()`` and ``.cuda()``; the inputs' dtype and device set those of the covariance. Use float64 for
    accurate marginal likelihoods (``torch.set_default_dtype(torch.float64)`` before building the model keeps the
    initial values to a few float64 ulps, the round trip through the constraint's transform; ``model.double()``
    after it keeps their float32 rounding, about 1e-7 relative).

    References
    ----------
    .. [1] J. R. Gardner, G. Pleiss, D. Bindel, K. Q. Weinberger and A. G. Wilson, "GPyTorch: blackbox matrix-matrix
       Gaussian process inference with GPU acceleration", NeurIPS 2018.
    .. [2] C. E. Rasmussen and C. K. I. Williams, *Gaussian Processes for Machine Learning*, MIT Press, 2006.
    .. [3] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on Riemannian
       manifolds", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from dotkernels import GaussianKernel
    >>> from dotkernels.integrations.gpytorch import GPyTorchKernel
    >>> k = GPyTorchKernel(GaussianKernel(gamma=2.0))
    >>> [name for name, _ in k.named_parameters()]
    ['raw_gamma']
    >>> round(float(k.gamma.detach()), 6)
    2.0
    >>> x = torch.eye(3, dtype=torch.float64)
    >>> k(x).to_dense().diagonal().tolist()
    [1.0, 1.0, 1.0]
    """

    is_stationary = True  # on the sphere, a function of ||x - y|| only

    def __init__(
        self,
        kernel: DotProductKernel,
        *,
        constraints: Mapping[str, Interval] | None = None,
        priors: Mapping[str, Prior] | None = None,
        normalize: bool = False,
        batch_shape: torch.Size | None = None,
        active_dims: Any = None,
    ) -> None:
        batch_shape = _check_batch_shape(batch_shape)
        super().__init__(batch_shape=batch_shape, active_dims=active_dims)
        check_kernel(kernel, "GPyTorchKernel")
        if not isinstance(normalize, bool):
            raise TypeError(f"GPyTorchKernel: normalize must be a bool, got {normalize!r}")
        names = learnable_names(kernel, constraints, "GPyTorchKernel", "constraints")
        learnable_names(kernel, priors, "GPyTorchKernel", "priors")
        constraints = {} if constraints is None else dict(constraints)
        priors = {} if priors is None else dict(priors)
        self.kernel = kernel
        self.normalize = normalize
        values = parameters(kernel)
        for name in names:
            constraint = constraints[name] if name in constraints else _default_constraint(kernel, name, values[name])
            if not isinstance(constraint, Interval):
                raise TypeError(
                    f"GPyTorchKernel: constraints[{name!r}] must be a gpytorch.constraints.Interval (Positive, "
                    f"GreaterThan, Interval, ...), got {constraint!r}"
                )
            # the inverse transform in float64, then the raw value in torch's default dtype (as GPyTorch's kernels)
            value = torch.as_tensor(float(values[name]), dtype=torch.float64)
            if not bool(constraint.check(value)):
                raise ValueError(f"GPyTorchKernel: the initial {name} = {float(value)} violates {constraint}")
            raw = constraint.inverse_transform(value).to(torch.get_default_dtype()).expand(batch_shape).clone()
            self.register_parameter(f"raw_{name}", torch.nn.Parameter(raw))
            self.register_constraint(f"raw_{name}", constraint)
        self.learnable = tuple(names)
        for name, prior in priors.items():
            if not isinstance(prior, Prior):
                raise TypeError(f"GPyTorchKernel: priors[{name!r}] must be a gpytorch.priors.Prior, got {prior!r}")
            self.register_prior(
                f"{name}_prior",
                prior,
                functools.partial(_constrained_value, name=name),
                functools.partial(_set_constrained_value, name=name),
            )

    # ---- the learnable values, by name --------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in self.__dict__.get("learnable", ()):
            raw = super().__getattr__(f"raw_{name}")
            return self.constraint_for_parameter_name(f"raw_{name}").transform(raw)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("learnable", ()):
            self._set_value(name, value)
        else:
            super().__setattr__(name, value)

    def _set_value(self, name: str, value: Any) -> None:
        raw = getattr(self, f"raw_{name}")
        value = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
        self.initialize(**{f"raw_{name}": self.constraint_for_parameter_name(f"raw_{name}").inverse_transform(value)})

    @property
    def lengthscale(self) -> torch.Tensor | None:
        """The ``lengthscale`` parameter (Matérn, heat kernels by lengthscale) when learnable, else None."""
        return self.__getattr__("lengthscale") if "lengthscale" in self.learnable else None

    @lengthscale.setter
    def lengthscale(self, value: Any) -> None:
        if "lengthscale" not in self.learnable:
            raise AttributeError(f"{self.kernel!r} has no learnable lengthscale (learnable: {self.learnable})")
        self._set_value("lengthscale", value)

    def current_kernel(self) -> DotProductKernel:
        """The dotkernels kernel with the current parameter values (as floats, detached).

        Returns
        -------
        DotProductKernel
            The kernel's family with the learnt values, for the rest of dotkernels (spectra, MMD, sampling).

        Raises
        ------
        ValueError
            With a non-empty ``batch_shape``: index the module first (``module[i]``).

        See Also
        --------
        dotkernels.DotProductKernel.spectrum : What the learnt kernel gives, for example.

        Examples
        --------
        >>> from dotkernels import HeatKernel
        >>> learnt = GPyTorchKernel(HeatKernel(time=0.25)).current_kernel()
        >>> type(learnt).__name__, round(learnt.time, 12)
        ('HeatKernel', 0.25)
        """
        if len(self._batch_shape):
            raise ValueError(
                f"GPyTorchKernel.current_kernel: the module holds one kernel per batch entry (batch_shape = "
                f"{tuple(self._batch_shape)}); take one first, e.g. module[0].current_kernel()"
            )
        return _with_parameters(self.kernel, {name: float(getattr(self, name).detach()) for name in self.learnable})

    # ---- evaluation ---------------------------------------------------------------------------------------------
    def _points(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            got = f"a {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"GPyTorchKernel: {name} must be a floating-point torch tensor (..., n, q), got {got}")
        if x.ndim < 2 or x.shape[-1] < 2:
            raise ValueError(
                f"GPyTorchKernel: {name} must have shape (..., n, q) with q >= 2 (points on S^(q-1)), got "
                f"{tuple(x.shape)}"
            )
        tol = 10.0 * math.sqrt(torch.finfo(x.dtype).eps)
        norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        with torch.no_grad():  # one host synchronisation for all the checks (on a GPU)
            error = torch.abs(norms - 1.0).amax() if x.numel() else torch.zeros((), dtype=x.dtype, device=x.device)
            finite = torch.isfinite(x).all()
            zero = (norms == 0).any()
            ok = bool(finite & ~zero & (torch.tensor(self.normalize, device=x.device) | (error <= tol)))
        if ok:
            return x / norms if self.normalize else x
        if not bool(finite):
            raise ValueError(f"GPyTorchKernel: {name} contains NaN or inf")
        if self.normalize:
            raise ValueError(f"GPyTorchKernel: {name} has a zero row, which normalize=True cannot put on the sphere")
        raise ValueError(
            f"GPyTorchKernel: the rows of {name} must be unit vectors in R^q (points on S^(q-1)); max "
            f"| ||x|| - 1 | = {float(error):.3g} > {tol:.3g}. Normalise the data, or pass normalize=True (e.g. for "
            "learnt inducing points)"
        )

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, last_dim_is_batch: bool = False, **params: Any
    ) -> torch.Tensor:
        r"""The covariance :math:`[\varphi(\langle x_{1,i}, x_{2,j}\rangle)]`, or its diagonal with ``diag``.

        Parameters
        ----------
        x1 : torch.Tensor, shape (..., n, q)
            Points on :math:`S^{q-1}` (unit rows unless ``normalize``).
        x2 : torch.Tensor, shape (..., m, q)
            Points on the same sphere.
        diag : bool, default False
            Return :math:`\varphi(\langle x_{1,i}, x_{2,i}\rangle)`, shape (..., n) (n = m).
        last_dim_is_batch : bool, default False
            Not supported (the coordinates of a point on the sphere are not independent inputs): True raises.
        **params
            Ignored (GPyTorch's keyword arguments).

        Returns
        -------
        torch.Tensor
            Shape (..., n, m), or (..., n) with ``diag``; the inputs' dtype and device, differentiable in the
            learnable parameters and the inputs.

        See Also
        --------
        dotkernels.DotProductKernel.profile : The profile applied to the inner products.

        Examples
        --------
        >>> import torch
        >>> from dotkernels import ExponentialKernel
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
        >>> k = GPyTorchKernel(ExponentialKernel(kappa=1.0))  # kappa in torch's default dtype, float32
        >>> k.forward(x, x).round(decimals=6).tolist()  # e^(kappa t), t = 1 and 0
        [[2.718282, 1.0], [1.0, 2.718282]]
        """
        if last_dim_is_batch:
            raise ValueError("GPyTorchKernel: last_dim_is_batch=True is not supported for points on the sphere")
        x1 = self._points(x1, "x1")
        x2 = x1 if x2 is None else self._points(x2, "x2")
        if x1.shape[-1] != x2.shape[-1]:
            raise ValueError(
                f"GPyTorchKernel: x1 and x2 must have the same number of columns, got {x1.shape[-1]} and {x2.shape[-1]}"
            )
        if diag:
            if x1.shape[-2] != x2.shape[-2]:
                raise ValueError(
                    f"GPyTorchKernel: diag=True pairs the rows of x1 and x2, which must be as many, got "
                    f"{x1.shape[-2]} and {x2.shape[-2]}"
                )
            t = (x1 * x2).sum(dim=-1)  # the n inner products of matching rows only
        else:
            t = torch.matmul(x1, x2.transpose(-1, -2))
        values = {name: getattr(self, name).to(t) for name in self.learnable}
        q = int(x1.shape[-1])
        if not len(self._batch_shape):
            return _profile(_with_parameters(self.kernel, {n: v.reshape(()) for n, v in values.items()}), t, q)
        return self._batched_profile(t, values, 1 if diag else 2, q)

    def _batched_profile(self, t: torch.Tensor, values: dict[str, torch.Tensor], event: int, q: int) -> torch.Tensor:
        """The profile of ``t`` (batch dims, then ``event`` dims) with one kernel per entry of ``batch_shape``."""
        batch = self._batch_shape
        try:
            full = torch.broadcast_shapes(t.shape[:-event], batch)
        except RuntimeError as exc:
            raise ValueError(
                f"GPyTorchKernel: the inputs' batch shape {tuple(t.shape[:-event])} does not broadcast with the "
                f"kernel's batch_shape {tuple(batch)}"
            ) from exc
        lead, inner, tail = full[: len(full) - len(batch)], full[len(full) - len(batch) :], t.shape[-event:]
        if not values:  # no parameter: one kernel, its covariance repeated over the batch
            return _profile(self.kernel, t, q).expand(*full, *tail)
        t = t.expand(*full, *tail).reshape(*lead, math.prod(inner), *tail)
        flat = {name: value.expand(inner).reshape(-1) for name, value in values.items()}
        blocks = [
            _profile(_with_parameters(self.kernel, {n: v[i] for n, v in flat.items()}), t.select(len(lead), i), q)
            for i in range(math.prod(inner))
        ]
        return torch.stack(blocks, dim=len(lead)).reshape(*full, *tail)

    def extra_repr(self) -> str:
        """The line ``print(module)`` shows: the kernel, the learnable parameters and ``normalize``.

        Returns
        -------
        str
            The kernel's ``repr``, ``learnable=...`` and ``normalize=...``.

        See Also
        --------
        current_kernel : The kernel with the learnt values.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> GPyTorchKernel(GaussianKernel(gamma=1.0)).extra_repr()
        "GaussianKernel(gamma=1.0), learnable=('gamma',), normalize=False"
        """
        return f"{self.kernel!r}, learnable={self.learnable}, normalize={self.normalize}"


def _default_constraint(kernel: DotProductKernel, name: str, value: Any) -> Interval:
    """``Interval(low, high)`` of the family's default range of ``name``; ValueError if ``value`` is not inside it."""
    low, high = default_bounds(kernel, name)
    if not low < float(value) < high:
        raise ValueError(
            f"GPyTorchKernel: the initial {name} = {float(value)} of {kernel!r} is outside its default range "
            f"({low:g}, {high:g}) on the sphere; start inside it, or pass constraints={{{name!r}: Positive()}} (or "
            "another gpytorch.constraints.Interval that holds it)"
        )
    return Interval(low, high)


def _check_batch_shape(batch_shape: Any) -> torch.Size:
    """``batch_shape`` as a ``torch.Size`` (None: empty), or TypeError naming it."""
    if batch_shape is None:
        return torch.Size([])
    try:
        shape = torch.Size(batch_shape)
    except TypeError as exc:
        raise TypeError(
            f"GPyTorchKernel: batch_shape must be a torch.Size (a tuple of ints), got {batch_shape!r}"
        ) from exc
    if any(size < 1 for size in shape):
        raise ValueError(f"GPyTorchKernel: batch_shape must have positive sizes, got {tuple(shape)}")
    return shape


def _constrained_value(module: GPyTorchKernel, *, name: str) -> torch.Tensor:
    """The constrained value of the parameter ``name`` (what its prior is on)."""
    return getattr(module, name)


def _set_constrained_value(module: GPyTorchKernel, value: Any, *, name: str) -> None:
    """Set the parameter ``name`` to a constrained value (used when sampling it from its prior)."""
    module._set_value(name, value)


def _profile(kernel: DotProductKernel, t: torch.Tensor, q: int) -> torch.Tensor:
    """The profile of inner products ``t`` clipped to [-1, 1], :math:`\\varphi(\\pm 1)` exactly at kernel corners."""
    if not kernel.has_corner:
        return kernel.profile(torch.clamp(t, -1.0, 1.0), q=q, validate=False)
    eps = float(torch.finfo(t.dtype).eps)
    inside = kernel.profile(torch.clamp(t, -1.0 + eps, 1.0 - eps), q=q, validate=False)
    ends = kernel.profile(torch.tensor([-1.0, 1.0], dtype=t.dtype, device=t.device), q=q, validate=False)
    return torch.where(t >= 1.0 - eps, ends[1], torch.where(t <= -1.0 + eps, ends[0], inside))
