"""Helpers shared by the test modules (imported by name, so that no conftest.py is imported as a module)."""

import numpy as np


def sphere(rng, n, q, dtype=np.float64):
    """n points drawn uniformly on S^(q-1)."""
    x = rng.standard_normal((n, q))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)
