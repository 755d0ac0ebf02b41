"""Every public callable of both packages has a complete numpydoc docstring (numpydoc.validate).

One test per callable, so that a failure names it: every function and class of ``dotkernels.__all__``,
``dotkernels_ssl.__all__`` and of the ``__all__`` of every public module of ``dotkernels`` (the names the API table
lists), and every public method of those classes defined in the package (a method inherited from a class of the
package is checked once, on the class that defines it). The checks: PR01 (a parameter is not documented), PR02 (a
documented parameter does not exist), RT01 (no Returns section), EX01 (no Examples section), GL08 (no docstring) and
SA01 (no See Also section; exceptions and warnings may go without one).

The docstrings' ``Accuracy`` section is a section of this project (rendered by the documentation before Notes), so
it is registered with numpydoc here as in docs/conf.py.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")
docscrape = pytest.importorskip("numpydoc.docscrape")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from _generate_api_table import public_modules  # noqa: E402

CHECKS = ("PR01", "PR02", "RT01", "EX01", "GL08", "SA01")
docscrape.NumpyDocString.sections.setdefault("Accuracy", [])


def _package(obj: object) -> str:
    return (getattr(obj, "__module__", None) or "").split(".")[0]


def _targets() -> list[tuple[str, bool]]:
    """(import path, is an exception or warning class) of every public callable, each object once."""
    import dotkernels
    import dotkernels_ssl

    roots: list[tuple[str, object]] = []
    for module in [dotkernels, dotkernels_ssl, *public_modules("dotkernels")]:
        for name in module.__all__ if hasattr(module, "__all__") else ():
            roots.append((f"{module.__name__}.{name}", getattr(module, name)))
    out: list[tuple[str, bool]] = []
    seen: set[int] = set()
    listed = {id(obj) for _, obj in roots}  # a method that is also a listed function is checked under that name
    for path, obj in roots:
        if inspect.ismodule(obj) or not callable(obj) or _package(obj) not in ("dotkernels", "dotkernels_ssl"):
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        is_exception = inspect.isclass(obj) and issubclass(obj, BaseException)
        out.append((path, is_exception))
        if not inspect.isclass(obj):
            continue
        for attr, raw in sorted(vars(obj).items()):
            func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            if attr.startswith("_") or not inspect.isfunction(func) or _package(func) != _package(obj):
                continue
            if id(func) in seen or id(func) in listed:
                continue  # e.g. a loss module's ``function``, its functional twin, checked under its own name
            seen.add(id(func))
            out.append((f"{path}.{attr}", False))
    return out


TARGETS = _targets()


def _validate(path: str) -> list[tuple[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = numpydoc_validate.validate(path)
    return [(code, message) for code, message in result["errors"] if code in CHECKS]


@pytest.mark.parametrize(("path", "is_exception"), TARGETS, ids=[path for path, _ in TARGETS])
def test_numpydoc(path: str, is_exception: bool) -> None:
    errors = _validate(path)
    if is_exception:
        errors = [(code, message) for code, message in errors if code != "SA01"]
    assert not errors, "\n".join(f"{path}: {code} {message}" for code, message in errors)


def test_the_targets_cover_both_packages() -> None:
    paths = {path for path, _ in TARGETS}
    for expected in (
        "dotkernels.uniformity_test",
        "dotkernels.GaussianKernel",
        "dotkernels.DotProductKernel.spectrum",
        "dotkernels.WeightedChiSquare.sf",
        "dotkernels_ssl.SFRIKLoss",
        "dotkernels_ssl.TermsLoss.forward_terms",
        "dotkernels_ssl.sfrik_loss",
        "dotkernels.regularizers.vicreg_variance",
        "dotkernels.alternatives.sample_acg",
    ):
        assert expected in paths, expected
    # inherited methods are checked once, on the class that defines them
    assert "dotkernels.GaussianKernel.spectrum" not in paths
