"""The HTML documentation: built with warnings as errors, then read in headless Chromium (formulas and figures).

The build (about a minute) runs once per session; its pages are probed through a local page that loads them in an
iframe and records, once MathJax has typeset, how many formulas were rendered and the size of every image.
"""

import json
import os
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
<iframe id="f" width="1200" height="900" src="{url}"></iframe>
<script>
var frame = document.getElementById("f"), tries = 0;
function probe() {{
  var d = frame.contentDocument;
  var math = d.querySelectorAll("span.math, div.math").length;
  var rendered = d.querySelectorAll(".MathJax_CHTML, mjx-container").length;
  if (rendered < math && ++tries < 40) {{ setTimeout(probe, 250); return; }}
  var images = Array.prototype.slice.call(d.images).map(function (i) {{
    return [i.getAttribute("src"), i.naturalWidth, i.naturalHeight];
  }});
  document.body.setAttribute("data-probe", JSON.stringify({{
    title: d.title, math: math, rendered: rendered,
    errors: d.querySelectorAll(".mjx-merror, .MathJax_Error, mjx-merror").length, images: images
  }}));
}}
frame.onload = function () {{ setTimeout(probe, 500); }};
</script></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"
    return out


def _browse(page: Path, tmp_path: Path) -> dict:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    probe = tmp_path / "probe.html"
    probe.write_text(_PROBE.format(url=page.as_uri()))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--allow-file-access-from-files",
        "--virtual-time-budget=30000",
        "--dump-dom",
        probe.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    marker = 'data-probe="'
    start = proc.stdout.find(marker)
    assert start >= 0, f"the probe did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    end = proc.stdout.index('"', start + len(marker))
    return json.loads(unescape(proc.stdout[start + len(marker) : end]))


def _assert_rendered(result: dict, *, min_math: int, figures: str) -> None:
    assert result["math"] >= min_math, result
    assert result["rendered"] == result["math"], f"MathJax typeset {result['rendered']} of {result['math']} formulas"
    assert result["errors"] == 0, result
    drawn = [img for img in result["images"] if figures in img[0]]
    assert drawn, f"no {figures} image on the page: {result['images']}"
    assert all(width > 100 and height > 100 for _, width, height in drawn), drawn


def test_index_renders_formulas_and_a_figure(site, tmp_path):
    result = _browse(site / "index.html", tmp_path)
    assert result["title"].startswith("dotkernels")
    _assert_rendered(result, min_math=3, figures="_images/")


def test_api_page_renders_formulas_and_example_figures(site, tmp_path):
    page = site / "api" / "generated" / "dotkernels.plotting.html"
    result = _browse(page, tmp_path)
    assert result["title"].startswith("dotkernels.plotting")
    _assert_rendered(result, min_math=10, figures="dotkernels-plotting-")


def test_reference_keeps_accuracy_sections_and_notebooks_keep_outputs(site):
    gegenbauer = (site / "api" / "generated" / "dotkernels.gegenbauer.html").read_text()
    assert gegenbauer.count(">Accuracy<") >= 5  # the docstrings' Accuracy sections are rendered, not dropped
    notebooks = sorted((site / "notebooks").glob("0*.html"))
    assert len(notebooks) >= 4
    for page in notebooks:
        assert "<img" in page.read_text(), f"{page.name} shows no figure"
    assert (site / "math.html").is_file() and (site / "API.html").is_file()
