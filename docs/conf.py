"""Sphinx configuration of the dotkernels documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (``pip install -e ".[docs]"``; the notebooks are rendered
with the outputs they were committed with, never executed, which needs pandoc).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from numpydoc import docscrape, docscrape_sphinx

import dotkernels

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _api_pages  # docs/_api_pages.py: what the API reference documents

project = "dotkernels"
author = "the dotkernels authors"
copyright = "the dotkernels authors, BSD-3-Clause"
release = version = dotkernels.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "matplotlib.sphinxext.plot_directive",
    "numpydoc",
    "myst_parser",
    "nbsphinx",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["dotkernels.css"]
html_js_files = ["dotkernels.js"]
# the API templates' helper functions (autosummary_context) cannot be pickled into the build cache: no matter;
# a docstring's References section lists the papers without necessarily citing each one in its text
suppress_warnings = ["config.cache", "ref.citation"]
# pages of the guide that a change may add or remove: listed in the index only when they exist
_OPTIONAL_PAGES = ("calibration",)

# ---- API reference: autosummary pages generated from the docstrings, numpydoc sections --------------------------
# One page per public module, function and class (docs/_templates/autosummary, docs/_api_pages.py), following the
# modules' __all__; the pages are generated afresh at every build, so a removed name leaves no stale page.
_GENERATED = Path(__file__).resolve().parent / "api" / "generated"
shutil.rmtree(_GENERATED, ignore_errors=True)
autosummary_generate = True
autosummary_context = {
    "api_members": _api_pages.members,
    "api_notes": _api_pages.notes_modules,
    "api_class_layout": _api_pages.class_layout,
    "api_data": _api_pages.data_entry,
}
autosummary_imported_members = False
autosummary_ignore_module_all = False  # a package documents what its __all__ re-exports, once
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_use_plots = True  # an Examples section that imports matplotlib shows its figure (dotkernels.plotting)
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 96)]
plot_pre_code = "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nfrom dotkernels.plotting import *"
# the docstrings' examples run as doctests (tests/test_doctests.py); here they are only shown

# The docstrings state their accuracy and domain in an "Accuracy" section (as scipy.special's reference does in
# prose); numpydoc knows no such section and would drop it, so it is parsed and rendered before "Notes".
docscrape.NumpyDocString.sections.setdefault("Accuracy", [])
_str_section = docscrape_sphinx.SphinxDocString._str_section


def _str_section_with_accuracy(self, name):
    out = _str_section(self, name)
    return _str_section(self, "Accuracy") + out if name == "Notes" else out


docscrape_sphinx.SphinxDocString._str_section = _str_section_with_accuracy

# ---- math: the page docs/math.md and the docstrings' formulas ------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# MathJax from Debian's libjs-mathjax (apt-get install libjs-mathjax fonts-mathjax) when it is installed, copied
# into the built site so that it reads offline; otherwise Sphinx's default (MathJax 3 from a CDN).
_SYSTEM_MATHJAX = Path("/usr/share/javascript/mathjax")
_MATHJAX_PARTS = (
    "MathJax.js",
    "config",
    "extensions",
    "jax/element",
    "jax/input/TeX",
    "jax/output/CommonHTML",
    "fonts/HTML-CSS/TeX/woff",
)
if (_SYSTEM_MATHJAX / "MathJax.js").is_file():
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS_CHTML"
    mathjax2_config = {
        "tex2jax": {
            "inlineMath": [["$", "$"], ["\\(", "\\)"]],
            "processEscapes": True,
            "ignoreClass": "document",
            "processClass": "math|output_area",
        },
        # a display wider than its column breaks at a relation or an operator (phones), else scrolls (CSS)
        "CommonHTML": {"linebreaks": {"automatic": True}},
    }


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html" or not (_SYSTEM_MATHJAX / "MathJax.js").is_file():
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        source = _SYSTEM_MATHJAX / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / part)


def _optional_pages(app, docname, source) -> None:
    if docname != root_doc:
        return
    missing = [page for page in _OPTIONAL_PAGES if page not in app.env.found_docs]
    source[0] = "\n".join(line for line in source[0].splitlines() if line.strip() not in missing) + "\n"


def setup(app) -> None:
    app.connect("build-finished", _copy_mathjax)
    app.connect("source-read", _optional_pages)


# ---- notebooks: rendered with their committed outputs --------------------------------------------------------------
# The notebooks live in ../notebooks; they are copied into docs/notebooks (not linked: through a symlinked folder,
# the relative paths nbsphinx writes for the figures resolve one level off and the images go missing).
_NOTEBOOKS_SOURCE = Path(__file__).resolve().parent.parent / "notebooks"
_NOTEBOOKS_COPY = Path(__file__).resolve().parent / "notebooks"
if _NOTEBOOKS_COPY.is_symlink():
    _NOTEBOOKS_COPY.unlink()
_NOTEBOOKS_COPY.mkdir(exist_ok=True)
for _stale in _NOTEBOOKS_COPY.glob("*.ipynb"):
    if not (_NOTEBOOKS_SOURCE / _stale.name).exists():
        _stale.unlink()
for _notebook in sorted(_NOTEBOOKS_SOURCE.glob("*.ipynb")):
    shutil.copy2(_notebook, _NOTEBOOKS_COPY / _notebook.name)
nbsphinx_execute = "never"
nbsphinx_allow_errors = False

# ---- HTML ---------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dotkernels {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    # the table of the public API uses the whole width (its page has no sections to list)
    "secondary_sidebar_items": {"**": ["page-toc", "sourcelink"], "API": []},
}
# the section navigation where a section has pages (API reference); the guide's pages and the notebooks use the
# whole width for their formulas and figures
html_sidebars = {
    "**": ["sidebar-nav-bs"],
    "index": [],
    "getting-started": [],
    "background": [],
    "math": [],
    "calibration": [],
    "API": [],
    "notebooks": [],
    **{f"notebooks/{notebook.stem}": [] for notebook in _NOTEBOOKS_SOURCE.glob("*.ipynb")},
}
