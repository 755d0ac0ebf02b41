"""The pretraining benchmark's bookkeeping (commands, seeds, table); the runs themselves are not tests."""

from __future__ import annotations

import argparse
import importlib.util
import json
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
    assert summary["logreg_converged"] is None and summary["eval_seconds"] is None  # not in this result
    eval_json["eval"]["logreg"] = {"test_acc": 0.9, "converged": True, "n_iter": [310, 120]}
    eval_json["eval_seconds"] = 250.0
    (tmp_path / "eval.json").write_text(json.dumps(eval_json))
    summary = bench._summary("sfrik", tmp_path, wall=None, peak_rss_mb=None)
    assert summary["logreg_converged"] is True and summary["logreg_n_iter"] == [310, 120]
    assert summary["eval_seconds"] == 250.0 and summary["logreg_test"] == 0.9


# --------------------------------------------------------------------------------------------------------------
# The README's numbers are those of the benchmark JSON and of the command they are given for

_ROOT = Path(__file__).resolve().parents[1]
_RESULTS = _ROOT / "benchmarks" / "results"


def _readme_section(title):
    text = (_ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _cells(row):
    return [c.strip().replace("**", "") for c in row.strip().strip("|").split("|")]


def test_readme_results_table_is_the_benchmark_json(bench):
    """Every accuracy of the README's table is the one bench_pretrain.markdown makes of the JSON it names."""
    import json
    import re

    results = _readme_section("Results")
    section = results[results.index("### Five methods, 16 epochs") :]
    out = re.search(r"--out (benchmarks/results/\S+\.json)", section).group(1)
    result = json.loads((_ROOT / out).read_text())
    seeds = json.loads((_RESULTS / out.split("/")[-1].replace(".json", "_sfrik_seeds.json")).read_text())
    epochs = result["epochs"]
    assert f"{epochs} epochs" in section.splitlines()[0]
    flat = " ".join(section.split())
    assert f"bench_pretrain.py --epochs {epochs}" in flat and f"--method sfrik --epochs {epochs} " in flat
    # the preset as it was then: float32, the linear probe's learning rates 0.02, 0.05, 0.2, T = 0.07, no refit
    assert "-- --amp off --eval.linear_lrs 0.02,0.05,0.2 --eval.knn_temperatures 0.07 --eval.linear_refit false" in flat
    assert "--epochs 16 --amp off --eval.knn_temperatures 0.07 --eval.linear_refit false --out" in flat
    assert all(r["linear_lr"] in (0.02, 0.05, 0.2) for r in result["methods"].values())
    assert (
        seeds["epochs"] == epochs
        and seeds["methods"]["sfrik"]["loss_options"] == (result["methods"]["sfrik"]["loss_options"])
    )
    generated = {}
    for table in (bench.markdown(result), bench.markdown(seeds)):
        for row in table.splitlines()[2:]:
            cells = _cells(row)
            generated[cells[0]] = cells[1:4]
    labels = {
        "SFRIK": "SFRIK",
        "SFRIK, seeds 0, 1 (mean ± sd)": f"SFRIK ({len(seeds['methods']['sfrik']['seeds'])} seeds)",
        "AUH (Wang & Isola)": "AUH",
        "VICReg": "VICReg",
        "Barlow Twins": "Barlow Twins",
        "SimCLR": "SimCLR",
        "raw pixels": "raw pixels (bank: train split / all 60k)",
    }
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [_cells(r)[0] for r in rows] == list(labels)
    for row in rows:
        cells = _cells(row)
        assert cells[1:4] == generated[labels[cells[0]]], cells[0]


def test_readme_main_job_text_is_its_command():
    """The main job's epochs and precision are the preset's (its time: tests/test_prose_numbers.py)."""
    import re

    from dotkernels_ssl.pretraining.presets import PRESETS

    text = _readme_section("The two commands").replace("\n", " ")
    command = re.search(r"dotkernels-pretrain --preset (\S+) --method sfrik --out runs/fmnist-sfrik", text)
    assert command is not None and "--epochs" not in command.group(0)
    preset = PRESETS[command.group(1)]
    assert f"a small ConvNet, {preset['optim.epochs']} epochs, with bf16 autocast on a CPU that has bfloat16" in text
    assert preset["run.amp"] == "auto"


# --------------------------------------------------------------------------------------------------------------
# Throughput: the step timed in parts is the training step, and the shares are what the parts say


class _Tiny(__import__("torch").nn.Module):
    """A backbone and projector in miniature: images (N, 1, 4, 4) to (features, embeddings)."""

    def __init__(self):
        import torch

        super().__init__()
        self.backbone = torch.nn.Linear(16, 8)
        self.projector = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 6))

    def forward(self, x):
        h = self.backbone(x.flatten(1))
        return h, self.projector(h)


