"""Cost of the pretraining CLI's final evaluation: weighted kNN, linear probe and logistic regression, step by step.

Trains a short ``fashion-mnist-cpu`` SFRIK run (1 epoch on the first 10 240 images; ``python -m
dotkernels_ssl.pretrain``) or takes an existing run folder or checkpoint (``--run``), extracts the backbone's
features of the full train, validation and test splits (``--extract-threads`` torch threads, wall time under the
machine's load recorded), then times each evaluation step with the run's own settings in its own process on one
thread (CPU seconds, wall seconds, 1/5/15-minute load average before and after), and again the kNN and the linear
probe with two threads (a step still running after ``--two-thread-timeout`` seconds is stopped and recorded as
unfinished with the CPU seconds it had used). Writes JSON (default benchmarks/results/eval_cost.json) and prints a
markdown table.

    python benchmarks/bench_eval_cost.py                       # train, extract, time (about an hour on 2 busy cores)
    python benchmarks/bench_eval_cost.py --run runs/fashion-mnist-sfrik   # the evaluation of an existing run
    python benchmarks/bench_eval_cost.py --quick --out /tmp/eval_cost.json  # tiny synthetic features (seconds)
    python benchmarks/bench_eval_cost.py --compare-linear     # the linear probe before and after, 1 and 2 threads

The run and the features go to runs/bench_eval_cost/ (git-ignored; --work-dir); a trained run and extracted
features already there are reused (delete them, or pass --fresh).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PRESET = "fashion-mnist-cpu"
STEPS = ("knn", "linear", "logreg")
TWO_THREAD_STEPS = ("knn", "linear")
ROWS = {
    "knn": "weighted kNN (3 searches: validation, test, test with the 60k bank)",
    "linear": "linear probe ({n} x {epochs} epochs of SGD)",
    "logreg": "logistic regression (lbfgs, standardised, warm-started C path)",
}
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load() -> list[float]:
    return list(os.getloadavg())


# ---------------------------------------------------------------------------------------------------------------
# One step, in its own process


def _settings(eval_kwargs: dict) -> dict:
    """The settings the JSON records (and the child processes use), from the evaluation's keyword arguments."""
    keys = ("knn_k", "knn_temperatures", "linear_epochs", "linear_lrs", "linear_batch_size", "linear_weight_decay")
    keys += ("linear_momentum", "linear_standardize", "logreg_cs", "logreg_max_iter")
    return {k: list(v) if isinstance(v, tuple) else v for k, v in eval_kwargs.items() if k in keys}


def run_step(step: str, features: Path, settings: dict, threads: int) -> dict:
    """Run one evaluation step on saved features in this process and measure it (the child side)."""
    from dotkernels_ssl.pretraining.evaluation import (
        FeatureSet,
        knn_protocol,
        linear_probe,
        logistic_regression_probe,
    )

    torch.set_num_threads(threads)
    feats = {k: FeatureSet(*v) for k, v in torch.load(features).items()}
    tr, va, te = feats["train"], feats["val"], feats["test"]
    num_classes = int(max(tr.labels.max(), va.labels.max(), te.labels.max())) + 1
    c0, t0, load0 = _cpu_s(), time.perf_counter(), _load()
    print(json.dumps({"ready_cpu_s": c0}), flush=True)  # read by the parent if it has to stop this step
    if step == "knn":
        r = knn_protocol(
            tr, va, te, ks=settings["knn_k"], temperatures=settings["knn_temperatures"], num_classes=num_classes
        )
        res = {"best_k": r["best_k"], "test_acc": r["test_acc"]}
    elif step in ("linear", "linear_before"):
        probe = {
            "lrs": settings["linear_lrs"],
            "epochs": settings["linear_epochs"],
            "batch_size": settings["linear_batch_size"],
            "weight_decay": settings["linear_weight_decay"],
            "momentum": settings["linear_momentum"],
            "num_classes": num_classes,
        }
        if step == "linear":
            r = linear_probe(tr, va, te, standardize=settings["linear_standardize"], **probe)
        else:
            r = linear_probe_before(tr, va, te, **probe)
        res = {"best_lr": r["best_lr"], "val": r["val"], "test_acc": r["test_acc"]}
    elif step == "logreg":
        r = logistic_regression_probe(tr, va, te, cs=settings["logreg_cs"], max_iter=settings["logreg_max_iter"])
        res = {k: r[k] for k in ("best_c", "val", "test_acc", "n_iter", "converged")}
    else:
        raise ValueError(f"step: expected one of {(*STEPS, 'linear_before')}, got {step!r}")
    out = {"cpu_s": _cpu_s() - c0, "wall_s": time.perf_counter() - t0, "load_before": load0, "load_after": _load()}
    return {**out, **res}


