"""Every number in the prose is checked: against the benchmark JSON it reports, the code it describes, or the output
printed next to it.

- README.md and benchmarks/README.md: the pretraining tables (accuracies, seed means and standard deviations, the
  raw-pixel baseline, the loss variants and their invariance weights, images/s, run times, the data-path timing),
  the gains over raw pixels, the loss and uniformity-test speed figures, the kernel-matrix, GeometricKernels,
  long-series and feature-MMD tables, the throughput and calibration sections' prose, against
  ``benchmarks/results/*.json``; the numbers the benchmarks' prose
  derives (where scipy's Gegenbauer values overflow, the Poisson kernel's mean at q = 100) recomputed; the comments
  of the README's examples against what the commented call returns; the presets and defaults the prose names
  (README, benchmarks, the background page) against the code. A figure no JSON records is not in the prose.
- The notebooks: every number of a markdown cell appears in the notebook's code or printed outputs (a number that
  the code neither sets nor prints is hand-typed and goes stale), and the claims of the conclusions hold on the
  committed outputs.
- LICENSE and CITATION.cff are there and agree with pyproject.toml.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = (ROOT / "README.md").read_text()
BENCH_README = (ROOT / "benchmarks" / "README.md").read_text()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

METHODS = {
    "SFRIK": "sfrik",
    "AUH (Wang & Isola)": "auh",
    "VICReg": "vicreg",
    "Barlow Twins": "barlow",
    "SimCLR": "simclr",
}


def _json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{1,{level}}} |\Z)", text, re.S | re.M)
    assert match, f"heading {heading!r} not found"
    return match.group(1)


def _rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows ``| label | cell | ... |`` by label (bold markers removed)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def _shown(text: str, value: float) -> bool:
    """``text`` is ``value`` rounded to the digits it shows (a tie may round either way)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(float(text) - value) <= 0.5 * 10.0**-decimals + 1e-9


def _cells_show(cells: str, values: list[float]) -> bool:
    """``cells`` ("89.81", "87.66 / 87.65", "89.95 ± 0.19 / ...") shows ``values`` in order."""
    numbers = re.findall(r"\d+(?:\.\d+)?", cells)
    return len(numbers) == len(values) and all(_shown(n, v) for n, v in zip(numbers, values))


# ---- pretraining tables ----------------------------------------------------------------------------------------


def _check_accuracy_row(cells: list[str], run: dict, where: str) -> None:
    linear, logreg, knn = cells[:3]
    # runs that refitted the probe on train + val show both fits, "90.44 / 90.55"
    refit = [] if run.get("linear_test_refit_trainval") is None else [100 * run["linear_test_refit_trainval"]]
    assert _cells_show(linear, [100 * run["linear_test"], *refit]), where
    assert _cells_show(logreg, [100 * run["logreg_test"]]), where
    assert _cells_show(knn, [100 * run["knn20_test"], 100 * run["knn20_test_bank_trainval"]]), where


def _check_seed_row(cells: list[str], seeds: list[dict], where: str) -> None:
    def mean_sd(key: str) -> list[float]:
        values = [100 * s[key] for s in seeds]
        return [statistics.mean(values), statistics.stdev(values)]

    refit = mean_sd("linear_test_refit_trainval") if seeds[0].get("linear_test_refit_trainval") is not None else []
    assert _cells_show(cells[0], mean_sd("linear_test") + refit), where
    assert _cells_show(cells[1], mean_sd("logreg_test")), where
    assert _cells_show(cells[2], mean_sd("knn20_test") + mean_sd("knn20_test_bank_trainval")), where


PRETRAIN_TABLES = [
    # (document, section heading, epochs, results file, seeds file, columns images/s and RSS checked)
    ("benchmarks/README.md", "### 16 epochs", 16, "pretrain16.json", "pretrain16_sfrik_seeds.json", True),
    ("benchmarks/README.md", "### 12 epochs", 12, "pretrain12.json", "pretrain12_sfrik_seeds.json", True),
    (
        "benchmarks/README.md",
        "### 8 epochs (float32)",
        8,
        "pretrain.json",
        "pretrain_sfrik_seeds.json",
        False,
    ),
    ("README.md", "### Five methods, 16 epochs (float32)", 16, "pretrain16.json", "pretrain16_sfrik_seeds.json", False),
]


@pytest.mark.parametrize("doc, heading, epochs, results, seeds_file, throughput", PRETRAIN_TABLES)
def test_pretraining_tables_are_the_benchmark_json(doc, heading, epochs, results, seeds_file, throughput):
    text = _section((ROOT / doc).read_text(), heading)
    rows = _rows(text)
    data = _json(results)
    seeds = _json(seeds_file)["methods"]["sfrik"]["seeds"]
    if data["epochs"] is None:  # the preset's default when it ran, recorded in each run's summary
        data["epochs"] = data["methods"]["sfrik"]["epochs"]
    assert data["epochs"] == epochs and f"{epochs} epochs" in " ".join((heading + text).split())
    for label, method in METHODS.items():
        run = data["methods"][method]
        _check_accuracy_row(rows[label], run, f"{doc} {heading} {label}")
        if throughput:
            assert _cells_show(rows[label][3], [run["images_per_s"]]), f"{doc} {heading} {label} images/s"
        elif doc == "benchmarks/README.md":  # the 8-epoch table: the side-by-side timing of the training steps
            side_by_side = data["throughput"]["methods_loop_images_per_s"][method]
            assert _cells_show(rows[label][3], [side_by_side]), f"{doc} {heading} {label} images/s"
        if doc == "benchmarks/README.md":
            assert _cells_show(rows[label][4], [run["peak_rss_mb"]]), f"{doc} {heading} {label} peak RSS"
    (seed_label,) = [label for label in rows if label.startswith("SFRIK, seeds")]
    assert seed_label == "SFRIK, seeds " + ", ".join(str(s["seed"]) for s in seeds) + " (mean ± sd)"
    _check_seed_row(rows[seed_label], seeds, f"{doc} {heading} seeds")
    pixels = data["pixels"]
    bank = [100 * pixels["knn20_test_bank_train"], 100 * pixels["knn20_test_bank_trainval"]]
    assert _cells_show(rows["raw pixels"][2], bank)


def _gain(run: dict, pixels: dict) -> tuple[float, float]:
    return (
        100 * (run["knn20_test"] - pixels["knn20_test_bank_train"]),
        100 * (run["knn20_test_bank_trainval"] - pixels["knn20_test_bank_trainval"]),
    )


def _seed_gain(seeds: list[dict], pixels: dict) -> tuple[float, float]:
    gains = [_gain(s, pixels) for s in seeds]
    return statistics.mean(g[0] for g in gains), statistics.mean(g[1] for g in gains)


def test_the_dev_machine_line_is_the_benchmarks():
    flat = " ".join(BENCH_README.split("\n## ")[0].split())
    cores, python, torch = re.search(
        r'Machine "dev CPU": .*?(\d+) CPU cores .*?Python ([\d.]+), torch ([\d.]+)\.', flat
    ).groups()
    for name in ("pretrain.json", "pretrain16.json", "uniformity.json", "gram.json"):
        machine = _json(name)["machine"]
        assert machine.get("cpu_count", machine.get("cpus")) == int(cores), name
        if "python" in machine:
            assert machine["python"].startswith(python + "."), name
    for name in ("pretrain.json", "pretrain16.json", "gram.json"):
        assert _json(name)["machine"]["torch"].split("+")[0] == torch, name