@pytest.mark.parametrize("method", ["sfrik", "vicreg", "barlow", "simclr", "auh"])
def test_step_in_parts_makes_the_update_of_one_backward(bench, method):
    import copy

    import torch

    from dotkernels_ssl.losses import build_loss

    torch.manual_seed(0)
    views = [torch.randn(32, 1, 4, 4, dtype=torch.float64) for _ in range(2)]
    model = _Tiny().double()
    twin = copy.deepcopy(model)
    loss_fn = build_loss(method)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt_twin = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):  # the second step also checks that gradients do not accumulate across steps
        parts = bench.step_parts(model, loss_fn, opt, views)
        opt_twin.zero_grad(set_to_none=True)
        loss_fn.forward_terms([twin(v)[1] for v in views]).loss.backward()
        opt_twin.step()
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert set(parts) == {"forward", "loss", "backward", "optimizer"} and all(v >= 0 for v in parts.values())


def test_loop_timing_shares_are_those_of_the_parts(bench):
    import time

    parts = {"forward": 0.004, "loss": 0.002, "backward": 0.006, "optimizer": 0.001}

    def step(views):
        time.sleep(sum(parts.values()))  # the wall time of the step is at least the sum of its parts
        return dict(parts)

    calls = []

    def batches():
        while True:
            calls.append(1)
            time.sleep(0.003)
            yield None

    r = bench.time_loop(batches(), step, steps=4, batch_size=64)
    assert len(calls) == 5  # one warm-up batch, then the timed steps
    assert r["loss_share_of_step"] == pytest.approx(0.002 / 0.013, rel=1e-12)
    for key, sec in parts.items():
        assert r["seconds_per_step"][key] == pytest.approx(sec, rel=1e-12)
    assert r["seconds_per_step"]["data"] >= 0.003
    # the iteration lasts at least data + parts: the share of the whole iteration is at most 0.002 / 0.016
    assert 0 < r["loss_share"] <= 0.002 / 0.016 * (1 + 1e-9)
    assert 0 < r["images_per_s"] <= 64 / 0.016
    with pytest.raises(ValueError, match="steps"):
        bench.time_loop(batches(), step, steps=0, batch_size=64)


def test_throughput_table_has_one_row_per_method(bench):
    sec = {"data": 0.05, "forward": 0.1, "loss": 0.01, "backward": 0.2, "optimizer": 0.02}
    tp = {
        "methods_step_parts": {
            "sfrik": {
                "images_per_s": 672.4,
                "seconds_per_step": sec,
                "loss_share": 0.0263,
                "loss_share_of_step": 0.0303,
            }
        }
    }
    rows = bench.throughput_markdown(tp).splitlines()
    assert len(rows) == 3 and rows[2] == "| SFRIK | 672 | 50, 100, 10, 200, 20 | 2.6% | 3.0% |"


def test_readme_throughput_table_is_the_benchmark_json(bench):
    """The benchmarks README's throughput table is the one throughput_markdown makes of the JSON its command writes."""
    import json

    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Training loop throughput and the loss's share of a step")
    section = text[start : text.index("\n## ", start)]
    assert "--throughput-only" in section and "--out\nbenchmarks/results/pretrain_throughput.json" in section
    result = json.loads((_RESULTS / "pretrain_throughput.json").read_text())
    assert f"--throughput-steps {result['throughput']['steps']} " in section
    assert bench.throughput_markdown(result["throughput"]) in section


