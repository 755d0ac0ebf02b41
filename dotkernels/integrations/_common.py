"""What both frontends share: the learnable parameters of a kernel, rebuilding it, points and parameter derivatives.

A dotkernels kernel is immutable: its parameters are the constructor arguments listed by ``_named_params()`` (in
constructor order, the ``repr`` round trip), so a kernel with other parameter values is ``type(kernel)(**params)``.
The frontends keep the parameter values in a kernel object and rebuild it when a value changes; the GPyTorch
frontend rebuilds it in every ``forward`` from its torch parameters, so that autograd flows into the profile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_points
from ..kernels import DotProductKernel


def check_kernel(kernel: Any, owner: str) -> DotProductKernel:
    """``kernel`` itself if it is a dotkernels kernel, else TypeError naming ``owner``'s argument."""
    if not isinstance(kernel, DotProductKernel):
        raise TypeError(
            f"{owner}: kernel must be a dotkernels kernel (a DotProductKernel such as GaussianKernel(gamma=1.0)), "
            f"got {kernel!r}"
        )
    return kernel


def parameters(kernel: DotProductKernel) -> dict[str, Any]:
    """The constructor arguments of ``kernel`` by name (hyperparameters as their current float values)."""
    params = dict(kernel._named_params())
    missing = [name for name in kernel.hyperparameters if name not in params]
    if missing:
        raise TypeError(
            f"{type(kernel).__name__}._named_params() must list every constructor argument by name, including the "
            f"hyperparameters {missing} (the frontends rebuild the kernel as type(kernel)(**params))"
        )
    return params


def learnable_names(kernel: DotProductKernel, options: Mapping[str, Any] | None, owner: str, what: str) -> list[str]:
    """The hyperparameters the kernel's family declares learnable (``kernel.hyperparameters``), in constructor order.

    ``options`` maps some of them to ``what`` (bounds, constraints); a name that is not a declared hyperparameter
    raises ValueError naming it and the learnable ones.
    """
    declared = list(kernel.hyperparameters)
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise TypeError(f"{owner}: {what} must be a mapping from parameter names to values, got {options!r}")
    for name in options:
        if name not in declared:
            raise ValueError(
                f"{owner}: {what} names {name!r}, which is not a learnable parameter of {kernel!r} (its learnable "
                f"parameters: {declared or 'none'})"
            )
    return declared


#: bounds of a hyperparameter of a family without a range of its own (scikit-learn's default for its kernels)
GENERIC_BOUNDS = (1e-5, 1e5)


def default_bounds(kernel: DotProductKernel, name: str) -> tuple[float, float]:
    """The default ``(low, high)`` of the hyperparameter ``name`` of ``kernel``: a range meaningful on the sphere.

    The table and its reasons are in the Notes of :class:`~dotkernels.integrations.sklearn.SklearnKernel`.
    """
    from ..kernels import ExponentialKernel, GaussianKernel, HeatKernel, MaternKernel, PolynomialKernel

    if isinstance(kernel, MaternKernel) and name == "lengthscale":
        return HEAT_LENGTHSCALES if math.isinf(kernel.nu) else LENGTHSCALES
    if isinstance(kernel, HeatKernel) and name == "time":
        return HEAT_TIMES
    if isinstance(kernel, GaussianKernel) and name == "gamma":
        return (0.5 / LENGTHSCALES[1] ** 2, 0.5 / LENGTHSCALES[0] ** 2)
    if isinstance(kernel, ExponentialKernel) and name == "kappa":
        return (1.0 / LENGTHSCALES[1] ** 2, MAX_KAPPA)
    if isinstance(kernel, PolynomialKernel) and name == "c":
        return POLYNOMIAL_OFFSETS
    return GENERIC_BOUNDS


#: lengthscales (geodesic, on a sphere of diameter pi) from a hundredth of a radian to 100 radians
LENGTHSCALES = (1e-2, 1e2)
#: the heat kernel's lengthscales sqrt(2 time): beyond 10 it is constant to float64 on every sphere
#: (a_1 / a_0 = q exp(-50 (q - 1)) < 1e-20)
HEAT_LENGTHSCALES = (1e-2, 1e1)
#: the (unnormalised) heat kernel's diffusion times: lengthscales sqrt(2 time) from 0.045 to 10; from time 1e-3 on,
#: phi(1) = sum_l a_l <= (1 + x) / (1 - x)^(q - 1), x = e^(-time (q - 1)), < 2 e^((ln 2)^2 / time) < 1e209 at every q
HEAT_TIMES = (1e-3, 50.0)
#: the exponential kernel's kappa = 1 / lengthscale^2, capped where phi(1) = e^kappa keeps a factor 1e47 of headroom
MAX_KAPPA = 600.0
#: the polynomial kernel's offset c, relative to |t| <= 1
POLYNOMIAL_OFFSETS = (1e-3, 1e3)


