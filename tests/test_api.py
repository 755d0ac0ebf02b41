"""The public API follows the package conventions, and docs/API.md is the table generated from it.

The list of public callables (functions, classes and their public methods of every public module, subpackages
included) comes from docs/_generate_api_table.py, so the conventions are checked on exactly what the table shows.
Which callables draw random numbers is found by reading their code (AST): a call to ``check_rng``,
``default_rng``, ``numpy.random``, a method of a variable named ``rng``, torch's random constructors, or to any
function of the package that draws (to a fixed point, private helpers included). A call through ``super()`` is a
call of the method the class inherits: it draws when that method does.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_generate_api_table", ROOT / "docs" / "_generate_api_table.py")
api_table = importlib.util.module_from_spec(_spec)
sys.modules["_generate_api_table"] = api_table
_spec.loader.exec_module(api_table)

PUBLIC = api_table.public_callables("dotkernels")
BANNED = {"L", "l", "random_state", "u_statistic", "block", "tau"}


def _ids(rows):
    return [row.name for row in rows]


def _signature(row):
    """The signature; builtin-derived classes (warnings) without one have no parameters to check."""
    return api_table.signature_of(row.obj) or inspect.Signature()


def test_the_walk_finds_the_public_api():
    names = set(_ids(PUBLIC))
    expected = {
        "dotkernels.legendre",
        "dotkernels.recurrence_coefficients",
        "dotkernels.sample_vmf",
        "dotkernels.projected_quadrature",
        "dotkernels.symbolic.legendre_symbolic",
        "dotkernels.GaussianKernel",
        "dotkernels.GaussianKernel.spectrum",
        "dotkernels.mmd2_uniform",
    }
    assert expected <= names, expected - names
    assert not any(part.startswith("_") for name in names for part in name.split("."))


# ---------------------------------------------------------------------------------------------------------------
# (a) parameter names and order


@pytest.mark.parametrize("row", PUBLIC, ids=_ids(PUBLIC))
def test_signature_conventions(row):
    params = list(_signature(row).parameters.values())
    names = [p.name for p in params]
    banned = BANNED.intersection(names)
    assert not banned, f"{row.name} has parameter(s) {sorted(banned)}: use degree / rng / estimator / block_size / ..."
    if "q" in names and not _is_record(row):
        q = params[names.index("q")]
        assert q.kind is inspect.Parameter.KEYWORD_ONLY, f"{row.name}: q must be keyword-only, got {q.kind}"
        # a degree passed by position comes first; keyword-only degrees cannot be confused with q in any order
        degrees = [i for i, p in enumerate(params) if p.name.startswith("degree") and p.kind is not p.KEYWORD_ONLY]
        assert all(i < names.index("q") for i in degrees), f"{row.name}: the degree must come before q"


def _is_record(row) -> bool:
    """Result records (named tuples, dataclasses) are built by the library, not called with (degree, q)."""
    return row.kind == "class" and (issubclass(row.obj, tuple) or dataclasses.is_dataclass(row.obj))


SSL_PUBLIC = api_table.public_callables("dotkernels_ssl")


@pytest.mark.parametrize("row", SSL_PUBLIC, ids=_ids(SSL_PUBLIC))
def test_ssl_signature_conventions(row):
    # one vocabulary across both packages: the same names are banned and q is keyword-only in dotkernels_ssl too
    test_signature_conventions(row)


def test_no_public_signature_takes_a_dimension_then_a_degree():
    # (degree, q) in one order everywhere: the degree is positional or first, q never positional
    for row in PUBLIC:
        sig = api_table.signature_of(row.obj)
        if sig is None:
            continue
        positional = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        assert "q" not in positional or _is_record(row), row.name


# ---------------------------------------------------------------------------------------------------------------
# (b) every public callable that draws takes rng

_RANDOM_MODULES = ("np.random.", "numpy.random.", "random.")
_TORCH_RANDOM = {
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "normal",
    "bernoulli",
    "multinomial",
}
_DIRECT = {"check_rng", "default_rng"}
_RNG_NAMES = {"rng", "generator", "random_state"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _function_tree(func) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    return ast.parse(source)


_SUPER = "super()."


def _super_method(node: ast.AST) -> str | None:
    """The method name of a call ``super().name(...)``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call):
        inner = node.value.func
        if isinstance(inner, ast.Name) and inner.id == "super":
            return node.attr
    return None


def _analyse(func) -> tuple[bool, set[str]]:
    """(draws directly, names it calls). Docstrings and comments are not code: the AST ignores the comments and
    the docstring examples are strings. A call ``super().name(...)`` is recorded as ``"super().name"``, resolved
    to the inherited method by ``drawing_functions`` (not matched by its bare name, which every class shares)."""
    tree = _function_tree(func)
    if tree is None:
        return False, set()
    direct, called = False, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            inherited = _super_method(node.func)
            if inherited is not None:
                called.add(_SUPER + inherited)
                continue
            dotted = _dotted(node.func)
            name = dotted.rsplit(".", 1)[-1]
            called.add(name)
            if name in _DIRECT or dotted.startswith(_RANDOM_MODULES):
                direct = True
            if dotted.startswith("torch.") and name in _TORCH_RANDOM:
                direct = True
            if isinstance(node.func, ast.Attribute) and _dotted(node.func.value) in _RNG_NAMES:
                direct = True
        elif isinstance(node, ast.Attribute) and _dotted(node) in ("np.random", "numpy.random"):
            direct = True
    return direct, called


