"""The committed notebooks carry the outputs of a full run: every code cell ran, in order, and shows its results;
their figures fit a page column, and notebook 05 lists the papers it cites.

(CI re-executes them in their fast mode with nbmake, ``DOTKERNELS_FAST=1 pytest --nbmake notebooks``.)
"""

import base64
import struct
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there():
    names = [p.stem for p in NOTEBOOKS]
    for expected in (
        "01_kernel_spectra",
        "02_special_cases",
        "03_uniformity_tests",
        "04_pretraining",
        "05_network_kernels",
        "06_gaussian_processes",
    ):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_code_cell_has_outputs_and_no_error(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    counts = []
    for i, cell in enumerate(code):
        assert cell.outputs, f"{path.name}: code cell {i} has no output (commit the notebook after a full run)"
        assert not [o for o in cell.outputs if o.output_type == "error"], f"{path.name}: code cell {i} failed"
        counts.append(cell.execution_count)
    # every cell ran, once, from top to bottom in a fresh kernel
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_shows_a_figure_and_ends_with_a_conclusion(path):
    nb = nbformat.read(path, as_version=4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure"
    last_markdown = [c for c in nb.cells if c.cell_type == "markdown"][-1].source
    assert "conclusion" in last_markdown.lower() or "summary" in last_markdown.lower(), path.name


def _png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data)[:24]
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_fits_a_page_column(path):
    # a figure wider than the page's column (about 900 px) is shrunk and its labels with it: figures are at most
    # 10 inches wide at the inline backend's 100 dpi (several panels go below each other, not side by side)
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.outputs:
            if "image/png" in out.get("data", {}):
                width, _ = _png_size(out["data"]["image/png"])
                assert width <= 1000, f"{path.name}: code cell {i} draws a figure {width} px wide"


def test_network_kernels_notebook_has_a_bibliography():
    nb = nbformat.read(NOTEBOOKS[0].parent / "05_network_kernels.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    references = text.split("## References")[1]
    for cited in ("Jacot", "Lee, J., Bahri", "Matthews", "Cho, Y. and Saul", "Bietti, A. and Mairal", "Geifman"):
        assert cited in references, cited
