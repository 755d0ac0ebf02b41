r"""Kernels from strings: the short grammar of the kernel table in :mod:`dotkernels.kernels`, and ``repr`` strings."""

from __future__ import annotations

import ast
import math
from typing import Any

from ._base import DotProductKernel
from .algebra import ScaledKernel, SumKernel, TruncatedKernel
from .closed_form import (
    ArcCosineKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    GeneratingFunctionKernel,
    GineKernel,
    InverseMultiquadricKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
)
from .matern import MaternKernel
from .network import NNGPKernel, NTKKernel
from .products import CompositionKernel
from .series import BandLimitedKernel, HeatKernel, LegendreSeriesKernel, SFRIKKernel

__all__ = ["parse_kernel"]

# name -> (class, parameter names in positional order); the table of the package docstring
_FAMILIES: dict[str, tuple[type, tuple[str, ...]]] = {
    "exponential": (ExponentialKernel, ("kappa",)),
    "gaussian": (GaussianKernel, ("gamma",)),
    "polynomial": (PolynomialKernel, ("p", "c")),
    "monomial": (MonomialKernel, ("p",)),
    "heat": (HeatKernel, ("time",)),
    "matern": (MaternKernel, ("nu", "lengthscale", "normalize")),
    "poisson": (PoissonKernel, ("rho", "normalized")),
    "generating": (GeneratingFunctionKernel, ("rho",)),
    "imq": (InverseMultiquadricKernel, ("c", "beta")),
    "distance": (DistanceKernel, ("s",)),
    "arccos": (ArcCosineKernel, ("order",)),
    "bandlimited": (BandLimitedKernel, ("degree",)),
    "nngp": (NNGPKernel, ("depth", "weight_variance", "bias_variance")),
    "ntk": (NTKKernel, ("depth", "weight_variance", "bias_variance")),
}
_ALIASES = {"exp": "exponential", "riesz": "distance", "rbf": "gaussian", "arccosine": "arccos"}
_SERIES = {"legendre", "sfrik"}
_FIXED = {"energy": lambda: DistanceKernel(s=1.0), "gine": GineKernel}

# classes a repr string may call (kernels built from Python callables cannot come from a string)
_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ArcCosineKernel,
        BandLimitedKernel,
        CompositionKernel,
        DistanceKernel,
        ExponentialKernel,
        GaussianKernel,
        GeneratingFunctionKernel,
        GineKernel,
        HeatKernel,
        InverseMultiquadricKernel,
        LegendreSeriesKernel,
        MaternKernel,
        MonomialKernel,
        NNGPKernel,
        NTKKernel,
        PoissonKernel,
        PolynomialKernel,
        SFRIKKernel,
        ScaledKernel,
        SumKernel,
        TruncatedKernel,
    )
}


def _parse_value(text: str) -> int | float | bool:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("inf", "infinity"):
        return float("inf")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def _literal(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Call):
        return _evaluate(node, spec)
    if isinstance(node, ast.Name) and node.id == "inf":  # repr(math.inf), e.g. MaternKernel(nu=inf, ...)
        return math.inf
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"only numbers, lists of numbers and kernels may appear in {spec!r}") from None


def _evaluate(node: ast.AST, spec: str) -> DotProductKernel:
    """Evaluate the restricted expression language of kernel reprs: calls of kernel classes, ``+`` and ``*``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate(node.left, spec) + _evaluate(node.right, spec)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = node.left, node.right
        if isinstance(right, ast.Constant):
            left, right = right, left
        return ScaledKernel(_literal(left, spec), _evaluate(right, spec))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CLASSES:
        args = [_literal(a, spec) for a in node.args]
        kwargs = {k.arg: _literal(k.value, spec) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise ValueError(f"** arguments are not allowed in {spec!r}")
        if node.func.id == "SumKernel" and args and isinstance(args[0], (list, tuple)):
            return SumKernel(args[0])
        return _CLASSES[node.func.id](*args, **kwargs)
    raise ValueError(
        f"cannot build a kernel from {spec!r}: expected the short grammar 'name:params' or a kernel repr such as "
        f"'GaussianKernel(gamma=1.0)'; known classes: {', '.join(sorted(_CLASSES))}"
    )


def parse_kernel(spec: str | DotProductKernel) -> DotProductKernel:
    """Build a kernel from a string (kernel objects pass through unchanged).

    Two forms are accepted: the short grammar ``NAME`` or ``NAME:ARGS`` of the kernel table in the
    :mod:`dotkernels.kernels` docstring (ARGS are ``key=value`` pairs or positional values, comma separated), and
    the ``repr`` of a kernel (``"GaussianKernel(gamma=2.5)"``, sums ``k1 + k2``, multiples ``2.0 * k``,
    ``TruncatedKernel(k, 3)``), so that ``parse_kernel(repr(k)) == k`` for every kernel not built from a Python
    callable.

    Parameters
    ----------
    spec : str or DotProductKernel
        The kernel string (a kernel passes through unchanged).

    Returns
    -------
    DotProductKernel
        The kernel.

    Raises
    ------
    ValueError
        For an unknown name or parameter, a malformed number or an invalid parameter value (the message names it).
    TypeError
        When ``spec`` is neither a string nor a kernel.

    See Also
    --------
    dotkernels.kernels : the table of the grammar.

    Examples
    --------
    >>> parse_kernel("gaussian:gamma=2.5")
    GaussianKernel(gamma=2.5)
    >>> parse_kernel("legendre:0,1,40,40").spectrum(3, q=8).tolist()
    [0.0, 1.0, 40.0, 40.0]
    >>> parse_kernel("sfrik:1,40,40") == parse_kernel("SFRIKKernel(coefficients=(1.0, 40.0, 40.0))")
    True
    """
    if isinstance(spec, DotProductKernel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"kernel must be a string or a DotProductKernel, got {type(spec).__name__}")
    text = spec.strip()
    if "(" in text:
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"cannot parse kernel {spec!r}: {exc.msg}") from None
        return _evaluate(tree.body, spec)
    name, _, args = text.partition(":")
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    parts = [p.strip() for p in args.split(",") if p.strip()] if args else []
    if name in _SERIES:
        if any("=" in p for p in parts):
            raise ValueError(f"{name} takes positional coefficients, e.g. '{name}:1,40,40'; got {spec!r}")
        values = [float(_parse_value(p)) for p in parts]
        if name == "legendre":
            if not values:
                raise ValueError("legendre needs coefficients a_0,a_1,...,a_L, e.g. 'legendre:0,1,40,40'")
            return LegendreSeriesKernel(values)
        return SFRIKKernel(values) if values else SFRIKKernel()
    if name in _FIXED:
        if parts:
            raise ValueError(f"{name} takes no parameters, got {spec!r}")
        return _FIXED[name]()
    if name not in _FAMILIES:
        known = sorted([*_FAMILIES, *_SERIES, *_FIXED, *_ALIASES])
        raise ValueError(f"unknown kernel {name!r} in {spec!r}; known kernels: {', '.join(known)}")
    cls, names = _FAMILIES[name]
    kwargs: dict[str, Any] = {}
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if not eq:
            if i >= len(names):
                raise ValueError(f"too many positional parameters for {name!r}: expected at most {names}")
            key, value = names[i], part
        key = key.strip()
        if key not in names:
            raise ValueError(f"unknown parameter {key!r} for kernel {name!r}; expected one of {names}")
        if key in kwargs:
            raise ValueError(f"parameter {key!r} given twice in {spec!r}")
        kwargs[key] = _parse_value(value.strip())
    return cls(**kwargs)