def with_parameters(kernel: DotProductKernel, values: Mapping[str, Any]) -> DotProductKernel:
    """The kernel of the same family with the parameters ``values`` replaced (the constructor validates them)."""
    if not values:
        return kernel
    return type(kernel)(**{**parameters(kernel), **values})


def unit_rows(X: Any, name: str, owner: str, *, atol: float | None = None) -> np.ndarray:
    """A float64 (n, q) numpy array of unit vectors, or ValueError naming ``name`` and saying how to fix it."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: {name} must be an array of real numbers (points on the sphere), got dtype {X.dtype}")
    X, _ = check_points(X.astype(np.float64), name, atol=math.inf)
    tol = 10.0 * math.sqrt(np.finfo(np.float64).eps) if atol is None else atol
    error = float(np.max(np.abs(np.linalg.norm(X, axis=1) - 1.0)))
    if error > tol:
        raise ValueError(
            f"{owner}: the rows of {name} must be unit vectors in R^q (points on the sphere S^(q-1)); "
            f"max | ||x|| - 1 | = {error:.3g} > {tol:.3g}. Project them first, e.g. with "
            "sklearn.preprocessing.Normalizer() in a pipeline or X / np.linalg.norm(X, axis=1, keepdims=True)"
        )
    return X


def _parameter_tangent(f: Any, p0: Any) -> tuple[Any, Any]:
    """``(f(p0), f'(p0))`` of a tensor-valued function of a torch scalar: forward mode, else double backward."""
    import torch
    import torch.autograd.forward_ad as fwAD

    try:
        with fwAD.dual_level():
            out = f(fwAD.make_dual(p0, torch.ones_like(p0)))
            value, tangent = fwAD.unpack_dual(out)
        if tangent is not None:
            return value, tangent
    except (NotImplementedError, RuntimeError):
        pass  # an operation without a forward-mode formula: reverse mode twice gives the same tangent
    p = p0.detach().clone().requires_grad_(True)
    value = f(p)
    if not value.requires_grad:
        raise TypeError("the kernel does not carry its parameter as a torch tensor (its profile is constant in it)")
    u = torch.zeros_like(value, requires_grad=True)
    (vjp,) = torch.autograd.grad(value, p, grad_outputs=u, create_graph=True)
    (tangent,) = torch.autograd.grad(vjp, u, allow_unused=True)
    if tangent is None:
        tangent = torch.zeros_like(value)
    return value.detach(), tangent


def gram_and_log_gradient(kernel: DotProductKernel, names: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The Gram matrix of unit rows X and its derivatives with respect to the log of the parameters ``names``.

    ``dK / d log p = p * dK / dp``, with ``dK / dp`` by torch autograd through the kernel rebuilt with the parameter
    as a float64 torch scalar (forward mode; reverse mode twice where an operation has no forward formula): exact
    to the rounding of the profile's own derivative; K is the primal value of the first derivative's pass (torch's
    evaluation of the profile). Returns ``(K, dK)`` of shapes (n, n) and (n, n, len(names)).
    """
    if not names:
        K = np.asarray(kernel.gram(X), dtype=np.float64)
        return K, np.empty((*K.shape, 0))
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is part of the gp extra
        raise ImportError("the gradient of the kernel (eval_gradient=True) needs torch: pip install torch") from exc
    Xt = torch.from_numpy(X)
    values = parameters(kernel)
    K, grads = None, []
    for name in names:
        p0 = torch.tensor(float(values[name]), dtype=torch.float64)
        try:
            value, dK = _parameter_tangent(lambda p, name=name: with_parameters(kernel, {name: p}).gram(Xt), p0)
        except TypeError as exc:
            raise TypeError(
                f"{kernel!r}: the derivative with respect to {name!r} needs the kernel to accept {name} as a torch "
                f"scalar and differentiate through it ({exc})"
            ) from exc
        grads.append(dK.detach().numpy() * float(values[name]))
        if K is None:
            K = value.detach().numpy()
    return K, np.stack(grads, axis=-1)