def test_readme_evaluation_cost_is_the_json():
    """The evaluation-cost table and prose of the benchmarks README are the measurements recorded in JSON."""
    import json

    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Cost of the final evaluation")
    section = text[start : text.index("\n## ", start)]
    cost = json.loads((_RESULTS / "eval_cost.json").read_text())
    one, two = cost["one_thread"], cost["two_threads"]
    rows = [_cells(r) for r in section.splitlines() if r.startswith("| ") and not r.startswith("| step")]
    assert [r[0].split(" (")[0] for r in rows] == ["weighted kNN", "linear probe", "logistic regression"]
    for row, key in zip(rows, ("knn", "linear", "logreg")):
        assert row[1:3] == [f"{one[key]['cpu_s']:.0f}", f"{one[key]['wall_s']:.0f}"], key
        assert f"{100 * one[key]['test_acc']:.2f} %" in row[3], key
    lr = one["logreg"]
    assert lr["converged"] and f"{lr['n_iter'][0]} + {lr['n_iter'][1]} iterations, converged" in rows[2][3]
    assert f"C = {lr['best_c']}" in rows[2][3]
    total = sum(one[k]["cpu_s"] for k in ("knn", "linear", "logreg"))
    assert f"three steps' {total:.0f} CPU seconds" in section.replace("\n", " ")
    assert 0.3 < lr["cpu_s"] / total < 0.37  # "about a third"
    assert f"within {lr['cpu_s']:.0f} s of one core" in section.replace("\n", " ")
    flat = section.replace("\n", " ")
    assert f"took {two['extract_wall_s']:.0f} s of wall time" in flat
    assert f"the kNN took {two['knn']['wall_s']:.0f} s" in flat
    assert (
        f"after {two['linear']['unfinished_after_wall_s']:.0f} s "
        f"({two['linear']['cpu_s_at_least']:.0f} CPU s, over three" in flat
    )
    assert two["linear"]["cpu_s_at_least"] > 3 * one["linear"]["cpu_s"]
    loads = [v for k in ("knn", "linear", "logreg") for w in ("load_before", "load_after") for v in one[k][w][:1]]
    assert f"load average (1 minute) between {min(loads):.1f} and {max(loads):.1f} on" in flat


def test_readme_throughput_prose_is_the_json():
    """The load, the loss shares and the model's share the throughput section states are those of its JSON."""
    import json

    text = (_ROOT / "benchmarks" / "README.md").read_text()
    start = text.index("### Training loop throughput and the loss's share of a step")
    flat = text[start : text.index("\n### ", start + 5)].replace("\n", " ")
    result = json.loads((_RESULTS / "pretrain_throughput.json").read_text())
    load0, load1 = result["machine"]["load_average_at_start"][0], result["machine"]["load_average_at_end"][0]
    assert f"(1 minute) from {load0:.1f} at the start to {load1:.1f} at the end" in flat
    parts = result["throughput"]["methods_step_parts"]
    share = {m: 100 * r["loss_share_of_step"] for m, r in parts.items()}
    assert 3 <= min(share["sfrik"], share["auh"]) and max(share["sfrik"], share["auh"]) < 4
    assert "3-4 % of a step for SFRIK and AUH" in flat and f"({share['vicreg']:.0f} % for VICReg)" in flat
    assert share["vicreg"] > share["barlow"] > max(share["sfrik"], share["auh"])
    model = [
        100
        * (r["seconds_per_step"]["forward"] + r["seconds_per_step"]["backward"])
        / sum(v for k, v in r["seconds_per_step"].items() if k != "data")
        for r in parts.values()
    ]
    assert f"take {min(model):.0f}-{max(model):.0f} % of every step" in flat


