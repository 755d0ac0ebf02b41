import os
import sys

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("dotkernels", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("dotkernels")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def sphere(rng, n, q, dtype=np.float64):
    """n points drawn uniformly on S^(q-1)."""
    x = rng.standard_normal((n, q))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)
