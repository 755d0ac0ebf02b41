"""Generate docs/API.md, the table of dotkernels' public API, from the code itself.

    python docs/_generate_api_table.py          # rewrite docs/API.md
    python docs/_generate_api_table.py --check  # exit 1 if docs/API.md is out of date

A public callable is a function or class listed in the ``__all__`` of a public module of :mod:`dotkernels` (no
path component starting with ``_``), and every public method of such a class defined in dotkernels. For each the
table gives its signature, what it computes (the first line of its docstring) and its accuracy (the first paragraph
of an ``Accuracy`` docstring section, or of a line starting with ``Accuracy:``). tests/test_api.py fails when the
committed table differs from the generated one, and checks the API conventions on the same list of callables.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

API_PATH = Path(__file__).resolve().parent / "API.md"
REGENERATE = "python docs/_generate_api_table.py"


@dataclass(frozen=True)
class PublicCallable:
    """One row of the table: a public function, class or method."""

    name: str  # the public dotted name, e.g. dotkernels.legendre or dotkernels.GaussianKernel.spectrum
    obj: Callable[..., Any]
    kind: str  # "function", "class" or "method"
    owner: type | None = None  # the class of a method


def public_modules(package: str = "dotkernels") -> list[ModuleType]:
    """The package and its public submodules (no path component starting with an underscore), imported."""
    root = importlib.import_module(package)
    modules = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return sorted(modules, key=lambda m: m.__name__)


def _defined_in(obj: Any, package: str) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == package


def _public_name(obj: Any, name: str, modules: list[ModuleType]) -> str:
    """The import path: ``package.name`` when the package exports it, else the shortest public module path that does."""
    homes = [m.__name__ for m in modules if name in getattr(m, "__all__", ()) and getattr(m, name, None) is obj]
    return f"{min(homes, key=lambda h: (h.count('.'), h))}.{name}"


def public_callables(package: str = "dotkernels") -> list[PublicCallable]:
    """Every public function, class and public method of ``package``, sorted by name, each once."""
    modules = public_modules(package)
    seen: dict[int, PublicCallable] = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not callable(obj) or not _defined_in(obj, package) or id(obj) in seen:
                continue
            kind = "class" if inspect.isclass(obj) else "function"
            seen[id(obj)] = PublicCallable(_public_name(obj, name, modules), obj, kind)
    rows = list(seen.values())
    for row in list(rows):
        if row.kind == "class":
            rows.extend(_public_methods(row))
    return sorted(rows, key=lambda r: r.name.lower())


def _public_methods(row: PublicCallable) -> Iterator[PublicCallable]:
    cls = row.obj
    package = row.name.split(".")[0]
    for attr, raw in sorted(_class_attributes(cls).items()):
        if attr.startswith("_"):
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            func = raw.__func__
        elif inspect.isfunction(raw):
            func = raw
        else:
            continue  # properties, data attributes
        if _defined_in(func, package):
            yield PublicCallable(f"{row.name}.{attr}", getattr(cls, attr), "method", cls)


def _class_attributes(cls: type) -> dict[str, Any]:
    """Attributes of ``cls`` and its bases, the most derived definition winning."""
    out: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        out.update(vars(base))
    return out


def signature_of(obj: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _summary(doc: str | None) -> str:
    lines = inspect.cleandoc(doc or "").strip().splitlines()
    paragraph = []
    for line in lines:
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph)


def accuracy_of(doc: str | None) -> str:
    """The first paragraph of a docstring's ``Accuracy`` section (or ``Accuracy:`` line); '' when there is none."""
    lines = inspect.cleandoc(doc or "").splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        section = stripped == "Accuracy" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        inline = stripped.lower().startswith("accuracy:")
        if not (section or inline):
            continue
        body = lines[i + 2 :] if section else [stripped.split(":", 1)[1], *lines[i + 1 :]]
        paragraph = []
        for text in body:
            if not text.strip():
                if paragraph:
                    break
                continue
            paragraph.append(text.strip())
        return " ".join(paragraph)
    return ""


def _math(match: re.Match[str]) -> str:
    # a pipe inside a table cell ends the cell even when escaped after a backslash: write norms and absolute values
    # with LaTeX's \Vert and \vert instead
    return "$" + match.group(1).replace("\\|", "\\Vert ").replace("|", "\\vert ") + "$"


def _markdown(text: str) -> str:
    """Docstring reST to the Markdown of the table: math roles to dollar math, cross-references to code."""
    text = re.sub(r":math:`([^`]*)`", _math, text)
    text = re.sub(r":(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`]*)`", r"`\1`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # default values' reprs carry no addresses
    return text.replace("|", "\\|").replace("\n", " ")


class _Annotation:
    """An annotation shown as written in the source (postponed annotations are strings: no quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _display_signature(row: PublicCallable) -> str:
    sig = signature_of(row.obj)
    if sig is None:
        return "(...)"
    params = list(sig.parameters.values())
    if row.kind == "method" and params and params[0].name in ("self", "cls"):
        params = params[1:]
    params = [p.replace(annotation=_Annotation(p.annotation)) if isinstance(p.annotation, str) else p for p in params]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def generate(package: str = "dotkernels") -> str:
    """The Markdown text of docs/API.md."""
    out = [
        f"# Public API of `{package}`",
        "",
        f"Generated from the docstrings by `{REGENERATE}`; tests/test_api.py fails when this file is out of date.",
        "*Name* is the path a name is imported from: `dotkernels.legendre` is `from dotkernels import legendre`,",
        "`dotkernels.alternatives.sample_acg` is `from dotkernels.alternatives import sample_acg` (the package",
        "re-exports the names of its core modules, not those of the others), and a method is named after its",
        "class (tests/test_docs.py imports every name by this path).",
        "Conventions: degree first, the dimension `q` keyword-only, data first and options keyword-only, randomness",
        "through `rng` (see the package docstring). *Accuracy* quotes each docstring's Accuracy section; functions",
        "without one (classes, plumbing, estimators whose accuracy is that of the functions they call) show a dash.",
        "",
        "| Name | Signature | Computes | Accuracy |",
        "|---|---|---|---|",
    ]
    for row in public_callables(package):
        doc = inspect.getdoc(row.obj)
        accuracy = accuracy_of(doc) or "—"
        out.append(
            f"| `{_cell(row.name)}` | `{_cell(_display_signature(row))}` | {_cell(_markdown(_summary(doc))) or '—'} | "
            f"{_cell(_markdown(accuracy))} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/API.md differs from the generated one")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = API_PATH.read_text() if API_PATH.exists() else ""
        if current != text:
            print(f"{API_PATH} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    API_PATH.write_text(text)
    print(f"wrote {API_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
