"""Validation of the arguments shared by the public functions: the one place where the rules live.

Every public function of :mod:`dotkernels` validates its integers, reals, point sets, estimators, block sizes and
random generators through these helpers, so that one rule gives one error message everywhere:

- integers (``q``, degrees, counts) must be integral: Python ints, NumPy integers, or floats with an integral value
  (``3.0``); bools are rejected;
- reals must be finite;
- points are the rows of a 2-d array on the unit sphere :math:`S^{q-1}` (``q >= 2`` columns).
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from typing import Any

import numpy as np

from ._array_api import as_array

__all__ = [
    "ESTIMATORS",
    "check_block_size",
    "check_coefficients",
    "check_degree",
    "check_dimension",
    "check_estimator",
    "check_hyperparameter",
    "check_inner_products",
    "check_integer",
    "check_points",
    "check_real",
    "check_rng",
    "host_array",
    "host_float",
    "to_float64",
]

ESTIMATORS = ("v", "u")


def check_integer(value: Any, name: str, *, minimum: int = 0, requirement: str | None = None) -> int:
    """``int(value)`` for an integral ``value >= minimum``.

    Accepts Python and NumPy integers and floats with an integral value (``3.0``); rejects bools. Raises
    ``TypeError`` for a non-integral value and ``ValueError`` below ``minimum``, both worded
    ``"{name} must be {requirement}, got ..."`` (``requirement`` defaults to ``"an integer >= {minimum}"``).
    """
    requirement = requirement or f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, numbers.Real)):
        raise TypeError(f"{name} must be {requirement}, got {value!r}")
    if not isinstance(value, numbers.Integral):
        as_float = float(value)
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise TypeError(f"{name} must be {requirement}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be {requirement}, got {int(value)}")
    return int(value)


def check_dimension(q: Any, name: str = "q") -> int:
    """The dimension of the ambient space R^q: an integer ``q >= 2`` (the sphere S^(q-1))."""
    return check_integer(q, name, minimum=2, requirement="an integer dimension >= 2 (the sphere S^(q-1) in R^q)")


def check_degree(degree: Any, name: str = "degree") -> int:
    """A polynomial degree: an integer ``>= 0``."""
    return check_integer(degree, name, minimum=0, requirement="a non-negative integer degree")


def check_real(
    value: Any, name: str, *, positive: bool = False, nonnegative: bool = False, below: float | None = None
) -> float:
    """``float(value)`` for a finite real; ``positive`` (> 0), ``nonnegative`` (>= 0), ``below`` (< bound)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be < {below}, got {value}")
    return value


def host_array(x: Any, name: str) -> np.ndarray:
    """A float64 numpy array of real values from any array_like (torch tensors detached and moved to the host).

    Raises ``TypeError`` naming ``name`` for non-numeric input (strings, objects).
    """
    if hasattr(x, "detach") and callable(x.detach):  # a torch tensor, possibly requiring grad or on a GPU
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be real numbers (an array_like of floats), got {x!r}") from exc
    return out