def test_the_pretraining_setup_is_the_presets():
    from dotkernels_ssl.pretraining.config import parse_config

    flat = " ".join(_section(BENCH_README, "## Pretraining on Fashion-MNIST").split("### ")[0].split())
    preset = re.search(r"The `([\w-]+)` preset: ConvNet", flat).group(1)
    cfg = parse_config(["--preset", preset, "--out", "unused"])
    widths = "-".join(str(w) for w in cfg.model.convnet_widths)
    from dotkernels_ssl.pretraining.models import ConvNet

    assert cfg.model.convnet_pool == "flatten"
    features = ConvNet(in_channels=1, widths=cfg.model.convnet_widths, pool="flatten", image_size=28).out_dim
    assert features == 3 * 3 * cfg.model.convnet_widths[-1]  # the 28 x 28 images pooled to 3 x 3
    assert f"ConvNet {widths} with flattened 3x3 features ({features}-d)" in flat
    assert f"projector {cfg.model.projector}" in flat
    low, high = cfg.data.crop_scale
    assert f"crops of scale ({low:g}, {high:g}) with the {cfg.data.recipe}-image recipe" in flat
    assert f"{cfg.optim.optimizer.upper()} at lr {cfg.optim.base_lr:g}, batch {cfg.optim.batch_size}" in flat
    train = 60000  # Fashion-MNIST's training images; the test split has 10 000
    val = round(cfg.data.val_fraction * train)
    assert f"a {val}-image validation split carved from train" in flat and "official 10 000 test images" in flat
    assert f"the {(train - val) // 1000}k training split and all {train // 1000}k training images" in flat
    for name in ("pretrain.json", "pretrain12.json", "pretrain16.json"):
        run = _json(name)
        assert run["preset"] == preset and (run["jobs"], run["threads"]) == (2, 1), name
    assert "two runs at a time with one thread each" in flat
    # the 8-epoch note: "(q, q) cross-covariances with q = 1024 ... (n, n) kernel terms with n = 256"
    eight = " ".join(_section(BENCH_README, "### 8 epochs (float32)").split())
    q = int(cfg.model.projector.split("-")[-1])
    assert f"with q = {q} cost more than SFRIK's (n, n) kernel terms with n = {cfg.optim.batch_size}" in eight


def test_gains_over_raw_pixels_are_the_benchmark_json():
    for heading, results, seeds_file in [
        ("### 16 epochs", "pretrain16.json", "pretrain16_sfrik_seeds.json"),
        ("### 12 epochs", "pretrain12.json", "pretrain12_sfrik_seeds.json"),
        ("### 8 epochs (float32)", "pretrain.json", "pretrain_sfrik_seeds.json"),
    ]:
        text = " ".join(_section(BENCH_README, heading).split())
        data = _json(results)
        pixels = data["pixels"]
        seeds = _json(seeds_file)["methods"]["sfrik"]["seeds"]
        mean54, mean60 = _seed_gain(seeds, pixels)
        stated = " ".join(re.findall(r"\+\d+\.\d\d", text.split("Against raw pixels")[1].split("|")[0]))
        if heading == "### 16 epochs":
            g54, g60 = _gain(data["methods"]["sfrik"], pixels)
            assert _cells_show(stated, [g54, g60, mean54, mean60])
            knn = [100 * data["methods"][m]["knn20_test"] for m in METHODS.values()]
            knn60 = [100 * data["methods"][m]["knn20_test_bank_trainval"] for m in METHODS.values()]
            spread = re.search(r"within (\d\.\d\d) \(54k bank\) and (\d\.\d\d) \(60k bank\) points", text).groups()
            assert _cells_show(" ".join(spread), [max(knn) - min(knn), max(knn60) - min(knn60)])
        else:
            assert _cells_show(stated, [mean54, mean60]), heading
        sds = [statistics.stdev(100 * s[k] for s in seeds) for k in ("knn20_test", "knn20_test_bank_trainval")]
        if heading != "### 16 epochs":
            low, high = re.search(r"sd (?:of the 20-NN accuracy )?(\d\.\d\d)[–-](\d\.\d\d)", text).groups()
            assert _cells_show(f"{low} {high}", [min(sds), max(sds)]), heading


def _span(text: str, values: list[float]) -> bool:
    """``text`` ("88-99") is the range of ``values`` as shown."""
    low, high = re.split(r"[-–]", text)
    return _shown(low, min(values)) and _shown(high, max(values))


def test_run_times_of_the_pretraining_sections_are_the_benchmark_json():
    flat = {h: " ".join(_section(BENCH_README, h).split()) for h in ("### 16 epochs", "### 12 epochs")}
    flat["8"] = " ".join(_section(BENCH_README, "### 8 epochs (float32)").split())
    runs16 = list(_json("pretrain16.json")["methods"].values())
    epoch, wall, outside, total = re.search(
        r"\(dev CPU, ([\d-]+) s per epoch two at a time, ([\d-]+) min per run, ([\d-]+) min of it outside "
        r"training: start-up and evaluation, (\d+) min for the five\)",
        flat["### 16 epochs"],
    ).groups()
    assert _span(epoch, [r["epoch_seconds"] for r in runs16])
    assert _span(wall, [r["wall_seconds"] / 60 for r in runs16 if r["wall_seconds"]])
    assert _span(outside, [(r["wall_seconds"] - r["train_seconds"]) / 60 for r in runs16 if r["wall_seconds"]])
    assert _shown(total, _json("pretrain16.json")["total_seconds"] / 60)
    runs12 = list(_json("pretrain12.json")["methods"].values())
    epoch, wall, outside = re.search(
        r"\(dev CPU, ([\d-]+) s per epoch two at a time, ([\d-]+) min per run, ([\d-]+) min of it outside training\)",
        flat["### 12 epochs"],
    ).groups()
    assert _span(epoch, [r["epoch_seconds"] for r in runs12])
    assert _span(wall, [r["wall_seconds"] / 60 for r in runs12 if r["wall_seconds"]])
    assert _span(outside, [(r["wall_seconds"] - r["train_seconds"]) / 60 for r in runs12 if r["wall_seconds"]])
    variants = [_json(f"pretrain12_sfrik_{v}.json")["methods"]["sfrik"] for v in ("sc250", "L4")]
    (epoch,) = re.search(
        r"--kernel sfrik:1,40,40,40` \(dev CPU, ([\d-]+) s per epoch two at a time\)", flat["### 12 epochs"]
    ).groups()
    assert _span(epoch, [r["epoch_seconds"] for r in variants])
    runs8 = (
        list(_json("pretrain.json")["methods"].values())
        + _json("pretrain_sfrik_seeds.json")["methods"]["sfrik"]["seeds"]
    )
    epoch, train, rss = re.search(
        r"\(dev CPU, ([\d-]+) s per epoch two at a time .*?: ([\d-]+) min of training per run; peak RSS ([\d.–]+) GB\)",
        flat["8"],
    ).groups()
    assert _span(epoch, [r["epoch_seconds"] for r in runs8])
    assert _span(train, [r["train_seconds"] / 60 for r in runs8])
    assert _span(rss, [r["peak_rss_mb"] / 1000 for r in runs8])


def test_the_8_epoch_notes_are_the_benchmark_json():
    flat = " ".join(_section(BENCH_README, "### 8 epochs (float32)").split())
    seeds8 = _json("pretrain_sfrik_seeds.json")["methods"]["sfrik"]["seeds"]
    run12 = _json("pretrain12.json")["methods"]["sfrik"]
    pattern = (
        r"12 epochs instead of 8 raised validation 20-NN to ([\d.]+) \(8 epochs: ([\d.]+), mean of (\d) seeds\) and "
        r"test 20-NN to ([\d.]+) / ([\d.]+)"
    )
    val12, val8, n_seeds, test54, test60 = re.search(pattern, flat).groups()
    assert int(n_seeds) == len(seeds8)
    assert _shown(val12, 100 * run12["knn_val"]["20"])
    assert _shown(val8, 100 * statistics.mean(s["knn_val"]["20"] for s in seeds8))
    assert _cells_show(f"{test54} {test60}", [100 * run12["knn20_test"], 100 * run12["knn20_test_bank_trainval"]])


def test_the_8_epoch_data_path_figures_are_the_benchmark_json():
    flat = " ".join(_section(BENCH_README, "### 8 epochs (float32)").split())
    throughput = _json("pretrain.json")["throughput"]
    batched, workers0, workers2 = re.search(
        r"per-sample parameters\) (\d+) images/s; a plain loop over a DataLoader applying torchvision transforms "
        r"image by image, (\d+) images/s with 0 workers, (\d+) with 2 workers",
        flat,
    ).groups()
    assert _cells_show(
        f"{batched} {workers0} {workers2}",
        [
            throughput["loop_batched_kornia"],
            throughput["plain_dataloader_torchvision_workers0"],
            throughput["plain_dataloader_torchvision_workers2"],
        ],
    )
    assert "same model, loss and batch" in flat and throughput["batch_size"] == 256
    # "slower per step than SFRIK": the side-by-side timing
    steps = throughput["methods_loop_images_per_s"]
    assert "In this table's side-by-side timing VICReg and Barlow Twins are slower per step than SFRIK" in flat
    assert max(steps["vicreg"], steps["barlow"]) < steps["sfrik"]
    # "and timed in parts (next section) their loss takes longer than SFRIK's"
    assert "timed in parts (next section) their loss takes longer than SFRIK's" in flat
    loss = {
        m: r["seconds_per_step"]["loss"]
        for m, r in _json("pretrain_throughput.json")["throughput"]["methods_step_parts"].items()
    }
    assert min(loss["vicreg"], loss["barlow"]) > loss["sfrik"]


