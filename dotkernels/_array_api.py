"""Backend helpers: the only module that knows which array library it runs on.

Everything public in dotkernels accepts any array-API array (numpy, torch, cupy, jax, array-api-strict) and returns
an array of the same library, dtype and device. Python scalars and sequences are treated as numpy float64.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = ["array_namespace", "as_array", "is_numpy", "to_numpy"]


def array_namespace(*arrays: Any):
    """Return the array-API namespace shared by ``arrays`` (numpy for Python scalars and lists)."""
    arrays = tuple(a for a in arrays if a is not None)
    if all(isinstance(a, (int, float, list, tuple, np.generic)) for a in arrays):
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*(a for a in arrays if not isinstance(a, (int, float))))


def as_array(x: Any, name: str = "t"):
    """Return ``(x_as_array, xp)``: array-API arrays pass through; scalars and sequences become float64 numpy."""
    if isinstance(x, (int, float, list, tuple, np.generic)) or (
        isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating)
    ):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a real array or number, got {type(x).__name__}") from exc
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError as exc:
        raise TypeError(f"{name} must be an array-API array or a number, got {type(x).__name__}") from exc
    if not xp.isdtype(x.dtype, "real floating"):
        x = xp.astype(x, xp.float64) if xp.isdtype(x.dtype, "integral") or x.dtype == xp.bool else x
        if not xp.isdtype(x.dtype, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")
    return x, xp


def is_numpy(xp) -> bool:
    return array_api_compat.is_numpy_namespace(xp)


def to_numpy(x: Any) -> np.ndarray:
    """Copy ``x`` to a host numpy array (detaching torch tensors)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(array_api_compat.to_device(x, "cpu") if hasattr(x, "device") else x)
