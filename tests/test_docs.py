"""The HTML documentation: built with warnings as errors, then read in headless Chromium (formulas and figures).

The build takes about a minute; its pages are then probed through a local page that loads them in an
iframe and records, once MathJax has typeset, how many formulas were rendered and the size of every image.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("nbsphinx")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

_PROBE = """<!DOCTYPE html><html><body>
<iframe id="f" width="1200" height="900"></iframe>
<script>
var visits = {visits}, results = [], current = 0, tries = 0, queued = false;
var frame = document.getElementById("f");
function inside(box, outer) {{ return box.left >= outer.left - 1 && box.right <= outer.right + 1; }}
function scrolls(el) {{
  var style = el.ownerDocument.defaultView.getComputedStyle(el);
  return style.overflowX === "auto" || style.overflowX === "scroll";
}}
function clipped(el, content, article, articleEl) {{
  // an element overflows when it leaves the article column, or when its content is wider than its box and no box
  // around the content (inside the column) scrolls horizontally: then the content is cut or spills out
  var box = el.getBoundingClientRect();
  if (box.width === 0) return false;
  if (!inside(box, article)) return true;
  var inner = content.getBoundingClientRect();
  var over = inner.right > box.right + 1 || inner.left < box.left - 1 || el.scrollWidth > el.clientWidth + 1;
  if (!over) return false;
  for (var node = content; node && node !== articleEl; node = node.parentElement) {{
    if (scrolls(node)) return !inside(node.getBoundingClientRect(), article);
  }}
  return true;
}}
function probe() {{
  var d = frame.contentDocument;
  var math = d.querySelectorAll("span.math, div.math").length;
  var rendered = d.querySelectorAll(".MathJax_CHTML, mjx-container").length;
  if (rendered < math && ++tries < 60) {{ setTimeout(probe, 250); return; }}
  var mathjax = frame.contentWindow.MathJax;
  if (!queued && mathjax && mathjax.Hub && mathjax.Hub.Queue) {{
    // measure once MathJax 2 has finished every pass (line breaking included)
    queued = true;
    mathjax.Hub.Queue(function () {{ setTimeout(probe, 200); }});
    return;
  }}
  var articleEl = d.querySelector(".bd-article") || d.body;
  var article = articleEl.getBoundingClientRect();
  var bad = [];
  Array.prototype.forEach.call(d.querySelectorAll("div.math"), function (el) {{
    var content = el.querySelector(".MathJax_CHTML, mjx-container") || el;
    if (clipped(el, content, article, articleEl)) bad.push("math: " + el.textContent.trim().slice(0, 60));
  }});
  Array.prototype.forEach.call(articleEl.querySelectorAll("img"), function (el) {{
    var box = el.getBoundingClientRect();
    if (box.width > 0 && !inside(box, article)) bad.push("img: " + el.getAttribute("src"));
  }});
  Array.prototype.forEach.call(articleEl.querySelectorAll("pre"), function (el) {{
    if (clipped(el, el, article, articleEl)) bad.push("pre: " + el.textContent.trim().slice(0, 60));
  }});
  // the API table: how many of its columns are in view without scrolling
  var columns = null, table = d.querySelector("table.api-table");
  if (table) {{
    var view = table.parentElement.getBoundingClientRect();
    columns = Array.prototype.filter.call(table.querySelectorAll("thead th"), function (th) {{
      var b = th.getBoundingClientRect();
      return b.right <= Math.min(view.right, article.right) + 1;
    }}).length;
  }}
  var images = Array.prototype.slice.call(d.images).map(function (i) {{
    return [i.getAttribute("src"), i.naturalWidth, i.naturalHeight, Math.round(i.getBoundingClientRect().width),
            !!(i.parentElement && i.parentElement.closest("a"))];
  }});
  results.push({{
    url: visits[current][0], width: visits[current][1], title: d.title, math: math, rendered: rendered,
    errors: d.querySelectorAll(".mjx-merror, .MathJax_Error, mjx-merror").length, images: images,
    article: Math.round(article.width), overflow: bad, columns: columns
  }});
  next();
}}
function next() {{
  current = results.length;
  if (current >= visits.length) {{
    document.body.setAttribute("data-probe", JSON.stringify(results));
    return;
  }}
  tries = 0;
  queued = false;
  frame.width = visits[current][1];
  frame.onload = function () {{ setTimeout(probe, 500); }};
  frame.src = visits[current][0];
}}
next();
</script></body></html>
"""


def _build(out: Path) -> None:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"


def _browse(visits: list[tuple[Path, int]], tmp_path: Path) -> list[dict]:
    """Load each page in an iframe of the given width (px) and return what the probe measured, in order."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    probe = tmp_path / "probe.html"
    probe.write_text(_PROBE.format(visits=json.dumps([[page.as_uri(), width] for page, width in visits])))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        f"--virtual-time-budget={30000 * len(visits)}",
        "--dump-dom",
        probe.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60 + 30 * len(visits))
    marker = 'data-probe="'
    start = proc.stdout.find(marker)
    assert start >= 0, f"the probe did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    end = proc.stdout.index('"', start + len(marker))
    return json.loads(unescape(proc.stdout[start + len(marker) : end]))