def _package_functions(package: str = "dotkernels") -> dict[str, object]:
    """Every function and method defined in the package, private ones included, by qualified name."""
    root = importlib.import_module(package)
    out: dict[str, object] = {}
    modules = [root] + [importlib.import_module(i.name) for i in pkgutil.walk_packages(root.__path__, f"{package}.")]
    for module in modules:
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                out[f"{module.__name__}.{obj.__qualname__}"] = obj
            elif inspect.isclass(obj):
                for raw in vars(obj).values():
                    func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
                    if isinstance(raw, property):
                        func = raw.fget
                    if inspect.isfunction(func):
                        out[f"{module.__name__}.{func.__qualname__}"] = func
    return out


def _inherited(func, method: str) -> tuple[str, object] | None:
    """(qualified name, function) of the ``method`` that ``super()`` reaches from ``func``'s class, else None."""
    owner = sys.modules.get(getattr(func, "__module__", ""))
    path = getattr(func, "__qualname__", "").split(".")[:-1]
    for part in path:
        owner = getattr(owner, part, None)
    if not inspect.isclass(owner):
        return None
    for base in owner.__mro__[1:]:
        if method in vars(base):
            raw = vars(base)[method]
            target = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            return f"{base.__module__}.{base.__qualname__}.{method}", target
    return None


def drawing_functions(functions: dict[str, object]) -> set[str]:
    """The qualified names of the functions that draw random numbers, directly or through another one.

    A call is matched by the bare name of a drawing function (``sample_uniform``, a method ``draw``), except a call
    through ``super()``, which is resolved to the inherited method: it draws when that method is a drawing function
    of the package, or, outside the package, when its own code draws directly.
    """
    analysed = {key: _analyse(func) for key, func in functions.items()}
    drawing = {key for key, (direct, _) in analysed.items() if direct}
    resolved: dict[str, set[str]] = {}
    external: set[str] = set()  # inherited methods outside the package whose own code draws
    for key, (_, called) in analysed.items():
        for method in {name[len(_SUPER) :] for name in called if name.startswith(_SUPER)}:
            target = _inherited(functions[key], method)
            if target is None:
                continue
            target_key, target_func = target
            if target_key not in functions and inspect.isfunction(target_func) and _analyse(target_func)[0]:
                external.add(target_key)
            resolved.setdefault(key, set()).add(target_key)
    while True:
        names = {key.rsplit(".", 1)[-1] for key in drawing}
        new = {
            key
            for key, (_, called) in analysed.items()
            if key not in drawing and (called & names or resolved.get(key, set()) & (drawing | external))
        }
        if not new:
            return drawing
        drawing |= new


FUNCTIONS = _package_functions()
DRAWING = drawing_functions(FUNCTIONS)


def _key(obj) -> str:
    func = obj.__init__ if inspect.isclass(obj) else obj
    func = getattr(func, "__func__", func)
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"


def test_the_detector_sees_the_samplers_and_the_seeded_rules():
    for name in ("sample_uniform", "sample_vmf", "sample_watson"):
        assert f"dotkernels.sampling.{name}" in DRAWING
    assert "dotkernels.gegenbauer.legendre" not in DRAWING
    assert "dotkernels.features.RandomGegenbauerFeatures.__init__" in DRAWING
    # GPyTorch's initialiser, reached through super(), does not draw
    assert "dotkernels.integrations.gpytorch.GPyTorchKernel.__init__" not in DRAWING