def test_the_throughput_section_prose_is_the_benchmark_json():
    # the table itself is checked in test_bench_pretrain.py (it is what throughput_markdown makes of the JSON)
    flat = " ".join(_section(BENCH_README, "### Training loop throughput and the loss's share of a step").split())
    data = _json("pretrain_throughput.json")
    parts = data["throughput"]["methods_step_parts"]
    assert data["throughput"]["batch_size"] == 256 and "one training thread, batch 256" in flat
    assert data["threads"] == 1 and data["machine"]["cpu_count"] == 2 and "(dev CPU, 2 cores" in flat
    low, high, q, n = re.search(
        r"The loss takes ([\d.]+)-([\d.]+) % of a step for SFRIK and AUH at q = (\d+) and n = (\d+)", flat
    ).groups()
    assert _span(f"{low}-{high}", [100 * parts[m]["loss_share_of_step"] for m in ("sfrik", "auh")])
    from dotkernels_ssl.pretraining.config import parse_config

    cfg = parse_config(["--preset", data["preset"], "--out", "unused"])
    assert int(q) == int(cfg.model.projector.split("-")[-1]) and int(n) == cfg.optim.batch_size
    vicreg = re.search(r"cost more \((\d+) % for VICReg\)", flat).group(1)
    assert _shown(vicreg, 100 * parts["vicreg"]["loss_share_of_step"])
    assert all(
        parts[m]["loss_share_of_step"] > max(parts[o]["loss_share_of_step"] for o in ("sfrik", "auh"))
        for m in ("vicreg", "barlow")
    )
    low, high = re.search(r"The ConvNet's forward and backward take (\d+)-(\d+) % of every step", flat).groups()
    shares = []
    for r in parts.values():
        step = {k: v for k, v in r["seconds_per_step"].items() if k != "data"}  # a step: all but drawing the views
        shares.append(100 * (step["forward"] + step["backward"]) / sum(step.values()))
        assert r["loss_share_of_step"] == pytest.approx(step["loss"] / sum(step.values()), rel=1e-9)
    assert _span(f"{low}-{high}", shares)


MAIN_JOB = "pretrain40_main_job.json"  # the main job's command, timed alone on the 2-core machine
MAIN_SEEDS = "pretrain40_sfrik_seeds.json"  # its seeds 0, 1, 2 (seed 0: the timed run)
MAIN_BASELINES = "pretrain40_baselines.json"  # the other methods with the same preset, seed 0
MAIN_PIXELS = "pixels_knn.json"  # raw pixels through the same kNN protocol


def test_readme_main_job_time_is_the_timed_run():
    # "the timed run took 34 minutes on a 2-core CPU (load average 3.1 at its start): 28 min of training at 42 s per
    # epoch, 5 min of evaluation"
    text = " ".join(_section(README, "## The two commands").split())
    wall, load, train, per_epoch, evaluation = re.search(
        r"the timed run took (\d+) minutes on a 2-core CPU \(load average ([\d.]+) at its start\): (\d+) min of "
        r"training at (\d+) s per epoch, (\d+) min of evaluation",
        text,
    ).groups()
    timed = _json(MAIN_JOB)
    run = timed["methods"]["sfrik"]
    assert timed["jobs"] == 1 and timed["threads"] == 2 == timed["machine"]["cpu_count"]
    assert timed["extra_options"] == [] and timed["epochs"] is None  # the preset as the README runs it
    assert _shown(load, timed["machine"]["load_average_at_start"][0])
    assert _shown(wall, run["wall_seconds"] / 60) and _shown(train, run["train_seconds"] / 60)
    assert _shown(per_epoch, run["epoch_seconds"]) and _shown(evaluation, run["eval_seconds"] / 60)


def test_main_job_tables_are_the_seeds_json():
    """The README's and the benchmark page's tables of the main job: one row per seed, their mean, the other
    methods with the same preset and raw pixels, all through the same protocol (k and T chosen on validation)."""
    from dotkernels_ssl.pretraining.config import parse_config

    cfg = parse_config(["--preset", "fashion-mnist-cpu", "--out", "unused"])
    data = _json(MAIN_SEEDS)
    seeds = data["methods"]["sfrik"]["seeds"]
    assert data["epochs"] is None and data["extra_options"] == [] and len(seeds) == 3
    assert all(s["epochs"] == cfg.optim.epochs for s in seeds)
    timed = _json(MAIN_JOB)["methods"]["sfrik"]
    keys = ("knn20_test", "knn20_test_bank_trainval", "linear_test", "linear_test_refit_trainval", "logreg_test")
    for key in (*keys, "linear_val", "knn_temperature"):
        assert seeds[0][key] == timed[key], key  # seed 0 is the timed run, reused
    baselines = _json(MAIN_BASELINES)
    assert baselines["epochs"] is None and baselines["extra_options"] == []
    others = {label: baselines["methods"][m] for label, m in METHODS.items() if m in baselines["methods"]}
    assert len(others) >= 2 and "SFRIK" not in others
    for run in (*seeds, *others.values()):  # the current protocol: T chosen on validation, probe refitted
        assert run["knn_temperature"] is not None and run["linear_test_refit_trainval"] is not None
    for doc, heading in [
        (README, "### The main job: SFRIK, 40 epochs"),
        (BENCH_README, "### 40 epochs with bf16 autocast (the preset's default)"),
    ]:
        rows = _rows(_section(doc, heading))
        assert f"{cfg.optim.epochs} epochs" in heading
        command = f"--methods {','.join(baselines['methods'])} --skip-throughput --skip-pixels --runs-dir runs/main40"
        assert f"{command} --out benchmarks/results/{MAIN_BASELINES}" in " ".join(_section(doc, heading).split())
        labelled = [(f"SFRIK, seed {s['seed']}", s) for s in seeds] + list(others.items())
        for label, run in labelled:
            cells = rows[label]
            _check_accuracy_row(cells, run, f"{heading} {label}")
            if doc is BENCH_README:
                assert _cells_show(cells[3], [100 * run["knn_val"]["20"]]), heading
                assert _cells_show(cells[4], [100 * run["linear_val"]]), heading
                assert float(cells[5]) == run["knn_temperature"], heading  # T is shown exactly
        _check_seed_row(rows["SFRIK, seeds 0, 1, 2 (mean ± sd)"], seeds, heading)
        pixels = _json(MAIN_PIXELS)["pixels"]
        bank = [100 * pixels["knn20_test_bank_train"], 100 * pixels["knn20_test_bank_trainval"]]
        assert _cells_show(rows["raw pixels"][2], bank), heading
        if doc is BENCH_README:
            assert _cells_show(rows["raw pixels"][3], [100 * pixels["knn"]["val"]["20"]]), heading
            assert float(rows["raw pixels"][5]) == pixels["knn"]["temperature"], heading


def test_readme_run_description_is_the_presets():
    from dotkernels_ssl.pretraining.config import parse_config

    text = " ".join(README.split())
    cfg = parse_config(["--preset", "fashion-mnist-cpu", "--out", "unused"])
    minutes = re.search(r"one is also written every (\d+) minutes", text).group(1)
    assert float(minutes) == cfg.run.checkpoint_minutes
    results = " ".join(_section(README, "## Results").split())
    widths = "-".join(str(w) for w in cfg.model.convnet_widths)
    assert (
        f"`fashion-mnist-cpu` preset (ConvNet {widths}, projector {cfg.model.projector}, "
        f"{cfg.optim.optimizer.upper()}, batch {cfg.optim.batch_size}, {cfg.optim.epochs} epochs, bf16 autocast), "
        "2 CPU cores" in results
    )
    assert f"a {round(cfg.data.val_fraction * 60000)}-image validation split" in results
    assert cfg.run.amp == "auto"  # bf16 on this machine's CPU: its JSON records the bfloat16 instructions
    assert "avx512_bf16" in _json(MAIN_JOB)["machine"]["cpu_flags"]
    assert _json("pretrain16.json")["machine"]["cpu_count"] == 2