def linear_probe_before(
    train, val, test, *, lrs, epochs, batch_size, weight_decay, momentum, num_classes, seed: int = 0
) -> dict:
    """The linear probe as the library ran it before its steps were made cheaper (kept here to time it).

    The same protocol and the same arithmetic (standardisation with the training mean and standard deviation, SGD
    with momentum and weight decay, cosine rate, the same initialisation and shuffles), but the statistics computed
    again for every learning rate, every mini-batch standardised inside the probe's forward, and the steps run
    with the caller's torch threads.
    """
    import math

    import torch.nn.functional as F

    from dotkernels_ssl.pretraining.evaluation import LinearProbe

    x, y = train.features.float(), train.labels.long()

    def fit(lr: float) -> LinearProbe:
        mean = x.mean(dim=0)
        std = x.std(dim=0).clamp_min(1e-6)
        g = torch.Generator(device="cpu").manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            probe = LinearProbe(x.shape[1], num_classes, mean, std)
        opt = torch.optim.SGD(probe.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        n = x.shape[0]
        per_epoch = max(1, math.ceil(n / batch_size))
        total, step = epochs * per_epoch, 0
        probe.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=g)
            for b in range(per_epoch):
                idx = perm[b * batch_size : (b + 1) * batch_size]
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
                loss = F.cross_entropy(probe(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
        probe.eval()
        return probe

    best = None
    results = {}
    for lr in lrs:
        probe = fit(float(lr))
        acc = probe.accuracy(val.features, val.labels)
        results[str(float(lr))] = acc
        if best is None or acc > best[1]:
            best = (float(lr), acc, probe)
    return {"val": results, "best_lr": best[0], "test_acc": best[2].accuracy(test.features, test.labels)}


def compare_linear(features: Path, settings_file: Path, timeout: float) -> dict:
    """The linear probe before and after, each in a fresh process, with one then two threads (order alternated).

    A run still going after ``timeout`` seconds is stopped and recorded as unfinished (see :func:`time_step`).
    """
    out: dict = {}
    for threads in (1, 2):
        order = ("linear_before", "linear") if threads == 1 else ("linear", "linear_before")
        row = {}
        for step in order:
            row["before" if step == "linear_before" else "after"] = r = time_step(
                step, features, settings_file, threads=threads, timeout=timeout
            )
            print(step, threads, "thread(s):", json.dumps(r), flush=True)
        out[f"{threads}_thread{'s' * (threads > 1)}"] = row
    return out


def time_step(step: str, features: Path, settings_file: Path, threads: int, timeout: float | None = None) -> dict:
    """Time one step in a fresh process with ``threads`` threads; stop it after ``timeout`` seconds (the parent).

    A stopped step is recorded as ``unfinished_after_wall_s`` and ``cpu_s_at_least`` (the child's CPU seconds
    after loading the features, from its resource usage), with the load averages around it.
    """
    env = dict(os.environ, **{v: str(threads) for v in _THREAD_VARS})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-step", step, "--features", str(features)]
    cmd += ["--child-settings", str(settings_file), "--child-threads", str(threads)]
    load0, t0 = _load(), time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = None if timeout is None else t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            lines = [json.loads(s) for s in proc.stdout.read().splitlines() if s.startswith("{")]  # type: ignore[union-attr]
            proc.returncode = os.waitstatus_to_exitcode(status)
            ready = next((x["ready_cpu_s"] for x in lines if "ready_cpu_s" in x), None)
            # stopped before the step began (still loading): no CPU second of the step itself yet
            cpu = 0.0 if ready is None else usage.ru_utime + usage.ru_stime - ready
            return {"unfinished_after_wall_s": wall, "cpu_s_at_least": cpu, "load_before": load0, "load_after": _load()}
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = proc.stdout.read()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"step {step} with {threads} thread(s) failed (exit {proc.returncode})")
    return json.loads(text.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# Run, features


def train_run(work: Path, limit: int, epochs: int, threads: int) -> Path:
    """Train the preset's SFRIK for ``epochs`` on the first ``limit`` images (reused when complete)."""
    out = (work / "run").resolve()
    if (out / "last.pt").exists():
        print(f"reusing the run in {out}", flush=True)
        return out / "last.pt"
    cmd = [sys.executable, "-m", "dotkernels_ssl.pretrain", "--preset", PRESET, "--method", "sfrik"]
    cmd += ["--out", str(out), "--epochs", str(epochs), "--limit", str(limit), "--threads", str(threads)]
    cmd += ["--eval-every", "0", "--no-final-eval", "--no-tensorboard", "--quiet"]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return out / "last.pt"


def extract(checkpoint: Path, features: Path, threads: int) -> tuple[dict, dict]:
    """Features of the full splits with the checkpoint's backbone, saved to ``features``; (settings, timing)."""
    from dotkernels_ssl.pretraining.checkpoint import load_checkpoint
    from dotkernels_ssl.pretraining.config import config_from_dict
    from dotkernels_ssl.pretraining.evaluation import _eval_kwargs, extract_features, load_eval_splits
    from dotkernels_ssl.pretraining.models import build_model

    state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"])
    info = {"limit": cfg.data.limit, "epochs": int(state["epoch"]), "method": cfg.loss.method}
    info["eval_limit"] = cfg.data.eval_limit
    settings = _settings(_eval_kwargs(cfg.eval))
    if features.exists():
        print(f"reusing the features in {features}", flush=True)
        return settings, {"extract_wall_s": None, **info}
    torch.set_num_threads(threads)
    load0, t0 = _load(), time.perf_counter()
    splits = load_eval_splits(cfg)
    train = splits["train"]
    model = build_model(cfg, in_channels=train.in_channels, image_size=cfg.data.crop_size or train.image_size)
    model.load_state_dict(state["model"])
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    feats = {
        name: extract_features(
            model.backbone,
            data,
            batch_size=cfg.eval.batch_size,
            size=cfg.data.crop_size,
            channels_last=cfg.run.channels_last,
        )
        for name, data in splits.items()
    }
    wall = time.perf_counter() - t0
    features.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: (v.features, v.labels) for k, v in feats.items()}, features)
    return settings, {"extract_wall_s": wall, "extract_load": [load0, _load()], **info}