def _assert_rendered(result: dict, *, min_math: int, figures: str | None = None) -> None:
    assert result["math"] >= min_math, result
    assert result["rendered"] == result["math"], f"MathJax typeset {result['rendered']} of {result['math']} formulas"
    assert result["errors"] == 0, result
    if figures is not None:
        drawn = [img for img in result["images"] if figures in img[0]]
        assert drawn, f"no {figures} image on the page: {result['images']}"
        assert all(width > 100 and height > 100 for _, width, height, *_ in drawn), drawn


PHONE, DESKTOP = 390, 1400  # CSS pixels: a phone held upright, a laptop screen


def test_docs_build_without_warnings_and_render_in_a_browser(tmp_path):
    # one test, so that parallel workers never build the site (and its generated API stubs) twice at once
    site = tmp_path / "html"
    _build(site)
    generated = site / "api" / "generated"

    # a page per public function and class, with the docstrings' Accuracy sections; a class lists its methods,
    # and the methods it inherits from a public base are linked to the base, not repeated
    for name in (
        "dotkernels.uniformity.uniformity_test",
        "dotkernels.kernels.GaussianKernel",
        "dotkernels_ssl.losses.SFRIKLoss",
        "dotkernels.alternatives.sample_acg",
    ):
        assert (generated / f"{name}.html").is_file(), name
    assert ">Accuracy<" in (generated / "dotkernels.gegenbauer.legendre.html").read_text()
    gaussian = (generated / "dotkernels.kernels.GaussianKernel.html").read_text()
    assert 'id="dotkernels.kernels.DotProductKernel.spectrum"' not in gaussian
    assert "dotkernels.kernels.DotProductKernel.html#dotkernels.kernels.DotProductKernel.spectrum" in gaussian
    base = (generated / "dotkernels.kernels.DotProductKernel.html").read_text()
    assert 'id="dotkernels.kernels.DotProductKernel.spectrum"' in base
    # the package's conventions and the notes of the uniformity tests (truncation rule, references) are shown
    assert "Degree first, dimension by keyword" in (generated / "dotkernels.html").read_text()
    uniformity = (generated / "dotkernels.uniformity.html").read_text()
    assert "TAIL_RTOL" in uniformity and "García-Portugués" in uniformity
    # module data is described by its own comment, never by the docstring of its type (int, dict, ...)
    for page in generated.glob("*.html"):
        text = page.read_text()
        assert "int([x]) -&gt; integer" not in text and "dict() -&gt; new empty dictionary" not in text, page.name

    notebooks = sorted((site / "notebooks").glob("0*.html"))
    assert len(notebooks) >= 4
    for page in notebooks:
        sources = re.findall(r'<img[^>]* src="([^"]+)"', page.read_text())
        assert sources, f"{page.name} shows no figure"
        missing = [src for src in sources if not src.startswith("data:") and not (page.parent / src).is_file()]
        assert not missing, f"{page.name}: images not in the built site: {missing}"
    for page in ("math", "API", "getting-started", "background"):
        assert (site / f"{page}.html").is_file(), page
    assert not (site / "MATH.html").exists() and not (site / "PAPER.html").exists()
    # the guide's references to the API all lead to their pages
    for page in ("index", "getting-started", "background", "math", "api/index"):
        html = (site / f"{page}.html").read_text()
        unresolved = [
            m.group(2)
            for m in re.finditer(r'(<a [^>]*>)?<code class="xref py[^>]*>(.*?)</code>', html)
            if not m.group(1)
        ]
        assert not unresolved, f"{page}: references without a page: {unresolved}"

    # in the browser, at a laptop's and a phone's width: formulas typeset, and no display formula, figure or code
    # block leaves its column or is cut (a box that scrolls horizontally is allowed)
    pages = [
        site / "index.html",
        site / "math.html",
        site / "API.html",
        notebooks[0],
        generated / "dotkernels.plotting.plot_spectrum.html",
        generated / "dotkernels.uniformity.uniformity_test.html",
    ]
    results = _browse([(page, width) for page in pages for width in (DESKTOP, PHONE)], tmp_path)
    for result in results:
        assert not result["overflow"], f"{result['url']} at {result['width']} px: {result['overflow']}"
    index, math, table, notebook, plot, test = results[::2]
    assert index["title"].startswith("dotkernels")
    _assert_rendered(index, min_math=3, figures="_images/")
    _assert_rendered(math, min_math=40)
    _assert_rendered(plot, min_math=1, figures="dotkernels-plotting-")
    _assert_rendered(test, min_math=1)
    # the guide's pages use the width of a laptop screen; the API table shows its four columns
    assert math["article"] >= 900, math
    assert table["article"] >= 900 and table["columns"] == 4, table  # Name, Signature, Computes, Accuracy
    # a notebook's figures are shown at their own size, or as wide as the page allows (the whole width of a laptop
    # screen, no sidebars), and a click opens the full-size image
    assert notebook["article"] >= 1200, notebook
    figures = [img for img in notebook["images"] if img[1] > 100]
    assert figures and all(img[4] for img in figures), notebook["images"]
    assert all(img[3] >= min(img[1], notebook["article"]) - 2 for img in figures), notebook["images"]


