"""The linear probe before and after its steps were made cheaper (bench_eval_cost.py --compare-linear)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "benchmarks"))

import bench_eval_cost as bench  # noqa: E402

from dotkernels_ssl.pretraining.evaluation import FeatureSet, linear_probe  # noqa: E402

_JSON = _ROOT / "benchmarks" / "results" / "eval_cost_linear.json"


def _features(n: int, seed: int) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(5, 24, generator=g)
    labels = torch.arange(n) % 5
    return FeatureSet((centres[labels] + 1.5 * torch.randn(n, 24, generator=g)) * 3.0 + 1.0, labels)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_previous_loop_and_the_current_one_give_the_same_probes(threads):
    """Standardising once and one thread for the steps: the same accuracy for every rate as the previous loop."""
    tr, va, te = _features(300, 0), _features(100, 1), _features(100, 2)
    opts = {"epochs": 3, "batch_size": 32, "weight_decay": 1e-6, "momentum": 0.9, "num_classes": 5}
    before_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        old = bench.linear_probe_before(tr, va, te, lrs=[0.01, 0.1, 0.5], **opts)
        new = linear_probe(tr, va, te, lrs=[0.01, 0.1, 0.5], **opts)
    finally:
        torch.set_num_threads(before_threads)
    assert new["val"] == old["val"] and new["best_lr"] == old["best_lr"] and new["test_acc"] == old["test_acc"]
    assert len(set(new["val"].values())) > 1  # the rates differ: the comparison is not trivially equal


def test_readme_comparison_is_the_json():
    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Cost of the linear probe, before and after")
    section = text[start : text.index("\n### ", start + 5)]
    flat = " ".join(section.split())
    cmp = json.loads(_JSON.read_text())
    assert bench.compare_markdown(cmp) in section
    one, two = cmp["1_thread"], cmp["2_threads"]
    assert one["before"]["val"] == one["after"]["val"] == two["after"]["val"]
    assert one["before"]["test_acc"] == one["after"]["test_acc"] == two["after"]["test_acc"]
    assert f"{one['after']['cpu_s']:.0f} CPU s instead of {one['before']['cpu_s']:.0f}" in flat
    assert f"{two['after']['cpu_s']:.0f} CPU s and {two['after']['wall_s']:.0f} s of wall time" in flat
    before2 = two["before"]
    stopped = f"{before2['unfinished_after_wall_s']:.0f} s ({before2['cpu_s_at_least']:.0f} CPU s)"
    assert f"not finished after {stopped}" in flat
    assert f"was {cmp['load_at_start'][0]:.1f} at the start and {cmp['load_at_end'][0]:.1f} at the end" in flat
    assert "--compare-linear" in flat and "benchmarks/results/eval_cost_linear.json" in flat
    earlier = json.loads((_ROOT / "benchmarks" / "results" / "eval_cost.json").read_text())["one_thread"]["linear"]
    assert f"the same loop took {earlier['cpu_s']:.0f} CPU s there" in flat
    assert earlier["test_acc"] == one["after"]["test_acc"]  # "the same accuracies"
