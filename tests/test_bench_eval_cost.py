"""The evaluation-cost benchmark: its quick mode runs end to end, its table is the README's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "benchmarks"))

import bench_eval_cost as bench  # noqa: E402


def _check_timing(r: dict) -> None:
    assert r["cpu_s"] >= 0 and r["wall_s"] > 0
    assert len(r["load_before"]) == 3 and len(r["load_after"]) == 3
    assert 0 <= r["test_acc"] <= 1


def _committed() -> dict:
    return json.loads((_ROOT / "benchmarks" / "results" / "eval_cost.json").read_text())


def test_quick_mode_writes_the_committed_schema(tmp_path):
    """--quick times a step in a child process on one thread and writes the keys the committed JSON has."""
    out = tmp_path / "cost.json"
    argv = ["--quick", "--steps", "logreg", "--skip-two-threads", "--work-dir", str(tmp_path / "w"), "--out", str(out)]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    committed = _committed()
    assert set(committed) - {"two_threads"} <= set(result)
    assert set(committed["settings"]) <= set(result["settings"])
    assert set(committed["machine"]) <= set(result["machine"])
    assert result["features"] == {"train": [600, 32], "val": [200, 32], "test": [200, 32]}
    lr = result["one_thread"]["logreg"]
    assert set(committed["one_thread"]["logreg"]) <= set(lr)
    _check_timing(lr)
    assert lr["converged"] and len(lr["n_iter"]) == len(result["settings"]["logreg_cs"])
    assert lr["test_acc"] > 0.9  # well separated synthetic classes: far above chance (10 %)


@pytest.mark.parametrize("step", bench.STEPS)
def test_run_step_in_process_matches_the_protocol(tmp_path, step):
    """Each step run in this process gives the evaluation function's own result, with the committed keys."""
    import torch

    from dotkernels_ssl.pretraining import evaluation as ev

    path = tmp_path / "features.pt"
    settings = bench.synthetic_features(path, n=(200, 100, 100), dim=8)
    r = bench.run_step(step, path, settings, threads=1)
    _check_timing(r)
    assert set(_committed()["one_thread"][step]) <= set(r)
    f = {k: ev.FeatureSet(*v) for k, v in torch.load(path).items()}
    tr, va, te = f["train"], f["val"], f["test"]
    if step == "knn":
        ref = ev.knn_protocol(tr, va, te, ks=settings["knn_k"], temperatures=0.07, num_classes=10)
        assert (r["best_k"], r["test_acc"]) == (ref["best_k"], ref["test_acc"])
    elif step == "logreg":
        ref = ev.logistic_regression_probe(tr, va, te, cs=settings["logreg_cs"], max_iter=settings["logreg_max_iter"])
        assert (r["best_c"], r["test_acc"], r["n_iter"]) == (ref["best_c"], ref["test_acc"], ref["n_iter"])
    else:
        kw = {k[len("linear_") :]: v for k, v in settings.items() if k.startswith("linear_")}
        ref = ev.linear_probe(tr, va, te, num_classes=10, **kw)  # same default seed: the same SGD path
        assert (r["best_lr"], r["test_acc"]) == (ref["best_lr"], ref["test_acc"])
        assert r["test_acc"] > 0.5  # far above chance (10 %) after the two quick epochs


def test_run_step_refuses_an_unknown_step(tmp_path):
    path = tmp_path / "features.pt"
    settings = bench.synthetic_features(path, n=(20, 10, 10), dim=4)
    with pytest.raises(ValueError, match="step"):
        bench.run_step("svm", path, settings, threads=1)


def test_a_step_past_its_timeout_is_recorded_unfinished(tmp_path):
    """A child stopped at the timeout is reported with the schema of the unfinished two-thread linear probe."""
    path = tmp_path / "features.pt"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps(bench.synthetic_features(path, n=(200, 100, 100), dim=8)))
    r = bench.time_step("linear", path, settings_file, threads=2, timeout=0.2)
    assert set(r) == {"unfinished_after_wall_s", "cpu_s_at_least", "load_before", "load_after"}
    assert r["unfinished_after_wall_s"] >= 0.2 and r["cpu_s_at_least"] >= 0


def test_markdown_is_the_readme_table():
    """The table the script prints for the committed JSON is the README's table, row for row."""
    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Cost of the final evaluation")
    section = text[start : text.index("\n## ", start)]
    cost = json.loads((_ROOT / "benchmarks" / "results" / "eval_cost.json").read_text())
    table = bench.markdown(cost).splitlines()
    readme = [r for r in section.splitlines() if r.startswith("|")]
    assert table[:2] == readme[:2] and len(table) == len(readme) == 5
    for ours, theirs in zip(table[2:], readme[2:]):
        a, b = ours.strip("| ").split(" | "), theirs.strip("| ").split(" | ")
        # the committed JSON does not record the chosen k, which the README's kNN row adds in front
        assert a[:3] == b[:3] and b[3].endswith(a[3]), (a, b)
    assert "python benchmarks/bench_eval_cost.py" in section


def test_bad_steps_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--steps", "knn,svm", "--work-dir", str(tmp_path)])