def test_loss_variants_table_states_the_weights_the_runs_used():
    rows = _rows(_section(BENCH_README, "### 12 epochs"))
    variants = {
        "default": _json("pretrain12.json")["methods"]["sfrik"],
        "invariance weight 250": _json("pretrain12_sfrik_sc250.json")["methods"]["sfrik"],
        "L = 4": _json("pretrain12_sfrik_L4.json")["methods"]["sfrik"],
    }
    for start, run in variants.items():
        (label,) = [label for label in rows if label.startswith(start)]
        weight = re.search(r"invariance weight (\d+)", label)
        options = run["loss_options"]
        used = options.get("invariance_weight", options.get("sim_coeff"))
        if weight:
            assert float(weight.group(1)) == used, label
        validation, test, linear = rows[label]
        assert _cells_show(validation, [100 * run["knn_val"]["20"]]), label
        assert _cells_show(test, [100 * run["knn20_test"], 100 * run["knn20_test_bank_trainval"]]), label
        assert _cells_show(linear, [100 * run["linear_test"]]), label


def test_the_default_invariance_weight_in_the_prose_is_the_presets():
    from dotkernels_ssl.losses import PRESETS

    weight = PRESETS["sfrik"]["fashion-mnist"]["invariance_weight"]
    (label,) = [label for label in _rows(BENCH_README) if label.startswith("default: invariance weight")]
    assert float(re.search(r"invariance weight (\d+)", label).group(1)) == weight
    # every run of the fashion-mnist preset recorded it
    for name in ("pretrain.json", "pretrain12.json", "pretrain16.json"):
        options = _json(name)["methods"]["sfrik"]["loss_options"]
        assert options.get("invariance_weight", options.get("sim_coeff")) == weight, name


# ---- losses and uniformity tests ---------------------------------------------------------------------------------


def test_sfrik_against_vicreg_table_and_readme_ratio_are_the_benchmark_json():
    points = {p["q"]: p for p in _json("losses.json")["b"]}
    text = _section(
        BENCH_README, "## SFRIK regulariser: fused autograd function against naive autograd, and against VICReg"
    )
    rows = _rows(text.split("SFRIK against `VICRegLoss`")[1])
    for q, p in points.items():
        t, m = p["time_s"], {k: v / 2**20 for k, v in p["peak_bytes"].items()}
        assert rows[str(q)] == [
            f"{t['sfrik']:.3f}",
            f"{t['vicreg']:.3f}",
            f"{t['vicreg'] / t['sfrik']:.1f}x",
            f"{m['sfrik']:.1f}",
            f"{m['vicreg']:.1f}",
            f"{m['vicreg'] / m['sfrik']:.1f}x",
        ], q
    p = points[8192]
    faster, smaller = re.search(r"it\s+is (\d+) times faster and takes (\d+) times less memory", README).groups()
    assert int(faster) == round(p["time_s"]["vicreg"] / p["time_s"]["sfrik"])
    assert int(smaller) == round(p["peak_bytes"]["vicreg"] / p["peak_bytes"]["sfrik"])
    assert "at batch n = 256 and q = 8192" in README and p["n"] == 256


def test_fused_against_naive_table_is_the_benchmark_json():
    text = _section(
        BENCH_README, "## SFRIK regulariser: fused autograd function against naive autograd, and against VICReg"
    )
    rows = _rows(text.split("SFRIK against `VICRegLoss`")[0])
    points = {p["n"]: p for p in _json("losses.json")["a"]}
    checked = 0
    for label, cells in rows.items():
        if not label.isdigit() or int(label) not in points:
            continue
        p = points[int(label)]  # "fused" is the blocked route (the default, auto = 512-row blocks)
        assert int(cells[0]) == p["q"], label
        mib = {k: v / 2**20 for k, v in p["peak_bytes"].items()}
        values = [
            p["time_s"]["naive"],
            p["time_s"]["blocked"],
            p["speedup"]["blocked"],
            mib["naive"],
            mib["blocked"],
            p["peak_ratio"]["blocked"],
            p["workspace_ratio"]["blocked"],
        ]
        assert _cells_show(" ".join(c.rstrip("x") for c in cells[1:8]), values), label
        assert cells[8] == f"{p['rel_err_vs_float64']['blocked']:.1e}", label
        checked += 1
    assert checked >= 2


def test_distributed_and_memory_sentences_are_the_benchmark_json():
    losses = _json("losses.json")
    flat = " ".join(BENCH_README.split())
    c = losses["c"]
    stated = re.search(
        rf"Distributed, {c['world']} gloo processes, global N = {c['n_total']}, q = {c['q']}, per rank: local rows "
        r"([\d.]+) s / ([\d.]+) MiB; replicating the full Gram matrix as the released SFRIK code does ([\d.]+) s / "
        r"([\d.]+) MiB \(naive\) or ([\d.]+) s / ([\d.]+) MiB \(fused\)",
        flat,
    ).groups()
    routes = ["local_rows", "replicated_full_gram_naive", "replicated_full_gram_fused"]
    measured = [[x for r in routes for x in (rank["time_s"][r], rank["peak_bytes"][r] / 2**20)] for rank in c["ranks"]]
    assert _cells_show(" ".join(stated), measured[0])  # rank 0's figures; the other ranks' are the same within 1%
    for other in measured[1:]:
        assert other == pytest.approx(measured[0], rel=0.01)
    big = next(p for p in losses["a"] if p["n"] == 2048)
    gradient_mib = big["n"] * big["q"] * 4 / 2**20  # float32 (n, q) gradient
    share = re.search(r"the gradient alone \((\d+) MiB\) is (\d+)% of the naive peak", flat).groups()
    assert int(share[0]) == gradient_mib
    assert _shown(share[1], 100 * gradient_mib / (big["peak_bytes"]["naive"] / 2**20))
    # the routes and sizes the section names
    from dotkernels_ssl.losses import functional

    block = re.search(r"\(`auto` = (\d+)-row blocks\)", flat).group(1)
    assert int(block) == functional.AUTO_BLOCK_SIZE
    script = (ROOT / "benchmarks" / "bench_losses.py").read_text()
    n_gpu, q_gpu = re.search(r"The script's GPU section \(n = (\d+), q = (\d+), bf16 autocast\)", flat).groups()
    assert f"GPU_GRID = [({n_gpu}, {q_gpu})]" in script
    assert losses["meta"]["threads"] == 1 and "float32, 1 thread" in flat
    # "so a peak ratio of 1/3 is out of reach ...; the extra (workspace) memory is 0.11 of naive"
    assert gradient_mib / (big["peak_bytes"]["naive"] / 2**20) > 1 / 3
    workspace = re.search(r"the extra \(workspace\) memory is ([\d.]+) of naive", flat).group(1)
    assert _shown(workspace, big["workspace_ratio"]["blocked"])
    mmd_rows = [r for r in _json("mmd.json")["rows"] if (r["n"], r["q"]) in {(4096, 64), (4096, 512), (20000, 128)}]
    assert "All methods agree to 1e-16" in flat and max(r["max_value_difference"] for r in mmd_rows) <= 1e-16


def test_uniformity_grid_and_agreement_are_the_benchmark_json():
    data = _json("uniformity.json")
    text = _section(BENCH_README, "## Uniformity tests")
    columns = [
        "Rayleigh",
        "Bingham",
        "Ajne",
        "Gine_Gn",
        "Bakshaev",
        "Poisson",
        "Softmax",
        "battery_seven",
        "battery_all",
    ]
    grid = {(g["n"], g["q"]): g for g in data["grid"]}
    checked = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or not cells[0].isdigit():
            continue
        point = grid[int(cells[0]), int(cells[1])]
        for name, cell in zip(columns, cells[2:]):
            if cell == "":
                assert name not in point, (cells[:2], name)
            elif cell == "error":
                assert not isinstance(point.get(name), float), (cells[:2], name)
            else:
                assert _shown(cell, point[name]), (cells[:2], name)
        if "battery_all_tests" in point:
            assert f"all {point['battery_all_tests']} of sphunif's spherical tests" in " ".join(text.split())
        checked += 1
    assert checked == len(grid)
    target = data["target"]
    flat = " ".join(text.split())
    quieter = re.search(r"on a quieter moment of the same run, the seven take ([\d.]+) s in one call", flat).group(1)
    assert _shown(quieter, grid[target["n"], target["q"]]["battery_seven"])
    statistic, pvalue = re.search(r"statistics agree to ([\d.e-]+) and their p-values to ([\d.e-]+)", flat).groups()
    assert statistic == f"{target['max_rel_diff_statistic']:.1e}" and pvalue == f"{target['max_rel_diff_pvalue']:.1e}"
    # "its null laws of the slowly converging series use degree 1024 ... (p-values equal to the automatic
    # truncation's to ~1e-11)": the battery's degree, and the single tests (automatic truncation) agree to that order
    from dotkernels.uniformity import _specs

    degree, order = re.search(r"series use degree (\d+) .*? automatic truncation's to ~1e-(\d+)\)", flat).groups()
    assert int(degree) == _specs._KERNEL_NULL_DEGREE
    assert math.floor(math.log10(target["max_rel_diff_pvalue"])) == -int(order)  # its order of magnitude