def synthetic_features(path: Path, n: tuple[int, int, int] = (600, 200, 200), dim: int = 32, seed: int = 0) -> dict:
    """Tiny Gaussian-mixture features (10 classes) for ``--quick``; quick settings for the three steps."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(10, dim, generator=g)
    feats = {}
    for name, m in zip(("train", "val", "test"), n):
        labels = torch.arange(m) % 10
        feats[name] = (centres[labels] + torch.randn(m, dim, generator=g), labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(feats, path)
    return {
        "knn_k": [10, 20],
        "knn_temperatures": [0.07],
        "linear_epochs": 2,
        "linear_lrs": [0.05, 0.2],
        "linear_batch_size": 64,
        "linear_weight_decay": 1e-6,
        "linear_momentum": 0.9,
        "linear_standardize": True,
        "logreg_cs": [0.1, 1.0],
        "logreg_max_iter": 200,
    }


# ---------------------------------------------------------------------------------------------------------------
# Report


def markdown(result: dict) -> str:
    """The README's table of the one-thread timings."""
    one, s = result["one_thread"], result["settings"]
    lines = ["| step | CPU s, one thread | wall s under load | result |", "|---|---:|---:|---|"]
    for step in STEPS:
        r = one[step]
        label = ROWS[step].format(n=len(s["linear_lrs"]), epochs=s["linear_epochs"])
        acc = f"{100 * r['test_acc']:.2f} %"
        if step == "knn":
            note = f"k = {r['best_k']} chosen, {acc}" if "best_k" in r else acc
        elif step == "linear":
            note = acc
        else:
            iters = " + ".join(str(i) for i in r["n_iter"])
            note = f"{iters} iterations, {'converged' if r['converged'] else 'not converged'}; C = {r['best_c']}, {acc}"
        lines.append(f"| {label} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | {note} |")
    return "\n".join(lines)


