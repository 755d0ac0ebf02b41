"""Validation of scalar arguments shared by the public functions."""

from __future__ import annotations

import numbers
from typing import Any


def check_integer(value: Any, name: str, minimum: int, requirement: str, detail: str = "") -> int:
    """``int(value)`` for an integral ``value >= minimum`` (bools rejected).

    Raises ``TypeError`` for a non-integral value and ``ValueError`` below ``minimum``, both worded
    ``"{name} must be {requirement}, got ..."``; ``detail`` is appended to the requirement in the ``ValueError``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {requirement}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be {requirement}{detail}, got {int(value)}")
    return int(value)