def check_coefficients(values: Any, name: str = "coefficients", *, what: str = "a_0, ..., a_L") -> np.ndarray:
    """A non-empty 1-d float64 array of finite series coefficients (``what`` names them in the messages)."""
    try:
        coef = np.array(host_array(values, name), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 1-d sequence of real numbers {what}, got {values!r}") from exc
    if coef.ndim != 1 or coef.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d sequence {what}")
    if not np.all(np.isfinite(coef)):
        raise ValueError(f"{name} must be finite, got {coef.tolist()}")
    return coef


def check_estimator(estimator: Any) -> str:
    """``"v"`` (V-statistic, diagonal kept) or ``"u"`` (U-statistic, diagonal dropped); case-insensitive."""
    if not isinstance(estimator, str) or estimator.lower() not in ESTIMATORS:
        raise ValueError(f"estimator must be 'v' (V-statistic) or 'u' (U-statistic), got {estimator!r}")
    return estimator.lower()


def check_block_size(block_size: Any) -> int | None:
    """``None`` or a positive integer number of rows per block."""
    if block_size is None:
        return None
    return check_integer(block_size, "block_size", minimum=1, requirement="a positive integer or None")


def check_rng(rng: Any) -> np.random.Generator:
    """SPEC 7: a :class:`numpy.random.Generator`, a seed (int or :class:`~numpy.random.SeedSequence`) or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        raise TypeError("rng must be a numpy.random.Generator, a seed or None; RandomState is not accepted (SPEC 7)")
    if (
        rng is None
        or isinstance(rng, np.random.SeedSequence)
        or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool))
    ):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def check_hyperparameter(value: Any, name: str, *, positive: bool = False, nonnegative: bool = False) -> Any:
    """A real kernel parameter: a float (as :func:`check_real`), or a 0-d real floating array of any array library
    (a torch or jax scalar, kept as it is so that autograd reaches it) whose current value passes the same checks."""
    if isinstance(value, bool) or isinstance(value, numbers.Real) or isinstance(value, np.ndarray):
        if isinstance(value, np.ndarray) and value.ndim != 0:
            raise TypeError(f"{name} must be a real number or a 0-d array, got an array of shape {value.shape}")
        return check_real(
            value if not isinstance(value, np.ndarray) else float(value),
            name,
            positive=positive,
            nonnegative=nonnegative,
        )
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{name} must be a real number or a 0-d torch/jax array, got {value!r}")
    if tuple(shape) != ():
        raise TypeError(f"{name} must be a real number or a 0-d array, got an array of shape {tuple(shape)}")
    floating = getattr(dtype, "is_floating_point", None)
    if floating is None:
        floating = np.issubdtype(np.dtype(str(dtype)), np.floating) if str(dtype) else False
    if not floating or getattr(dtype, "is_complex", False):
        raise TypeError(f"{name} must have a real floating dtype, got {dtype}")
    try:
        current = host_float(value)
    except Exception as exc:  # a traced jax value: no checks possible now
        jax = sys.modules.get("jax")
        if jax is not None and isinstance(exc, jax.errors.ConcretizationTypeError):
            return value
        raise
    check_real(current, name, positive=positive, nonnegative=nonnegative)
    return value


def host_float(x: Any) -> float:
    """A 0-d array of any backend (torch tensors detached) as a Python float."""
    if hasattr(x, "detach"):
        x = x.detach()
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):  # under jax.grad: the value, without its derivative
        x = jax.lax.stop_gradient(x)
    return float(x)


def to_float64(X: Any, xp: Any) -> Any:
    """Exact promotion to float64 (kept in the input dtype, with a warning, where the device has no float64)."""
    if X.dtype == xp.float64:
        return X
    try:
        return xp.astype(X, xp.float64)
    except (TypeError, RuntimeError, ValueError) as exc:  # e.g. torch on Apple MPS
        warnings.warn(
            f"float64 is not available on this device ({exc}); computing in {X.dtype}",
            RuntimeWarning,
            stacklevel=4,
        )
        return X


def check_inner_products(t: Any, name: str = "t", *, validate: bool = True) -> tuple[Any, Any]:
    """``(t, xp)`` for an array of inner products: with ``validate``, finite and in [-1, 1] up to 64 eps.

    The value checks are skipped where the values are not known yet (jax arrays traced by ``jax.jit``).
    """
    t, xp = as_array(t, name)
    if validate:
        if _concrete_bool(xp.any(xp.logical_not(xp.isfinite(t)))):
            raise ValueError(f"{name} contains NaN or inf")
        tol = 64.0 * float(xp.finfo(t.dtype).eps)
        if _concrete_bool(xp.any(xp.abs(t) > 1.0 + tol)):
            raise ValueError(f"{name} must lie in [-1, 1] (inner products of unit vectors); got values beyond rounding")
    return t, xp


def _concrete_bool(x: Any) -> bool:
    """``bool(x)``, or False when x is an abstract jax value (under ``jax.jit``) that has no truth value yet."""
    try:
        return bool(x)
    except Exception as exc:
        jax = sys.modules.get("jax")
        if jax is not None and isinstance(exc, jax.errors.ConcretizationTypeError):
            return False
        raise


def check_points(
    X: Any,
    name: str = "Z",
    *,
    normalize: bool = False,
    min_rows: int = 1,
    atol: float | None = None,
    float64: bool = True,
) -> tuple[Any, Any]:
    """Validate an ``(n, q)`` array of points on the unit sphere; return ``(array, namespace)``.

    Rows must be unit vectors to ``atol`` (default ``10 sqrt(eps)`` of the input dtype) unless ``normalize`` is
    true, in which case they are divided by their norms (a zero row raises). With ``float64`` the array is promoted
    to float64 (exactly) first. The checks on values (finite, unit rows, no zero row) are skipped where the values
    are not known yet (jax arrays traced by ``jax.jit``); those on the shape always run.
    """
    X, xp = as_array(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array of points (n, q), got shape {tuple(X.shape)}")
    n, q = int(X.shape[0]), int(X.shape[1])
    if q < 2:
        raise ValueError(f"{name} must have q >= 2 columns (points on S^(q-1)), got {q}")
    if n < min_rows:
        raise ValueError(f"{name} must contain at least {min_rows} point{'s' if min_rows > 1 else ''}, got {n}")
    tol = atol if atol is not None else 10.0 * math.sqrt(float(xp.finfo(X.dtype).eps))
    if float64:
        X = to_float64(X, xp)
    # the checks on values are skipped where the values are not known yet (jax arrays traced by jax.jit)
    if _concrete_bool(xp.any(xp.logical_not(xp.isfinite(X)))):
        raise ValueError(f"{name} contains NaN or inf")
    norms = xp.sqrt(xp.sum(X * X, axis=1))
    if normalize:
        if _concrete_bool(xp.any(norms == 0)):
            raise ValueError(f"{name} has a zero row that cannot be normalised")
        return X / norms[:, None], xp
    # a boolean test first: it stays concrete under jax.grad, where float() of a traced value is refused
    if n and _concrete_bool(xp.any(xp.abs(norms - 1.0) > tol)):
        worst = host_float(xp.max(xp.abs(norms - 1.0)))
        raise ValueError(
            f"rows of {name} must be unit vectors (max | ||z|| - 1 | = {worst:.3g} > atol = {tol:.3g}); "
            "pass normalize=True to project them onto the sphere"
        )
    return X, xp