def compare_markdown(cmp: dict) -> str:
    """The table of ``--compare-linear``: CPU and wall seconds and the test accuracy, before and after."""

    def cell(r: dict) -> str:
        if "unfinished_after_wall_s" in r:
            return f"> {r['cpu_s_at_least']:.0f} | unfinished after {r['unfinished_after_wall_s']:.0f} | -"
        return f"{r['cpu_s']:.0f} | {r['wall_s']:.0f} | {100 * r['test_acc']:.2f} % (lr {r['best_lr']})"

    lines = ["| linear probe | threads | CPU s | wall s under load | test accuracy |", "|---|---:|---:|---:|---|"]
    for key in ("1_thread", "2_threads"):
        for when in ("before", "after"):
            lines.append(f"| {when} | {key[0]} | {cell(cmp[key][when])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="an existing run folder (its last.pt) or checkpoint file instead of training")
    p.add_argument("--quick", action="store_true", help="tiny synthetic features and settings (a check that it runs)")
    p.add_argument("--limit", type=int, default=10240, help="images of the training run (default 10240)")
    p.add_argument("--epochs", type=int, default=1, help="epochs of the training run (default 1)")
    p.add_argument("--train-threads", type=int, default=2, help="torch threads of the training run")
    p.add_argument("--extract-threads", type=int, default=2, help="torch threads of the feature extraction")
    p.add_argument("--two-thread-timeout", type=float, default=900.0, help="stop a two-thread step after N s")
    p.add_argument("--skip-two-threads", action="store_true", help="time the steps on one thread only")
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps to time (default all three)")
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "bench_eval_cost"), help="run and features folder")
    p.add_argument("--fresh", action="store_true", help="retrain and re-extract even if the work folder has them")
    p.add_argument("--note", default="shared dev CPU under load from other jobs", help="machine note in the JSON")
    p.add_argument("--out", help="JSON output (default benchmarks/results/eval_cost.json; none with --quick)")
    p.add_argument(
        "--compare-linear",
        action="store_true",
        help="time the linear probe before and after its steps were made cheaper (1 and 2 threads; the other steps "
        "are not timed) and write --out (default benchmarks/results/eval_cost_linear.json)",
    )
    p.add_argument("--compare-timeout", type=float, default=600.0, help="stop a --compare-linear run after N s")
    p.add_argument("--child-step", help=argparse.SUPPRESS)
    p.add_argument("--features", help=argparse.SUPPRESS)
    p.add_argument("--child-settings", help=argparse.SUPPRESS)
    p.add_argument("--child-threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child_step:
        settings = json.loads(Path(args.child_settings).read_text())
        print(json.dumps(run_step(args.child_step, Path(args.features), settings, args.child_threads)), flush=True)
        return 0

    steps = [s for s in args.steps.split(",") if s]
    if not steps or any(s not in STEPS for s in steps):
        p.error(f"--steps: expected a comma-separated subset of {','.join(STEPS)}, got {args.steps!r}")
    work = Path(args.work_dir)
    if args.quick:
        work = work / "quick"
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    features = work / "features.pt"
    if args.quick:
        settings = synthetic_features(features)
        info = {"extract_wall_s": None}
        what = "the final evaluation's steps on tiny synthetic features (--quick: a check that the benchmark runs)"
    else:
        if args.run is not None:
            checkpoint = Path(args.run)
            checkpoint = checkpoint / "last.pt" if checkpoint.is_dir() else checkpoint
            features = work / f"features-{checkpoint.resolve().parent.name}-{checkpoint.stem}.pt"
        else:
            checkpoint = train_run(work, args.limit, args.epochs, args.train_threads)
        settings, info = extract(checkpoint, features, args.extract_threads)
        lim, ev, ep = info["limit"], info["eval_limit"], info["epochs"]
        images = "all images" if lim is None else f"the first {lim} images"
        splits = "the full splits" if ev is None else f"the first {ev} images of each split"
        what = (
            f"the final evaluation's steps on the features of a {PRESET} {info['method'].upper()} backbone trained "
            f"{ep} epoch{'s' * (ep != 1)} on {images}; evaluation on {splits}"
        )
    settings_file = work / "settings.json"
    settings_file.write_text(json.dumps(settings))
    shapes = {k: list(v[0].shape) for k, v in torch.load(features).items()}

    results = ROOT / "benchmarks" / "results"
    if args.compare_linear:
        out = args.out or (None if args.quick else str(results / "eval_cost_linear.json"))
        load0 = _load()
        cmp = {
            "what": what,
            "features": shapes,
            "settings": settings,
            "machine": {"cpu_count": os.cpu_count(), "note": args.note},
            **compare_linear(features, settings_file, args.compare_timeout),
            "load_at_start": load0,
            "load_at_end": _load(),
        }
        print(compare_markdown(cmp))
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(cmp, indent=2) + "\n")
            print(f"wrote {out}")
        return 0
    out = args.out or (None if args.quick else str(results / "eval_cost.json"))

    result: dict = {
        "what": what,
        "features": shapes,
        "settings": settings,
        "machine": {"cpu_count": os.cpu_count(), "note": args.note},
        "one_thread": {},
    }
    for step in steps:
        result["one_thread"][step] = time_step(step, features, settings_file, threads=1)
        print(step, "one thread:", json.dumps(result["one_thread"][step]), flush=True)
    if not args.skip_two_threads:
        two: dict = {"extract_wall_s": info["extract_wall_s"]}
        for step in (s for s in TWO_THREAD_STEPS if s in steps):
            two[step] = time_step(step, features, settings_file, threads=2, timeout=args.two_thread_timeout)
            print(step, "two threads:", json.dumps(two[step]), flush=True)
        result["two_threads"] = two

    if all(s in result["one_thread"] for s in STEPS):
        print(markdown(result))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
