"""The kernel-matrix benchmark runs end to end on tiny sizes and records what its README table shows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gram.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gram", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_on_tiny_sizes_writes_its_json(bench, tmp_path, capsys):
    out = tmp_path / "gram.json"
    argv = [
        "--quick",
        "--n", "30",
        "--q", "3", "5",
        "--families", "gaussian:gamma=1", "sfrik", "heat:time=0.1",
        "--no-gk",
        "--series-n", "20",
        "--series-terms", "64",
        "--feature-n", "500",
        "--exact-n", "100",
        "--directions", "8",
        "--repeats", "1",
        "--json", str(out),
    ]  # fmt: skip
    assert bench.main(argv) == 0
    record = json.loads(out.read_text())
    assert {(r["kernel"], r["q"]) for r in record["gram"]} == {
        (k, q) for k in ("gaussian:gamma=1", "sfrik", "heat:time=0.1") for q in (3, 5)
    }
    assert all(r["numpy_s"] > 0 and r["torch_s"] > 0 and r["n"] == 30 for r in record["gram"])
    (series,) = record["series"]
    assert series["terms"] == 64 and series["allocating_torch_grad_s"] > 0
    assert {r["kernel"] for r in record["feature_mmd"]} == {"sfrik", "gaussian:gamma=1"}
    assert record["machine"]["threads"] == 1 and record["command"].startswith("python benchmarks/bench_gram.py")
    table = capsys.readouterr().out
    assert "| heat:time=0.1 |" in table and "q=5 torch" in table


def test_the_reference_loop_computes_the_same_series(bench):
    torch = pytest.importorskip("torch")
    from dotkernels import legendre_series

    t = np.linspace(-1.0, 1.0, 41)
    coef = (1.0 / np.arange(1, 101) ** 2).tolist()
    np.testing.assert_allclose(
        bench.allocating_clenshaw(coef, 3, torch.tensor(t)).numpy(), legendre_series(coef, t, q=3), rtol=1e-13
    )
