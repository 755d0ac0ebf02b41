"""The pretraining benchmark's bookkeeping (commands, seeds, table); the runs themselves are not tests."""

from __future__ import annotations

import argparse
import importlib.util
import statistics
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pretrain.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pretrain", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**kw):
    return argparse.Namespace(**{"threads": 1, "epochs": None, "subset": None, "data_dir": None, "extra": [], **kw})


def test_seed_zero_keeps_the_plain_command_and_folder(bench, tmp_path):
    cmd0 = bench._command("sfrik", 0, _args(), tmp_path)
    cmd2 = bench._command("sfrik", 2, _args(epochs=1), tmp_path)
    assert "--seed" not in cmd0 and cmd0[cmd0.index("--out") + 1] == str(tmp_path / "sfrik")
    assert cmd2[cmd2.index("--seed") + 1] == "2" and cmd2[cmd2.index("--out") + 1] == str(tmp_path / "sfrik-seed2")
    assert cmd2[cmd2.index("--epochs") + 1] == "1"
    # the reuse stamp tells seeds apart through the resolved configuration
    assert bench._stamp(cmd0)["config"]["run"]["seed"] == 0 and bench._stamp(cmd2)["config"]["run"]["seed"] == 2


def test_run_folders_are_absolute_whatever_the_callers_directory(bench, tmp_path, monkeypatch):
    # a relative --runs-dir once gave a stamp that no longer matched the run folder from another cwd (retrain)
    monkeypatch.chdir(tmp_path)
    cmd = bench._command("vicreg", 1, _args(), Path("runs"))
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "runs" / "vicreg-seed1")
    assert bench._stamp(cmd) == bench._stamp(bench._command("vicreg", 1, _args(), tmp_path / "runs"))


def _summary(method, knn, linear):
    return {
        "method": method,
        "knn20_test": knn,
        "knn20_test_bank_trainval": knn + 0.001,
        "linear_test": linear,
        "logreg_test": None,
        "images_per_s": 300.0,
        "epoch_seconds": 180.0,
        "peak_rss_mb": 2000.0,
    }


def test_mean_and_sd_over_seeds_and_their_table_row(bench):
    runs = [_summary("sfrik", k, lin) for k, lin in ((0.8732, 0.89), (0.8729, 0.90), (0.8722, 0.895))]
    over = bench._over_seeds(runs)
    assert over["knn20_test_mean"] == pytest.approx(statistics.fmean([0.8732, 0.8729, 0.8722]), abs=1e-15)
    assert over["knn20_test_sd"] == pytest.approx(statistics.stdev([0.8732, 0.8729, 0.8722]), abs=1e-15)
    assert "logreg_test_mean" not in over and over["seeds"] is runs  # no values, no mean
    table = bench.markdown({"methods": {"sfrik": {**runs[0], **over}, "vicreg": _summary("vicreg", 0.87, 0.88)}})
    sfrik_row, vicreg_row = table.splitlines()[2:4]
    mean, sd = 100 * over["knn20_test_mean"], 100 * over["knn20_test_sd"]
    assert sfrik_row.startswith("| SFRIK (3 seeds) |") and f"{mean:.2f} ± {sd:.2f}" in sfrik_row
    assert vicreg_row.startswith("| VICReg | 88.00 | - | 87.00 / 87.10 |")


def test_summary_records_the_runs_kernel_and_options(bench, tmp_path):
    import json

    eval_json = {
        "epochs": 12,
        "kernel": "sfrik:1,40,40,40",
        "loss_options": {"sim_coeff": 250},
        "eval": {"knn": {"test": {"20": 0.87}, "val": {"20": 0.88}, "best_k": 20}},
        "train": {
            "images_per_s": 600.0,
            "epoch_seconds": 90.0,
            "train_seconds": 1080.0,
            "peak_rss_mb": 2.0e3,
            "last_epoch": {"knn_val": 0.86},
        },
    }
    (tmp_path / "eval.json").write_text(json.dumps(eval_json))
    summary = bench._summary("sfrik", tmp_path, wall=None, peak_rss_mb=None)
    assert summary["kernel"] == "sfrik:1,40,40,40" and summary["loss_options"] == {"sim_coeff": 250}
    assert summary["knn20_test"] == 0.87 and summary["linear_test"] is None and summary["peak_rss_mb"] == 2.0e3
