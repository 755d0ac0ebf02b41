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


@pytest.fixture
def jax_x64():
    """jax with float64 arrays, the setting restored afterwards."""
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", before)