def test_battery_figures_are_the_benchmark_json():
    target = _json("uniformity.json")["target"]
    text = " ".join(README.split())
    battery, separate = re.search(
        r"take (\d+\.\d) s at n = 10 000, q = 10, against (\d+) s as seven separate", text
    ).groups()
    assert (target["n"], target["q"], len(target["tests"])) == (10000, 10, 7)
    assert float(battery) == round(target["battery_cold_s"], 1)
    assert int(separate) == round(target["seven_calls_cold_s"])
    rows = _rows(_section(BENCH_README, "## Uniformity tests"))
    assert rows["seven `uniformity_test(Z, name)` calls"] == [
        f"{target['seven_calls_cold_s']:.2f}",
        f"{target['seven_calls_warm_s']:.2f}",
    ]
    (one_call,) = [cells for label, cells in rows.items() if label.startswith("one `uniformity_test(Z, [the seven])`")]
    assert one_call == [f"{target['battery_cold_s']:.2f}", f"{target['battery_warm_s']:.2f}"]


def test_gegenbauer_tables_are_the_benchmark_json():
    data = _json("legendre.json")
    text = _section(BENCH_README, "## Gegenbauer series against `scipy.special.eval_gegenbauer`")
    rows = _rows(text)
    for point in data["series_speed"]:
        assert _cells_show(
            " ".join(rows[str(point["q"])]), [point["dotkernels_s"], point["scipy_s"], point["speedup"]]
        ), point["q"]
    for point in data["large_q_accuracy"]:
        cells = rows[str(point["l"])]
        assert f"{point['dotkernels_max_abs_err']:.1e}" == cells[0], point["l"]
        if point["scipy_finite"]:
            assert f"{point['scipy_max_abs_err']:.1e}" == cells[1], point["l"]
        else:
            assert cells[1].startswith("nan/inf"), point["l"]


def test_gegenbauer_and_mmd_setups_are_the_benchmark_json():
    text = " ".join(_section(BENCH_README, "## Gegenbauer series against `scipy.special.eval_gegenbauer`").split())
    degree, points, best, q, digits = re.search(
        r"a degree-(\d+) series on 10\^(\d) points \(best of (\d)\), and single polynomials at q = (\d+) against "
        r"(\d+)-digit mpmath",
        text,
    ).groups()
    data = _json("legendre.json")
    assert all((p["L"], p["points"]) == (int(degree), 10 ** int(points)) for p in data["series_speed"])
    assert all(p["q"] == int(q) for p in data["large_q_accuracy"])
    script = (ROOT / "benchmarks" / "bench_legendre.py").read_text()
    assert f"default={best})" in script and f"mp.workdps({digits})" in script
    text = " ".join(_section(BENCH_README, "## MMD to the uniform distribution: gram, blocked and moments").split())
    mmd = _json("mmd.json")
    b = re.search(
        r"the SFRIK L = 2 kernel \(b = \(([\d, ]+)\)\), numpy float64, one BLAS thread, best of at least (\d+)", text
    )
    weights, repeats = b.groups()
    assert mmd["kernel"] == f"SFRIKKernel(weights=({', '.join(f'{float(w):.1f}' for w in weights.split(', '))}))"
    assert len(weights.split(", ")) == 2 and mmd["dtype"] == "float64" and mmd["blas_threads"] == "1"
    assert mmd["repeats"] == int(repeats)


def test_gegenbauer_overflow_degree_is_computed():
    # "scipy's unnormalised values overflow from l = 106 at this q": the first degree whose C_l^lambda(1), the
    # largest value on [-1, 1], is not a finite float64
    from scipy.special import eval_gegenbauer

    section = _section(BENCH_README, "## Gegenbauer series against `scipy.special.eval_gegenbauer`")
    text = " ".join(section.split())
    q = int(re.search(r"\| l \(q = (\d+)\) \|", text).group(1))
    stated = int(re.search(r"unnormalised values overflow from l = (\d+) at this q", text).group(1))
    with np_errstate():
        finite = [math.isfinite(eval_gegenbauer(l, (q - 2) / 2, 1.0)) for l in range(1, 400)]
    first = finite.index(False) + 1
    assert stated == first and all(not f for f in finite[first - 1 :])
    # the same degree from log C_l^lambda(1) = log binom(l + 2 lambda - 1, l), independent of scipy's evaluation
    two_lam = q - 2
    log_c = [math.lgamma(l + two_lam) - math.lgamma(two_lam) - math.lgamma(l + 1) for l in (first - 1, first)]
    assert log_c[0] < math.log(np.finfo(float).max) < log_c[1]
    rows = _rows(section)
    assert not rows[str(first - 6)][1].startswith("nan") and rows[str(200)][1].startswith("nan/inf")


def np_errstate():
    return np.errstate(over="ignore", invalid="ignore")


def test_loss_benchmark_load_average_is_the_json():
    meta = _json("losses.json")["meta"]
    text = " ".join(BENCH_README.split())
    stated = re.search(r"load average ([\d–-]+) at the start and end of the run", text).group(1)
    assert _span(stated, [meta["loadavg_start"][0], meta["loadavg_end"][0]])  # the 1-minute load averages


def test_uniformity_scaling_bullets_are_the_benchmark_json():
    data = _json("uniformity.json")
    flat = " ".join(_section(BENCH_README, "## Uniformity tests").split())
    pairwise = ["Ajne", "Gine_Gn", "Bakshaev", "Poisson", "Softmax"]
    at_10k = [g[name] for g in data["grid"] if g["n"] == 10000 for name in pairwise if isinstance(g.get(name), float)]
    low, high, n = re.search(r"\(([\d.]+) to ([\d.]+) s per 5e7 pairs, n = (\d+) 000, and pairwise test", flat).groups()
    assert int(n) * 1000 == 10000 and round(10000 * 9999 / 2, -6) == 5e7
    assert _shown(low, min(at_10k)) and _shown(high, max(at_10k))
    # "n = 10 000 takes seconds and n = 100 000 (5e9 pairs, 100 times more) minutes per test"
    assert 0.1 < min(at_10k) and max(at_10k) < 60
    assert 60 <= 100 * min(at_10k) and 100 * max(at_10k) < 3600
    # "Rayleigh and Bingham ... milliseconds to seconds up to n = 100 000, q = 1000" (here and in the README)
    moments = [g[name] for g in data["grid"] for name in ("Rayleigh", "Bingham")]
    assert max(moments) < 10 and max(g["n"] for g in data["grid"]) == 100000 and max(g["q"] for g in data["grid"])
    assert "take milliseconds to seconds up to n = 100 000, q = 1000" in " ".join(README.split())
    assert "milliseconds to seconds up to n = 100 000, q = 1000" in flat


def test_poisson_error_bullet_is_computed():
    from dotkernels import PoissonKernel, sample_uniform, uniformity_test

    flat = " ".join(_section(BENCH_README, "## Uniformity tests").split())
    a0, q = re.search(
        r"normalised to phi\(1\) = 1, has mean a_0 = ([\de.-]+) over uniform pairs at q = (\d+)", flat
    ).groups()
    kernel = PoissonKernel(rho=0.5, normalized=True)
    assert float(kernel(np.array([1.0]), q=int(q))[0]) == pytest.approx(1.0)
    assert f"{kernel.spectrum(0, q=int(q))[0]:.0e}" == a0
    measured = [g for g in _json("uniformity.json")["grid"] if "Poisson" in g]
    assert "the single Poisson test (rho = 0.5) at q >= 100" in flat
    assert {g["q"] for g in measured if not isinstance(g["Poisson"], float)} == {100, 1000}
    assert all(isinstance(g["Poisson"], float) for g in measured if g["q"] < 100)
    for q in (100, 1000):  # "`sobolev_null` raises a ValueError (a numerically degenerate law)"
        with pytest.raises(ValueError, match="degenerate"):
            uniformity_test(sample_uniform(50, q=q, rng=0), "poisson", method="asymptotic")