def test_api_table_states_the_import_path_of_every_name():
    """Every name of docs/API.md imports by the path the table states (``from module import name``)."""
    table = (ROOT / "docs" / "API.md").read_text()
    names = re.findall(r"^\| `([A-Za-z_][\w.]*)` \|", table, flags=re.M)
    assert len(names) > 100
    for path in names:
        parts = path.split(".")
        for split in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:split])
            try:
                importlib.import_module(module)
            except ImportError:
                continue
            break
        namespace: dict = {}
        exec(f"from {module} import {parts[split]}", namespace)  # the statement a user writes
        obj = namespace[parts[split]]
        for attr in parts[split + 1 :]:
            obj = getattr(obj, attr)
        assert callable(obj), path


@pytest.mark.parametrize("page", ["getting-started.md"])
def test_the_code_of_the_guide_runs(page, capsys):
    """The Python blocks of a guide page run as written, in order, in one namespace."""
    pytest.importorskip("torch")
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Rayleigh" in printed and "uniformity" in printed  # the battery's table, the loss terms


def test_the_numbers_of_the_math_page():
    """The numbers the math page states are the library's (and scipy's) own."""
    import numpy as np
    from scipy import special

    from dotkernels import ExponentialKernel, harmonic_dimension, sobolev_null

    text = " ".join((ROOT / "docs" / "math.md").read_text().split())
    match = re.search(
        r"`sobolev_null\(ExponentialKernel\(kappa=2\.0\), q=3\)\.sf\(\[([\d.]+), ([\d.]+), ([\d.]+)\]\)` returns "
        r"([\d.]+), ([\d.]+) and ([\d.]+)",
        text,
    )
    assert match, "the example of the null law is not on the math page"
    x, stated = [float(v) for v in match.groups()[:3]], [float(v) for v in match.groups()[3:]]
    computed = sobolev_null(ExponentialKernel(kappa=2.0), q=3).sf(x)
    np.testing.assert_allclose(computed, stated, atol=5e-5)  # the page rounds to 4 decimals
    assert "exceeds $10^{13}$ already at $q = 64$, $l = 12$" in text and harmonic_dimension(12, q=64) > 10**13
    assert "`eval_gegenbauer(100, 32767, 1.0)` is `inf`" in text
    assert special.eval_gegenbauer(100, 32767, 1.0) == np.inf
    assert "`ive` underflows to 0 at $\\nu = 32767$, $x = 10^4$" in text
    assert special.ive(32767, 1e4) == 0.0
