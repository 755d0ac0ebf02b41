"""The training-step settings benchmark (bench_pretrain.py --settings-only): settings, tables, the README's section."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

_ROOT = Path(__file__).resolve().parents[1]
_JSON = _ROOT / "benchmarks" / "results" / "pretrain_throughput_settings.json"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pretrain", _ROOT / "benchmarks" / "bench_pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_are_parsed_and_bad_ones_rejected(bench):
    assert bench.parse_setting("fp32") == {"amp": None, "channels_last": True, "compile": False}
    assert bench.parse_setting("bf16-nchw-compile") == {"amp": torch.bfloat16, "channels_last": False, "compile": True}
    for bad in ("fp16", "bf16-fast", "fp32-nchw-nchw", "compile"):
        with pytest.raises(ValueError, match="expected fp32 or bf16"):
            bench.parse_setting(bad)
    with pytest.raises(SystemExit):
        bench.main(["--settings-only", "--step-settings", "fp32,bf17"])


def test_settings_table_rows(bench):
    row = {"images_per_s": 400.0, "first_loss_rel_diff": 0.0, "first_grad_rel_diff": 0.0}
    fast = {"images_per_s": 600.0, "first_loss_rel_diff": 2.5e-5, "first_grad_rel_diff": 0.048}
    result = {"threads": {"1": {"fp32": row, "bf16": fast}, "2": {"fp32": row, "bf16": {**fast, "images_per_s": 500}}}}
    lines = bench.settings_markdown(result).splitlines()
    assert lines[0].startswith("| setting | 1 thread: images/s (x fp32) | 2 threads: images/s (x fp32) |")
    assert lines[2:] == [
        "| fp32 | 400 (1.00) | 400 (1.00) | 0.0e+00 | 0.0e+00 |",
        "| bf16 | 600 (1.50) | 500 (1.25) | 2.5e-05 | 4.8e-02 |",
    ]


def _write_run(folder: Path, losses: list[float], knn: float) -> None:
    folder.mkdir()
    with open(folder / "metrics_step.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss"])
        w.writerows([i + 1, v] for i, v in enumerate(losses))
    (folder / "metrics_epoch.csv").write_text(f"epoch,loss,knn_val,images_per_s\n1,{losses[-1]},{knn},100.0\n")


def test_compare_runs(bench, tmp_path):
    _write_run(tmp_path / "a", [4.0, 2.0, 1.0], 0.8)
    _write_run(tmp_path / "b", [4.0, 2.1, 0.99], 0.81)
    cmp = bench.compare_runs(tmp_path / "a", tmp_path / "b")
    assert cmp["steps"] == 3 and cmp["max_step_loss_rel_diff"] == pytest.approx(0.05, rel=1e-12)
    assert cmp["last_epoch"][1] == {"loss": 0.99, "knn_val": 0.81, "images_per_s": 100.0}
    _write_run(tmp_path / "c", [4.0, 2.0], 0.8)
    with pytest.raises(ValueError, match="different steps"):
        bench.compare_runs(tmp_path / "a", tmp_path / "c")


def test_step_settings_runs_and_compares_the_first_step(bench, monkeypatch):
    """Two settings on a few steps of the real preset (tiny: 1 warm-up, 1 timed step, one thread)."""
    from dotkernels_ssl.pretraining import data

    try:
        data.load_dataset("fashion-mnist", "train", None, limit=8)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    args = argparse.Namespace(
        step_settings=["fp32", "fp32-nchw"], step_threads=[1], step_warmup=1, throughput_steps=1, data_dir=None
    )
    out = bench.step_settings(args)["threads"]["1"]
    assert out["fp32"]["first_loss_rel_diff"] == 0.0 and out["fp32"]["first_grad_rel_diff"] == 0.0
    # the same model and batch in another memory format: float32 rounding only
    assert 0 <= out["fp32-nchw"]["first_loss_rel_diff"] < 1e-4
    assert out["fp32-nchw"]["embedding_dtype"] == out["fp32-nchw"]["loss_dtype"] == "float32"
    assert out["fp32-nchw"]["first_loss"] == pytest.approx(out["fp32"]["first_loss"], rel=1e-4)


def test_readme_section_is_the_json(bench):
    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Precision, memory format and torch.compile of the training step")
    section = text[start : text.index("\n### ", start + 5)]
    flat = " ".join(section.split())
    result = json.loads(_JSON.read_text())
    st, m, cr = result["step_settings"], result["machine"], result["compare_runs"]
    assert f"--settings-only --throughput-steps {st['steps']} --out" in flat
    assert bench.settings_markdown(st) in section
    assert "avx512_bf16" in m["cpu_flags"] and "amx_bf16" not in m["cpu_flags"]  # "with avx512_bf16 and no AMX"
    load0, load1 = m["load_average_at_start"][0], m["load_average_at_end"][0]
    assert f"from {load0:.1f} at the start to {load1:.1f} at the end" in flat
    one, two = st["threads"]["1"], st["threads"]["2"]
    ratio = one["bf16"]["images_per_s"] / one["fp32"]["images_per_s"]
    assert f"is the fastest setting: {ratio:.2f}x fp32's images/s with one thread" in flat
    assert max(r["images_per_s"] for r in one.values()) == one["bf16"]["images_per_s"]
    assert one["bf16"]["embedding_dtype"] == "bfloat16" and one["bf16"]["loss_dtype"] == "float32"
    a, b = cr["last_epoch"]
    assert f"agree within {100 * cr['max_step_loss_rel_diff']:.2f} %" in flat
    assert f"validation kNN accuracy {100 * a['knn_val']:.2f} % and {100 * b['knn_val']:.2f} %" in flat
    assert f"at {a['images_per_s']:.0f} and {b['images_per_s']:.0f} images/s" in flat
    assert f"is {one['fp32']['images_per_s'] / one['fp32-nchw']['images_per_s']:.2f}x faster than contiguous" in flat
    steps = [x for r in two.values() for x in r["seconds_per_step"]]
    assert f"a step took {min(steps):.1f}-{max(steps):.0f} s" in flat
