"""What the API reference documents, read from the packages themselves (used by conf.py and the page templates).

Every public module gets a page: the packages ``dotkernels`` and ``dotkernels_ssl``, their public submodules (no
name starting with ``_``), and inside a subpackage the submodules its ``__all__`` names (every public one when it
has no ``__all__``). A module page lists the names of its ``__all__`` (or, without ``__all__``, the public names
defined in it), and every public function and class gets one page, under the module where it is defined when that
module has a page, else under the first module page (shallowest) that lists it: a name re-exported by several
modules is documented once. The packages themselves re-export and document no object. New modules and names appear
in the reference as soon as they are in an ``__all__``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from functools import cache
from types import ModuleType
from typing import Any

ROOTS = ("dotkernels", "dotkernels_ssl")


def _public(name: str) -> bool:
    return not name.startswith("_")


def _submodules(module: ModuleType) -> list[str]:
    if not hasattr(module, "__path__"):
        return []
    return sorted(
        f"{module.__name__}.{info.name}" for info in pkgutil.iter_modules(module.__path__) if _public(info.name)
    )


@cache
def module_pages() -> tuple[str, ...]:
    """Every module with a page, parents before children."""
    out: list[str] = []

    def visit(name: str, root: bool) -> None:
        out.append(name)
        module = importlib.import_module(name)
        children = _submodules(module)
        listed = getattr(module, "__all__", None)
        if not root and listed is not None:
            children = [c for c in children if c.rsplit(".", 1)[1] in listed]
        for child in children:
            visit(child, False)

    for root in ROOTS:
        visit(root, True)
    return tuple(out)


def _names(module: ModuleType) -> list[str]:
    listed = getattr(module, "__all__", None)
    if listed is not None:
        return list(listed)
    return [n for n, v in vars(module).items() if _public(n) and getattr(v, "__module__", None) == module.__name__]


@cache
def homes() -> dict[int, str]:
    """id(object) -> the full name of its page (module path + name)."""
    pages = module_pages()
    out: dict[int, str] = {}
    candidates: dict[int, list[tuple[str, str]]] = {}
    keep: dict[int, Any] = {}
    for page in pages:
        if page in ROOTS:
            continue
        module = importlib.import_module(page)
        for name in _names(module):
            obj = getattr(module, name, None)
            if obj is None or inspect.ismodule(obj):
                continue
            candidates.setdefault(id(obj), []).append((page, name))
            keep[id(obj)] = obj
    for key, places in candidates.items():
        obj = keep[key]
        defined = [p for p in places if p[0] == getattr(obj, "__module__", None)]
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
            defined = []  # data: documented where it is listed first
        page, name = (defined or sorted(places, key=lambda p: (p[0].count("."), pages.index(p[0]))))[0]
        out[key] = f"{page}.{name}"
    return out


def members(fullname: str) -> dict[str, list[str]]:
    """The names documented on the page of module ``fullname``, by kind, and its child module pages."""
    module = importlib.import_module(fullname)
    kinds: dict[str, list[str]] = {"functions": [], "classes": [], "exceptions": [], "data": [], "modules": []}
    kinds["modules"] = [m for m in module_pages() if m != fullname and m.rsplit(".", 1)[0] == fullname]
    if fullname in ROOTS:
        return kinds
    where = homes()
    for name in _names(module):
        obj = getattr(module, name, None)
        if obj is None or inspect.ismodule(obj) or where.get(id(obj)) != f"{fullname}.{name}":
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            kinds["exceptions"].append(name)
        elif inspect.isclass(obj):
            kinds["classes"].append(name)
        elif callable(obj):
            kinds["functions"].append(name)
        else:
            kinds["data"].append(name)
    return kinds


def notes_modules(fullname: str) -> list[str]:
    """The private submodules of a public package whose docstrings hold notes the package's docstring points to."""
    module = importlib.import_module(fullname)
    if not hasattr(module, "__path__") or not module.__doc__:
        return []
    out = []
    for info in pkgutil.iter_modules(module.__path__):
        if _public(info.name) or info.name.startswith("__"):
            continue
        if f"``{info.name}``" in module.__doc__ or f"``{fullname}.{info.name}``" in module.__doc__:
            out.append(f"{fullname}.{info.name}")
    return out


def _package_of(cls: type) -> str:
    return (getattr(cls, "__module__", None) or "").split(".")[0]


def class_layout(fullname: str) -> dict[str, Any]:
    """How the page of a class shows its methods: its own, those of private bases, the public bases' ones by link.

    ``ignore``: the base classes whose members autodoc leaves out (the public bases of the package, documented on
    their own pages, and every base from outside the package); ``inherited``: (base page, [method names]) pairs,
    for a line that links to them; ``methods``: the methods documented on the page; ``exclude``: class attributes
    that are module-level functions documented on their own pages (a loss module's functional twin ``function``).
    """
    module_name, _, name = fullname.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    package = _package_of(cls)
    where = homes()
    ignore: list[str] = []
    inherited: list[tuple[str, list[str]]] = []
    seen = set(vars(cls))
    for base in cls.__mro__[1:]:
        if _package_of(base) != package or id(base) in where:
            ignore.append(base.__name__)
        if id(base) in where and _package_of(base) == package:
            methods = sorted(
                n
                for n, v in vars(base).items()
                if _public(n)
                and n not in seen
                and (inspect.isfunction(v) or isinstance(v, (staticmethod, classmethod)))
            )
            if methods:
                inherited.append((where[id(base)], methods))
        seen.update(vars(base))
    own: set[str] = set()
    aliases: set[str] = set()  # a class attribute that is a module-level function (a loss's ``function``)
    for base in cls.__mro__:
        if not (base is cls or (_package_of(base) == package and id(base) not in where)):
            continue
        for n, v in vars(base).items():
            func = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
            if not _public(n) or not inspect.isfunction(func):
                continue
            if "." not in func.__qualname__:
                aliases.add(n)
            else:
                own.add(n)
    return {
        "ignore": ", ".join(dict.fromkeys(ignore)),
        "inherited": inherited,
        "methods": sorted(own - aliases),
        "exclude": ", ".join(sorted(aliases)),
    }


def data_entry(fullname: str, name: str) -> dict[str, str]:
    """The description of module data ``fullname.name``: its ``#:`` comment, in whichever module of the package
    assigns it, and its value when short (a number or a short string)."""
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    module = importlib.import_module(fullname)
    value = getattr(module, name)
    package = fullname.split(".")[0]
    candidates = [fullname, *sorted(m for m in sys.modules if m.startswith(f"{fullname}.") or m == package)]
    doc = ""
    for candidate in candidates:
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except PycodeError:  # a module without source
            continue
        if ("", name) in docs and getattr(sys.modules[candidate], name, None) is value:
            doc = " ".join(line.strip() for line in docs[("", name)] if line.strip())
            break
    shown = repr(value) if isinstance(value, (int, float, str)) and len(repr(value)) <= 40 else ""
    return {"doc": doc, "value": shown}
