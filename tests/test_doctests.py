"""Every docstring example of both packages runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dotkernels
import dotkernels_ssl

_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    names = []
    for pkg in (dotkernels, dotkernels_ssl):
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            name = info.name
            if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name))):
                names.append(name)
    return names


_MODULES = _modules_with_examples()


def test_the_examples_cover_both_packages():
    assert {"dotkernels.gegenbauer", "dotkernels.mmd"} <= set(_MODULES)
    assert any(name.startswith("dotkernels_ssl.losses") for name in _MODULES)


@pytest.mark.parametrize("name", _MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=_FLAGS)
    assert result.attempted > 0 and result.failed == 0