def test_mmd_table_rows_are_the_benchmark_json():
    measured = {(r["n"], r["q"], r["method"]): r for r in _json("mmd.json")["rows"]}
    text = _section(BENCH_README, "## MMD to the uniform distribution: gram, blocked and moments")
    checked = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or not cells[0].isdigit():
            continue
        row = measured[int(cells[0]), int(cells[1]), cells[2]]
        if cells[3].startswith("skipped"):
            assert row["skipped"] and f"{row['gram_matrix_gb']:.1f} GB" in cells[3], cells
            continue
        assert _cells_show(f"{cells[3]} {cells[4]}", [1000 * row["seconds"], row["peak_mb"]]), cells
        if cells[5] != "-":
            assert _cells_show(cells[5].rstrip("x"), [row["gram_over_method"]]), cells
        checked += 1
    assert checked >= 6


_GRAM = "## Kernel matrices: every family, numpy and torch, and GeometricKernels"


def _about(text: str, value: float) -> bool:
    """``text`` ("11", "1500", "0.7") is ``value`` to the significant digits it shows (trailing zeros of an integer
    are not significant)."""
    if "." in text:
        return _shown(text, value)
    zeros = len(text) - len(text.rstrip("0"))
    return abs(float(text) - value) <= 0.5 * 10.0**zeros + 1e-9


def test_kernel_matrix_tables_are_the_benchmark_json():
    data = _json("gram.json")
    section = _section(BENCH_README, _GRAM)
    measured = {(r["kernel"], r["n"], r["q"]): r for r in data["gram"] if "geometric_kernels_s" not in r}
    checked = 0
    for n in (1000, 4000):
        table = section.split(f"n = {n}, seconds:")[1].split("\n\n")[1]
        rows = _rows(table)
        header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")][1:]
        assert {label.strip("`") for label in rows if label != "kernel"} == {k for k, m, _ in measured if m == n}
        for label, cells in rows.items():
            if label == "kernel":
                continue
            for column, cell in zip(header, cells):
                q, backend = re.fullmatch(r"q=(\d+) (numpy|torch)", column).groups()
                row = measured[label.strip("`"), n, int(q)]
                if cell == "skipped":
                    assert "skipped" in row, (label, n, column)
                    # "predicted ... to take over 60 s"
                    assert float(re.search(r"~(\d+) s here", row["skipped"]).group(1)) > 60, row
                else:
                    assert cell == f"{row[backend + '_s']:.3f}", (label, n, column)
                    checked += 1
    assert checked >= 200
    flat = " ".join(section.split())
    ratios = [
        measured[k, 4000, q][b] / measured[k, 1000, q][b]
        for (k, n, q), r in measured.items()
        if n == 4000 and "skipped" not in r and "skipped" not in measured[k, 1000, q]
        for b in ("numpy_s", "torch_s")
    ]
    low, high = re.search(
        r"the n = 4000 times are (\d+) to (\d+) times the n = 1000 ones where 16 is expected", flat
    ).groups()
    assert _about(low, min(ratios)) and _about(high, max(ratios)) and (4000 / 1000) ** 2 == 16
    minutes = re.search(r"during the run, (\d+) minutes in all", flat).group(1)
    assert _shown(minutes, data["total_s"] / 60)
    machine = data["machine"]
    assert (
        f"dev CPU with numpy {machine['numpy']}" in flat and f"GeometricKernels {machine['geometric_kernels']}" in flat
    )
    assert machine["threads"] == 1 and "one BLAS and torch thread" in flat


def test_geometric_kernels_table_is_the_benchmark_json():
    data = _json("gram.json")
    section = _section(BENCH_README, _GRAM)
    ours = {(r["kernel"], r["q"]): r for r in data["gram"] if r["n"] == 1000 and "numpy_s" in r}
    theirs = [r for r in data["gram"] if "geometric_kernels_s" in r]
    table = section.split("| Matérn kernel (n = 1000) |")[1].split("\n\n")[0]
    lines = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(lines) == len(theirs)
    for line, row in zip(lines, theirs):
        kernel, q, gk_s, numpy_s, ratio, diff = [c.strip() for c in line.strip().strip("|").split("|")]
        assert (kernel.strip("`"), int(q)) == (row["kernel"], row["q"]) and row["n"] == 1000
        own = ours[row["kernel"], row["q"]]["numpy_s"]
        assert _shown(gk_s, row["geometric_kernels_s"]) and numpy_s == f"{own:.3f}", line
        assert ratio == f"{row['geometric_kernels_s'] / own:.0f}x", line
        assert diff == f"{row['geometric_kernels_max_abs_diff']:.1e}", line
    # "the heat kernel (nu = inf) agrees to rounding"
    assert all(r["geometric_kernels_max_abs_diff"] < 1e-14 for r in theirs if "nu=inf" in r["kernel"])


def test_matern_table_and_its_summary_are_the_benchmark_json():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gram", ROOT / "benchmarks" / "bench_gram.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = _json("gram.json")["matern"]
    section = _section(BENCH_README, _GRAM)
    assert bench.matern_markdown(rows) in section
    assert " ".join(bench.matern_summary(rows).split()) in " ".join(section.split())


def test_long_series_and_feature_mmd_tables_are_the_benchmark_json():
    data = _json("gram.json")
    section = _section(BENCH_README, _GRAM)
    rows = _rows(section.split("allocating_clenshaw`), seconds:")[1])
    for point in data["series"]:
        cells = rows[str(point["terms"])]
        keys = ["numpy_s", "torch_s", "torch_grad_s", "allocating_torch_s", "allocating_torch_grad_s"]
        for key, cell in zip(keys, cells):
            if key in point:
                assert cell == f"{point[key]:.3f}", (point["terms"], key)
            else:
                assert cell.startswith("not run"), (point["terms"], key)
        assert f"a {point['points']} x {point['points']} matrix" in section
    flat = " ".join(section.split())
    rows = _rows(section.split("on the first 10^4 of them:")[1])
    hours = {}
    for point in data["feature_mmd"]:
        label = f"`{point['kernel']}`"
        degree, features_s, estimate, bound, exact_s, small_s = rows[label]
        assert int(degree) == point["degree"]
        assert _shown(features_s, point["features_s"])
        assert estimate == f"{point['estimate']:.1e} +- {point['standard_error']:.1e}"
        assert bound == ("0" if point["truncation_error"] == 0 else f"{point['truncation_error']:.1e}")
        assert exact_s == f"{point['exact_s_at_exact_n']:.2f}" and small_s == f"{point['features_s_at_exact_n']:.2f}"
        assert (point["n"], point["q"], point["n_directions"], point["exact_n"]) == (10**6, 32, 256, 10**4)
        # the exact route grows as n^2: (10^6 / 10^4)^2 = 10^4 times its n = 10^4 time
        hours[point["kernel"]] = (point["n"] / point["exact_n"]) ** 2 * point["exact_s_at_exact_n"] / 3600
    sfrik, gauss = re.search(
        r"\(about (\d+) h for `sfrik`, (\d+) h for the Gaussian kernel, extrapolated", flat
    ).groups()
    assert _shown(sfrik, hours["sfrik"]) and _shown(gauss, hours["gaussian:gamma=1"])
    assert "at q = 32 with m = 256 directions" in flat


