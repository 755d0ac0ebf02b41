"""The HTML documentation: built with warnings as errors, then read in headless Chromium (formulas and figures).

The build takes about a minute; its pages are then probed through a local page that loads them in an
iframe and records, once MathJax has typeset, how many formulas were rendered and the size of every image.
"""

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


def _build(out: Path) -> None:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"


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


def test_docs_build_without_warnings_and_render_in_a_browser(tmp_path):
    # one test, so that parallel workers never build the site (and its generated API stubs) twice at once
    site = tmp_path / "html"
    _build(site)

    # the reference keeps the docstrings' Accuracy sections, the notebooks their figures
    gegenbauer = (site / "api" / "generated" / "dotkernels.gegenbauer.html").read_text()
    assert gegenbauer.count(">Accuracy<") >= 5
    notebooks = sorted((site / "notebooks").glob("0*.html"))
    assert len(notebooks) >= 4
    for page in notebooks:
        sources = re.findall(r'<img[^>]* src="([^"]+)"', page.read_text())
        assert sources, f"{page.name} shows no figure"
        missing = [src for src in sources if not src.startswith("data:") and not (page.parent / src).is_file()]
        assert not missing, f"{page.name}: images not in the built site: {missing}"
    assert (site / "math.html").is_file() and (site / "API.html").is_file()

    # the index: formulas typeset by MathJax and the figure drawn by the plot directive
    index = _browse(site / "index.html", tmp_path)
    assert index["title"].startswith("dotkernels")
    _assert_rendered(index, min_math=3, figures="_images/")

    # an API page: the formulas of the docstrings and the figures of their examples
    api = _browse(site / "api" / "generated" / "dotkernels.plotting.html", tmp_path)
    assert api["title"].startswith("dotkernels.plotting")
    _assert_rendered(api, min_math=10, figures="dotkernels-plotting-")