def test_main_trains_evaluates_prints_and_then_reuses_a_tiny_run(bench, tmp_path, capsys):
    """The real child command, at toy size, through main: the run folder is one pretraining accepts, the JSON and
    the table are written, and a second call reuses the run, also at another thread count."""
    tiny = (
        "--dataset digits --limit 128 --batch-size 32 --lr 0.3 --warmup-epochs 0.5 --model.convnet_widths 4,8,8,8 "
        "--projector 16-8 --eval-limit 120 --linear-epochs 1 --eval.linear_lrs 0.1 --eval.logreg_cs 1 "
        "--eval.knn_k 5,20 --eval.monitor_bank 100"
    ).split()
    runs, out = tmp_path / "runs", tmp_path / "bench.json"
    argv = ["--methods", "sfrik", "--epochs", "1", "--jobs", "1", "--skip-throughput", "--skip-pixels"]
    assert bench.main([*argv, "--runs-dir", str(runs), "--out", str(out), "--", *tiny]) == 0
    first = json.loads(out.read_text())["methods"]["sfrik"]
    assert first["epochs"] == 1 and 0.0 <= first["knn20_test"] <= 1.0 and first["wall_seconds"] > 0
    assert "| SFRIK |" in capsys.readouterr().out
    assert (runs / "sfrik" / "eval.json").is_file() and (runs / "sfrik.bench_command.json").is_file()
    mtime = (runs / "sfrik" / "eval.json").stat().st_mtime_ns
    args = _args(epochs=1, extra=tiny, seeds=1, jobs=1, fresh=False, threads=2)
    again = bench.run_methods(["sfrik"], args, runs)["sfrik"]  # same recipe, other thread count: reused
    assert (runs / "sfrik" / "eval.json").stat().st_mtime_ns == mtime and again["knn20_test"] == first["knn20_test"]


def test_a_run_trained_with_the_same_recipe_is_evaluated_again_not_retrained(bench, tmp_path):
    """Only the evaluation's settings (or the monitors' frequency) changed: the checkpoint is evaluated anew."""
    tiny = (
        "--dataset digits --limit 128 --batch-size 32 --lr 0.3 --warmup-epochs 0.5 --model.convnet_widths 4,8,8,8 "
        "--projector 16-8 --eval-limit 120 --linear-epochs 1 --eval.linear_lrs 0.1 --eval.logreg_cs 1 "
        "--eval.knn_k 5,20 --eval.monitor_bank 100 --eval.knn_temperatures 0.07"
    ).split()
    runs = tmp_path / "runs"
    args = _args(epochs=1, extra=tiny, seeds=1, jobs=1, fresh=False)
    first = bench.run_methods(["sfrik"], args, runs)["sfrik"]
    run = runs / "sfrik"
    before = json.loads((run / "eval.json").read_text())
    checkpoint = (run / "last.pt").stat().st_mtime_ns
    assert first["knn_temperature"] == 0.07 and first["linear_test_refit_trainval"] is not None
    changed = [*tiny, "--eval.knn_temperatures", "0.02,0.5", "--eval-every", "3"]
    again = _args(epochs=1, extra=changed, seeds=1, jobs=1, fresh=False)
    second = bench.run_methods(["sfrik"], again, runs)["sfrik"]
    after = json.loads((run / "eval.json").read_text())
    assert (run / "last.pt").stat().st_mtime_ns == checkpoint  # not retrained
    assert after["train"] == before["train"] and after["reevaluated"]["eval_settings"]["knn_temperatures"] == [
        0.02,
        0.5,
    ]
    assert after["eval"]["knn"]["temperatures"] == [0.02, 0.5] and second["knn_temperature"] in (0.02, 0.5)
    # the same features: the linear probe, untouched by the temperatures, gives the same accuracies
    assert after["eval"]["linear"]["test_acc"] == before["eval"]["linear"]["test_acc"]
    stamp = json.loads((runs / "sfrik.bench_command.json").read_text())
    assert stamp == bench._stamp(bench._command("sfrik", 0, again, runs))
    # only the monitors' frequency changed: neither trained nor evaluated again, the stamp is rewritten
    evaluated = (run / "eval.json").stat().st_mtime_ns
    monitors = _args(epochs=1, extra=[*changed, "--eval-every", "2"], seeds=1, jobs=1, fresh=False)
    assert bench.run_methods(["sfrik"], monitors, runs)["sfrik"]["knn20_test"] == second["knn20_test"]
    assert (run / "eval.json").stat().st_mtime_ns == evaluated and (run / "last.pt").stat().st_mtime_ns == checkpoint
    stamp = json.loads((runs / "sfrik.bench_command.json").read_text())
    assert stamp == bench._stamp(bench._command("sfrik", 0, monitors, runs))
    # the recipe is what decides: another learning rate is another run
    other = bench._stamp(bench._command("sfrik", 0, _args(epochs=1, extra=[*tiny, "--lr", "0.2"]), runs))
    assert bench._recipe(other) != bench._recipe(stamp)
    assert bench._recipe(bench._stamp(bench._command("sfrik", 0, args, runs))) == bench._recipe(stamp)