def test_calibration_section_is_the_benchmark_json():
    # the tables are generated into docs/calibration.md (checked in test_calibration.py); here, the section's prose
    data = _json("calibration.json")
    flat = " ".join(_section(BENCH_README, "## Calibration of the uniformity tests").split())
    meta, size = data["meta"], data["size"]
    sizes_s, power_s = re.search(r"(\d+) s for the sizes, (\d+) s for the power", flat).groups()
    assert _shown(sizes_s, meta["seconds_size"]) and _shown(power_s, meta["seconds_power"])
    auto = [c for c in size["cells"] if c["setting"] == "auto"]
    library = [c for c in auto if not c["test"].startswith("dotkernels_ssl")]
    circular, spherical = re.search(r"\((\d+) circular at q = 2, (\d+) spherical at q = 3, 10, 100\)", flat).groups()
    assert len({c["test"] for c in library if c["q"] == 2}) == int(circular)
    for q in (3, 10, 100):
        assert len({c["test"] for c in library if c["q"] == q}) == int(spherical), q
    assert meta["n"] == [10, 20, 50, 200] and "at n = 10, 20, 50, 200 and levels 1 %, 5 %, 10 %" in flat
    assert {c["alpha"] for c in size["cells"]} == {0.01, 0.05, 0.1}
    assert f"with {size['n_samples']} uniform samples per (n, q)" in flat
    ses = re.search(r"binomial standard error ([\d.]+), ([\d.]+), ([\d.]+) at the three levels", flat).groups()
    assert _cells_show(" ".join(ses), [math.sqrt(a * (1 - a) / size["n_samples"]) for a in (0.01, 0.05, 0.1)])
    power = data["power"]
    assert {c["n"] for c in power["cells"]} == {meta["power_n"]} and f"at n = {meta['power_n']} against" in flat
    assert {c["alternative"] for c in power["cells"]} == {"vMF", "Watson", "mixture"}
    assert f"({power['n_samples']} samples per cell)" in flat
    # the bullets
    cells, z = re.search(
        r"Of the (\d+) cells of the default p-values, .*?alpha \+ ([\d.]+) standard errors", flat
    ).groups()
    assert int(cells) == len(auto) and _shown(z, size["z"])
    assert "none of the library's tests is flagged anti-conservative" in flat
    assert not any(c["anti_conservative"] for c in library)
    excess = re.search(r"the largest excess at 5 % is ([\d.]+)", flat).group(1)
    assert _shown(excess, max(c["rejection_rate"] - c["alpha"] for c in library if c["alpha"] == 0.05))
    counts = {}
    for c in auto:
        counts[c["method"]] = counts.get(c["method"], 0) + 1
    asym, mc_samples, mc, exact = re.search(
        r"asymptotic in (\d+) cells, a finite-n Monte Carlo law \((\d+) samples .*?\) in (\d+), CJ12's exact union "
        r"bound in (\d+)",
        flat,
    ).groups()
    assert int(asym) == counts["asymptotic"] and int(exact) == counts["exact bound"]
    assert int(mc) == counts[f"Monte Carlo ({mc_samples} samples)"]
    assert {c["test"] for c in auto if c["method"] == "exact bound"} == {"CJ12"}
    monitor = [
        c for c in auto if c["test"] == "dotkernels_ssl monitor rayleigh_z" and c["q"] <= 10 and c["alpha"] == 0.01
    ]
    low, high, flagged, of = re.search(
        r"anti-conservative at 1 % for q <= 10 \(([\d.]+)–([\d.]+), flagged in (\d+) of its (\d+) cells there\)", flat
    ).groups()
    assert _span(f"{low}-{high}", [c["rejection_rate"] for c in monitor])
    assert (int(flagged), int(of)) == (sum(c["anti_conservative"] for c in monitor), len(monitor))
    theirs = [c for c in data["sphunif"]["cells"] if c["alpha"] == 0.05]
    cj12 = re.search(
        r"CJ12's upper tail rejects ([\d.]+)–([\d.]+) of uniform samples at q = 3 and ([\d.]+)–([\d.]+) at q = 10", flat
    )
    for (low, high), q in zip((cj12.groups()[:2], cj12.groups()[2:]), (3, 10)):
        rates = [c["rejection_rate"] for c in theirs if c["test"].startswith("CJ12") and c["q"] == q]
        assert _span(f"{low}-{high}", rates), q
    ajne = re.search(r"Hodges–Ajne's P\(H > h\) rejects ([\d., ]+) at n = 10, 20, 50, 200", flat).group(1)
    rates = sorted(
        ((c["n"], c["rejection_rate"]) for c in theirs if c["test"].startswith("Hodges_Ajne")), key=lambda x: x[0]
    )
    assert [n for n, _ in rates] == [10, 20, 50, 200]
    assert _cells_show(ajne, [r for _, r in rates])


# ---- the README's examples ------------------------------------------------------------------------------------


def _commented_lines(block: str) -> list[tuple[int, str, str]]:
    """``(line number, expression, comment)`` of the example lines whose comment states a value: a dict of keys
    (``# {"a": ..., "b": ...}``) or a number after an equals sign (``# ... = 25502564475024``)."""
    found = []
    for i, line in enumerate(block.splitlines()):
        code, _, comment = line.partition("  # ")
        if comment and (comment.lstrip().startswith("{") or re.search(r"(?<![<>!=]) = [\d.e+-]+$", comment.strip())):
            found.append((i, code.strip(), comment.strip()))
    return found


def test_readme_example_comments_state_what_the_calls_return():
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    checked = 0
    for block in blocks:
        lines = block.splitlines()
        for i, expression, comment in _commented_lines(block):
            namespace: dict = {}
            exec(compile("\n".join(lines[:i]), "README.md", "exec"), namespace)
            value = eval(expression, namespace)
            if comment.startswith("{"):
                keys = re.findall(r'"(\w+)": \.\.\.', comment.split("}")[0])
                assert keys == list(value), f"README: {expression} returns the keys {list(value)}, not {keys}"
            else:
                stated = re.search(r"= ([\d.e+-]+)$", comment).group(1)
                assert float(value) == float(stated), f"README: {expression} is {value}, not {stated}"
            checked += 1
    assert checked >= 2, "the README's examples state values in comments: the checker found none"


def test_readme_states_the_torch_release_it_installs():
    stated = re.search(r"`(torch==\S+) (torchvision==\S+)` are the releases", README).groups()
    assert f"pip install -q {stated[0]} {stated[1]}" in README


def test_sfrik_kernel_coefficients_in_the_readme_are_the_defaults():
    from dotkernels import parse_kernel

    b = re.search(r'parse_kernel\("sfrik"\)\s+# b_1 P_1 \+ b_2 P_2 \+ b_3 P_3 with b = \(([\d, ]+)\)', README).group(1)
    assert tuple(float(x) for x in b.split(",")) == tuple(parse_kernel("sfrik").coefficients)


def test_readme_names_the_dimensions_notebook03_draws():
    stated = re.search(
        r"`03_uniformity_tests` \(calibration\s+and power of the named tests at q = ([\d, and]+)\)", README
    )
    qs = [int(x) for x in re.findall(r"\d+", stated.group(1))]
    nb = nbformat.read(ROOT / "notebooks" / "03_uniformity_tests.ipynb", as_version=4)
    full = re.search(r"^QS = .* else (\[[\d, ]+\])$", nb.cells[1].source, re.M).group(1)
    assert qs == json.loads(full)


def test_readme_gpu_check_sizes_are_the_scripts():
    import importlib.util
    import inspect

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    n, q = re.search(r"the fused loss at n = (\d+), q = (\d+) in bf16", README).groups()
    defaults = inspect.signature(gpu_check.loss_benchmark).parameters
    assert (int(n), int(q)) == (defaults["n"].default, defaults["q"].default)


def test_readme_dimension_range_is_computed():
    # "any dimension met in practice (q = 2 to 65536 and beyond)": spectra stay finite and positive there
    from dotkernels import GaussianKernel, SFRIKKernel

    low, high = map(int, re.search(r"\(q = (\d+) to (\d+) and beyond\)", README).groups())
    for q in (low, high, 4 * high):
        a = GaussianKernel(gamma=2.5).spectrum(10, q=q)
        assert all(math.isfinite(x) and x > 0 for x in a), q
        assert SFRIKKernel().spectrum(3, q=q)[1:] == pytest.approx([1.0, 40.0, 40.0]), q


def test_background_page_states_the_librarys_defaults():
    # the page's other numbers are the paper's reported results (its table and text, cited with their source)
    from dotkernels import parse_kernel
    from dotkernels_ssl.losses import PRESETS

    text = " ".join((ROOT / "docs" / "background.md").read_text().split())
    b = re.search(r"\(b_1, b_2, b_3\) = \(([\d, ]+)\)", text).group(1)
    default = tuple(float(x) for x in b.split(","))
    assert default == tuple(parse_kernel("sfrik").coefficients)
    assert f'parse_kernel("sfrik:{b.replace(" ", "")}")' in text
    assert tuple(parse_kernel("sfrik:" + b.replace(" ", "")).coefficients) == default
    presets = re.search(r"The presets `(\w+)` and `(\w+)` of \{data\}`~dotkernels_ssl.losses.PRESETS`", text).groups()
    assert all(name in PRESETS["sfrik"] for name in presets)
    assert "Zheng" in _section((ROOT / "docs" / "background.md").read_text(), "## References")


# ---- notebooks -------------------------------------------------------------------------------------------------

# numbers of the prose that are mathematics or references, not results: (notebook stem, number) -> why
_MATH = {}

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\d)")


def _prose_numbers(markdown: str) -> set[str]:
    text = markdown.split("## References")[0].split("**Reference.**")[0]
    text = re.sub(r"(?m)^(#+\s*)\d+(?:\.\d+)*\s*[.·]?", r"\1", text)  # numbers of headings ("# 05 ·", "## 2.")
    text = re.sub(r"(\d) (\d{3})\b", r"\1\2", text)  # 12 000 -> 12000
    text = re.sub(r"\b(1[89]|20)\d\d\b", "", text)  # years of citations
    text = re.sub(r"\b(?:ch\.|chapter|sec\.|section|eq\.|pp?\.) ?\d+(?:[.–-]\d+)*", "", text, flags=re.I)  # cited parts
    return set(_NUMBER.findall(text))