def test_the_detector_catches_a_new_drawing_function_without_rng(tmp_path, monkeypatch):
    # a module written to disk, so that inspect.getsource works as for the package's own modules
    (tmp_path / "api_probe.py").write_text(
        textwrap.dedent(
            '''
            import numpy as np

            from dotkernels.sampling import sample_uniform


            def direct(n):
                """Draws with numpy's generator but takes no rng."""
                return np.random.default_rng().standard_normal(n)


            def indirect(n):
                """Draws through a package sampler."""
                return sample_uniform(n, q=3)


            def documented(n):
                """Mentions ``sample_uniform(n, q=3)`` in its docstring only: not drawing.

                >>> sample_uniform(2, q=3).shape
                (2, 3)
                """
                return n
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("api_probe")
    functions = dict(FUNCTIONS)
    functions.update({f"api_probe.{name}": getattr(probe, name) for name in ("direct", "indirect", "documented")})
    drawing = drawing_functions(functions)
    assert {"api_probe.direct", "api_probe.indirect"} <= drawing
    assert "api_probe.documented" not in drawing


def test_the_detector_resolves_calls_through_super(tmp_path, monkeypatch):
    # ``super().__init__()`` is not matched by the bare name ``__init__`` (package initialisers draw: the feature
    # maps'): it is the inherited initialiser, which draws when that one does, in the package or outside it
    (tmp_path / "api_probe_outside.py").write_text(
        textwrap.dedent(
            """
            import numpy as np


            class OutsideDrawing:
                def __init__(self):
                    self.value = np.random.default_rng().standard_normal()
            """
        )
    )
    (tmp_path / "api_probe_super.py").write_text(
        textwrap.dedent(
            """
            import argparse

            import numpy as np
            from api_probe_outside import OutsideDrawing

            from dotkernels.features import RandomGegenbauerFeatures


            class Drawing:
                def __init__(self):
                    self.value = np.random.default_rng().standard_normal()


            class Child(Drawing):
                def __init__(self):
                    super().__init__()


            class Grandchild(Child):
                def __init__(self):
                    super().__init__()


            class Features(RandomGegenbauerFeatures):
                def __init__(self, *args, **kwargs):
                    super().__init__(*args, **kwargs)


            class FromOutside(OutsideDrawing):
                def __init__(self):
                    super().__init__()


            class Quiet(argparse.Namespace):
                def __init__(self):
                    super().__init__(a=1)


            class QuietParentDrawingChild(argparse.Namespace):
                def __init__(self, rng):
                    super().__init__()
                    self.value = rng.normal()


            class QuietChild(Quiet):
                def __init__(self):
                    super().__init__()
                    self.__init__  # an attribute, not a call


            def calls_an_initialiser_by_name(obj):
                obj.__init__()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module("api_probe_super")
    classes = ("Drawing", "Child", "Grandchild", "Features", "FromOutside", "Quiet", "QuietParentDrawingChild")
    functions = dict(FUNCTIONS)
    functions.update({f"api_probe_super.{name}.__init__": vars(getattr(probe, name))["__init__"] for name in classes})
    functions["api_probe_super.QuietChild.__init__"] = probe.QuietChild.__init__
    functions["api_probe_super.calls_an_initialiser_by_name"] = probe.calls_an_initialiser_by_name
    drawing = {key for key in drawing_functions(functions) if key.startswith("api_probe_super.")}
    assert drawing == {
        "api_probe_super.Drawing.__init__",
        "api_probe_super.Child.__init__",
        "api_probe_super.Grandchild.__init__",
        "api_probe_super.Features.__init__",
        "api_probe_super.FromOutside.__init__",
        "api_probe_super.QuietParentDrawingChild.__init__",
        # a call by the bare name stays matched by it, as every other call
        "api_probe_super.calls_an_initialiser_by_name",
    }


DRAWING_PUBLIC = [row for row in PUBLIC if _key(row.obj) in DRAWING]


def test_some_public_callables_draw():
    assert {"dotkernels.sample_uniform", "dotkernels.sample_vmf"} <= set(_ids(DRAWING_PUBLIC))


# parameters that carry the generator the scipy.stats way: uniformity_test(..., method=MonteCarloMethod(rng=...))
RNG_CARRIERS = {"method"}


@pytest.mark.parametrize("row", DRAWING_PUBLIC, ids=_ids(DRAWING_PUBLIC))
def test_drawing_callables_take_rng(row):
    names = list(_signature(row).parameters)
    assert "rng" in names or RNG_CARRIERS & set(names), (
        f"{row.name} draws random numbers but has no `rng` parameter (SPEC 7)"
    )
    assert "random_state" not in names


# ---------------------------------------------------------------------------------------------------------------
# (c) docs/API.md is generated from the code


def test_api_table_is_up_to_date():
    expected = api_table.generate()
    current = api_table.API_PATH.read_text() if api_table.API_PATH.exists() else ""
    assert current == expected, f"docs/API.md is out of date: run `{api_table.REGENERATE}` and commit it"


def test_api_table_quotes_the_accuracy_sections():
    text = api_table.generate()
    row = next(line for line in text.splitlines() if line.startswith("| `dotkernels.log_harmonic_dimension`"))
    assert "4 eps" in row
    assert api_table.accuracy_of("Title.\n\nAccuracy\n--------\nTo 1e-15.\n\nMore.") == "To 1e-15."
    assert api_table.accuracy_of("Title.\n\nAccuracy: exact.\n") == "exact."
    assert api_table.accuracy_of("Title.") == ""


STATED = ("dotkernels.gegenbauer", "dotkernels.quadrature", "dotkernels.special", "dotkernels.sampling")


def test_the_numeric_core_states_its_accuracy():
    # every public function of the numeric core (and the symbolic polynomials) has an Accuracy section
    missing = [
        row.name
        for row in PUBLIC
        if row.kind == "function"
        and (
            row.obj.__module__ in STATED
            or (row.obj.__module__ == "dotkernels.symbolic" and not row.obj.__name__.startswith("derive_"))
        )
        and not api_table.accuracy_of(inspect.getdoc(row.obj))
    ]
    assert not missing, f"no Accuracy section in {missing}"