def _code_and_outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts.append(cell.source)
        for out in cell.outputs:
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return re.sub(r"(\d)_(\d{3})\b", r"\1\2", "\n".join(parts))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_number_in_a_notebooks_prose_is_in_its_code_or_outputs(path):
    nb = nbformat.read(path, as_version=4)
    source = _code_and_outputs(nb)
    present = set(_NUMBER.findall(source)) | {x.rstrip("0").rstrip(".") for x in _NUMBER.findall(source) if "." in x}
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for number in sorted(_prose_numbers(cell.source)):
                if number not in present and (path.stem, number) not in _MATH:
                    missing.append(f"cell {i}: {number}")
    assert not missing, f"{path.name}: numbers of the prose that no code sets and no output prints: {missing}"


def _outputs(stem: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return "\n".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


def test_notebook01_poisson_phi_at_one_is_the_closed_form():
    out = _outputs("01_kernel_spectra")
    for q in (130, 8192):
        value = float(re.search(rf"rho = 0.5, q = +{q}: phi\(1\) = 10\^([\d.]+)", out).group(1))
        # (1 + rho) / (1 - rho)^(q - 1) at rho = 1/2 is 3 * 2^(q - 2)
        assert value == pytest.approx(math.log10(3) + (q - 2) * math.log10(2), abs=0.006), q


def test_notebook03_null_calibration_holds_on_the_committed_outputs():
    out = _outputs("03_uniformity_tests")
    left = re.search(r"leaving the simultaneous 95% band: (\d+) of \d+.*?(?:: (.*))?$", out, re.M)
    named = left.group(2).split(", ") if left.group(2) else []
    assert len(named) == int(left.group(1))
    # the conclusion says the p-values are uniform: every line that left the band was checked again on fresh
    # samples, and the check found no departure from the uniform law
    for line in named:
        test, q = re.fullmatch(r"(\w+) at q = (\d+)", line).groups()
        ks = float(re.search(rf"fresh check of {test} at q = {q}: .* KS p = ([\d.]+)", out).group(1))
        assert ks > 0.01, line
    sds = float(re.search(r"= ([\d.]+) binomial sd", out).group(1))
    assert sds < 3.5
    rates = re.search(r"asymptotic rates ([\d.]+)-([\d.]+), Monte Carlo ([\d.]+)-([\d.]+)", out).groups()
    asym_high, mc_low = float(rates[1]), float(rates[2])
    assert asym_high <= 0.05 + 0.01 and mc_low >= 0.05 - 0.01  # "asymptotic slightly conservative", MC near 0.05


def test_notebook04_conclusion_holds_on_the_committed_outputs():
    out = _outputs("04_pretraining")
    assert "/tmp/" not in out and "/usr/" not in out and "/home/" not in out, "machine paths in the outputs"
    runs = {}
    for name in ("SFRIK", "VICReg"):
        pattern = (
            rf"{name} *: 20-NN ([\d.]+)%, linear probe ([\d.]+)%.*effective rank (\d+) of \d+, MMD2 to uniform ([\d.]+)"
        )
        runs[name] = tuple(float(x) for x in re.search(pattern, out).groups())
    pixels = float(re.search(r"raw pixels: 20-NN ([\d.]+)%", out).group(1))
    energies = {}
    for name in ("SFRIK", "VICReg"):
        pattern = rf"{name} *: n E_l for l = 1, 2: ([\d.]+), ([\d.]+); for l = 4..8 from ([\d.]+) to ([\d.]+)"
        energies[name] = tuple(float(x) for x in re.search(pattern, out).groups())
    for knn, linear, _, _ in runs.values():
        assert abs(knn - pixels) < 2.0  # "within two points of the 20-NN test accuracy of raw pixels"
        assert 1.0 <= linear - knn <= 2.5  # "one to two points more with a linear probe" (rounded)
    sfrik, vicreg = energies["SFRIK"], energies["VICReg"]
    assert vicreg[0] > 2 * sfrik[0] and vicreg[1] > 2 * sfrik[1]  # "several times closer" at degrees 1, 2
    assert vicreg[2] > sfrik[3]  # degrees 4 to 8: VICReg's stay above SFRIK's
    assert runs["SFRIK"][2] > runs["VICReg"][2] and runs["SFRIK"][3] < runs["VICReg"][3]  # the monitors


def test_notebook04_states_its_data_and_the_preset_weights():
    nb = nbformat.read(ROOT / "notebooks" / "04_pretraining.ipynb", as_version=4)
    assert "apt-get install dataset-fashion-mnist" in nb.cells[0].source
    from dotkernels_ssl.losses import PRESETS

    out = _outputs("04_pretraining")
    weight = PRESETS["sfrik"]["fashion-mnist"]["invariance_weight"]
    assert re.search(rf"--- sfrik: .*preset 'fashion-mnist': SFRIKLoss\(.*invariance_weight={weight}", out)


# ---- license and citation ----------------------------------------------------------------------------------------


def test_license_is_the_declared_bsd_3_clause():
    assert 'license = { text = "BSD-3-Clause" }' in (ROOT / "pyproject.toml").read_text()
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "the dotkernels developers" in text
    assert "Neither the name of the copyright holder" in text


def test_citation_cff_has_the_required_keys_and_the_project_version():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff[key], key
    assert cff["version"] == version and cff["license"] == "BSD-3-Clause"
    for ref in cff["references"]:
        assert ref["type"] and ref["title"] and ref["authors"], ref
        for author in ref["authors"]:
            assert author.get("family-names") or author.get("name"), ref["title"]
    titles = " ".join(ref["title"] for ref in cff["references"])
    for cited in (
        "rotation-invariant kernels",
        "uniformity tests on the hypersphere",
        "sphunif",
        "coherence",
        "alignment and uniformity",
    ):
        assert cited in titles, cited


def test_recipe_variants_table_is_the_runs_json():
    """Each row is its run's JSON, names the one option the run changed, and the prose's comparisons hold."""
    rows = _rows(_section(BENCH_README, "### Recipe variants (SFRIK, seed 0, judged on the validation split)"))
    default = _json("pretrain_sfrik_seeds.json")["methods"]["sfrik"]["seeds"][0]
    assert default["seed"] == 0 and default["epochs"] == 8
    variants = {
        "crops of scale (0.25, 1)": ("recipe_sfrik_crop25.json", ["--data.crop_scale", "0.25,1.0"]),
        "projector 2048-2048-2048": ("recipe_sfrik_proj2048.json", ["--projector", "2048-2048-2048"]),
        "bf16 autocast, 14 epochs": ("recipe_sfrik_bf16_e14.json", ["--amp", "bf16"]),
        "bf16 autocast, 28 epochs": ("recipe_sfrik_bf16_e28.json", ["--amp", "bf16"]),
    }
    runs = {"default": default}
    for label, (name, options) in variants.items():
        data = _json(name)
        assert data["extra_options"] == options and data["seeds"] == 1, name
        runs[label] = data["methods"]["sfrik"]
    assert len(rows) == len(runs) + 1  # and the header
    for start, run in runs.items():
        (label,) = [label for label in rows if label.startswith(start)]
        epochs, val_knn, val_linear, test_knn, test_linear = rows[label]
        assert int(epochs) == run["epochs"], label
        assert _cells_show(val_knn, [100 * run["knn_val"]["20"]]), label
        assert _cells_show(val_linear, [100 * run["linear_val"]]), label
        assert _cells_show(test_knn, [100 * run["knn20_test"], 100 * run["knn20_test_bank_trainval"]]), label
        assert _cells_show(test_linear, [100 * run["linear_test"]]), label
    for label in ("crops of scale (0.25, 1)", "projector 2048-2048-2048"):  # "did not raise either"
        assert runs[label]["epochs"] == 8
        assert runs[label]["knn_val"]["20"] <= default["knn_val"]["20"]
        assert runs[label]["linear_val"] <= default["linear_val"]
    for epochs in (14, 28):  # "above the default in both validation columns"
        bf16 = runs[f"bf16 autocast, {epochs} epochs"]
        assert bf16["epochs"] == epochs
        assert bf16["knn_val"]["20"] > default["knn_val"]["20"] and bf16["linear_val"] > default["linear_val"]
