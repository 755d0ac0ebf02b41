"""Pretraining on Fashion-MNIST on this CPU: SFRIK against AUH, VICReg, Barlow Twins and SimCLR.

Every method is pretrained with the same ``fashion-mnist-cpu`` preset (ConvNet backbone, projector, batch,
epochs, "small" augmentations, LARS), each in its own process (``python -m dotkernels_ssl.pretrain``), then
evaluated on frozen features (weighted 20-NN and linear probe; hyper-parameters chosen on the validation split
carved from the training set, accuracies on the official test set). Reported per method: linear-probe, logistic
regression and 20-NN test accuracy, the training step's throughput (images/s, every method timed side by side in
one process: the runs' own images/s depend on what shared the cores with them) and the run's peak resident memory.
The reference row is the weighted 20-NN on raw pixels (cosine, T = 0.07; 84.6% with the 60 000 training images
as the bank).

It also compares the training loop's throughput (in-memory batches, kornia augmentations run batched with
per-sample parameters) with a plain loop over a DataLoader whose Dataset applies torchvision transforms image by
image, for the same model, loss and batch, and splits each method's training step into its parts (model forward,
the loss's forward and backward, model backward, optimiser step; drawing the views apart): the loss's share.

    python benchmarks/bench_pretrain.py                          # the full benchmark (hours on 2 cores)
    python benchmarks/bench_pretrain.py --epochs 1 --subset 2000 # a quick check that everything runs
    python benchmarks/bench_pretrain.py --methods sfrik --seeds 3 --skip-throughput --skip-pixels \
        --out benchmarks/results/pretrain_sfrik_seeds.json      # seeds 0, 1, 2: mean and sd of the accuracies
    python benchmarks/bench_pretrain.py --throughput-only --out benchmarks/results/pretrain_throughput.json
                                                                 # images/s and the loss's share of a step
    python benchmarks/bench_pretrain.py --settings-only --out benchmarks/results/pretrain_throughput_settings.json
                                                                 # the SFRIK step in fp32/bf16, channels-last, compile

Runs go to runs/bench_pretrain/<method>/ and <method>-seed<s>/ (git-ignored; --runs-dir), two at a time with
one torch thread each (--jobs, --threads: on a shared 2-core machine one thread per process is several times faster
than two threads fighting for a busy core). Writes benchmarks/results/pretrain.json and prints a markdown table.
A run folder that already holds a complete run made by the same command and configuration is not retrained
(delete it, or pass --fresh); when only the evaluation's settings (or the monitors' frequency, which does not change
the training) differ, its last checkpoint is evaluated again with today's settings instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("sfrik", "auh", "vicreg", "barlow", "simclr")
NAMES = {"sfrik": "SFRIK", "auh": "AUH", "vicreg": "VICReg", "barlow": "Barlow Twins", "simclr": "SimCLR"}
PRESET = "fashion-mnist-cpu"


def _run_name(method: str, seed: int) -> str:
    """Run folder of one method and seed: seed 0 (the preset's) keeps the plain method name."""
    return method if seed == 0 else f"{method}-seed{seed}"


def _command(method: str, seed: int, args: argparse.Namespace, runs_dir: Path) -> list[str]:
    # absolute: the child runs in the repository root, and the reuse stamp must not depend on the caller's cwd
    out = Path(runs_dir).resolve() / _run_name(method, seed)
    cmd = [sys.executable, "-m", "dotkernels_ssl.pretrain", "--preset", PRESET, "--method", method, "--out", str(out)]
    cmd += ["--quiet", "--threads", str(args.threads)]
    if seed != 0:
        cmd += ["--seed", str(seed)]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if args.subset is not None:
        cmd += ["--limit", str(args.subset)]
    if args.data_dir is not None:
        cmd += ["--data-dir", args.data_dir]
    return cmd + args.extra


def _stamp(cmd: list[str]) -> dict:
    """What makes a finished run reusable: its command line and the configuration it resolves to today.

    The resolved configuration catches a changed preset, which the command line alone does not show. The thread
    count is left out: it changes the speed and the rounding of a run, not its recipe, so a run made with
    ``--jobs 1 --threads 2`` (timed alone) joins later seeds made one thread each.
    """
    from dotkernels_ssl.pretraining.config import config_to_dict, parse_config

    i = cmd.index("--threads")
    cmd = cmd[:i] + cmd[i + 2 :]
    resolved = config_to_dict(parse_config(cmd[cmd.index("--preset") :]))
    resolved["run"].pop("threads", None)
    return json.loads(json.dumps({"command": cmd, "config": resolved}, default=str))


def _recipe(stamp: dict) -> dict:
    """The part of a stamp that decides the trained weights: the resolved configuration, less two parts.

    Left out: the evaluation's settings (a finished run is evaluated again, not retrained) and the monitors'
    frequency ``run.eval_every`` (the monitors do not change the training:
    ``tests/test_train.py::test_monitors_do_not_change_the_training``). The command line is left out too: the
    configuration it resolves to holds all of it that matters.
    """
    config = {k: v for k, v in stamp["config"].items() if k != "eval"}
    config["run"] = {k: v for k, v in config.get("run", {}).items() if k != "eval_every"}
    return config


def reevaluate(out: Path, stamp: dict, threads: int) -> float:
    """Evaluate a finished run's last checkpoint with the evaluation settings of ``stamp``; rewrite its eval.json.

    The training record (``train``, the run's settings) is kept; ``eval`` is replaced and ``eval_seconds`` is the
    new evaluation's time (features, kNN, probes), with ``reevaluated`` recording the settings. Returns the seconds.
    """
    from dotkernels_ssl.pretraining.evaluation import evaluate_checkpoint, write_json

    torch.set_num_threads(threads)
    overrides = {f"eval.{k}": v for k, v in stamp["config"]["eval"].items()}
    t0 = time.perf_counter()
    result = evaluate_checkpoint(run=out, overrides=overrides, device="cpu")
    seconds = time.perf_counter() - t0
    summary = json.loads((out / "eval.json").read_text())
    summary["eval"] = {k: v for k, v in result.items() if k not in ("checkpoint", "epoch", "method")}
    summary["eval_seconds"] = seconds
    summary["reevaluated"] = {"eval_settings": stamp["config"]["eval"], "threads": threads}
    write_json(summary, out / "eval.json")
    return seconds


def run_methods(methods: list[str], args: argparse.Namespace, runs_dir: Path) -> dict[str, dict]:
    """Pretrain and evaluate each method (and seed) in a child process, ``args.jobs`` at a time; summarise them.

    A run folder that holds a complete run made by the same command and configuration is reused (unless
    ``--fresh``). The peak resident memory of each child comes from ``os.wait4``. Each method's summary is that of
    its seed-0 run, with ``seeds`` (every seed's summary) and the mean and sample standard deviation of the
    accuracies over seeds when there are several.
    """
    todo: list[tuple[str, list[str]]] = []
    measured: dict[str, tuple[float, float]] = {}
    for m in methods:
        for seed in range(args.seeds):
            name, cmd = _run_name(m, seed), _command(m, seed, args, runs_dir)
            out = runs_dir / name
            # beside the run folder, not in it: pretraining refuses an --out that holds files of its own
            stamp, expected = runs_dir / f"{name}.bench_command.json", _stamp(cmd)
            stored = json.loads(stamp.read_text()) if stamp.is_file() else None
            if out.exists() and (args.fresh or stored is None or _recipe(stored) != _recipe(expected)):
                shutil.rmtree(out)
            if not (out / "eval.json").is_file():
                runs_dir.mkdir(parents=True, exist_ok=True)
                stamp.write_text(json.dumps(expected, indent=1))
                todo.append((name, cmd))
            elif stored != expected:
                # the same recipe: evaluate again only if the evaluation's settings changed (minutes), else restamp
                if stored["config"].get("eval") != expected["config"]["eval"]:
                    print(
                        f"[{name}] trained with the same recipe: evaluating its checkpoint with today's settings",
                        flush=True,
                    )
                    print(f"[{name}] evaluated in {reevaluate(out, expected, args.threads):.0f} s", flush=True)
                stamp.write_text(json.dumps(expected, indent=1))
    running: dict[int, tuple[str, float]] = {}
    while todo or running:
        while todo and len(running) < args.jobs:
            name, cmd = todo.pop(0)
            print(f"[{name}] {' '.join(cmd)}", flush=True)
            proc = subprocess.Popen(cmd, cwd=ROOT)
            running[proc.pid] = (name, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        name, t0 = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"[{name}] pretraining failed with exit status {code}")
        measured[name] = (time.perf_counter() - t0, usage.ru_maxrss / 1024.0)
        print(f"[{name}] done in {measured[name][0]:.0f} s", flush=True)
    summaries = {}
    for m in methods:
        runs = [
            {**_summary(m, runs_dir / _run_name(m, s), *measured.get(_run_name(m, s), (None, None))), "seed": s}
            for s in range(args.seeds)
        ]
        summaries[m] = {**runs[0], **_over_seeds(runs)} if len(runs) > 1 else runs[0]
    return summaries


def _over_seeds(runs: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every accuracy of the summaries."""
    import statistics

    out: dict = {"seeds": runs}
    for key in ("knn20_test", "knn20_test_bank_trainval", "linear_test", "linear_test_refit_trainval", "logreg_test"):
        values = [r[key] for r in runs if r.get(key) is not None]
        if len(values) > 1:
            out[f"{key}_mean"], out[f"{key}_sd"] = statistics.fmean(values), statistics.stdev(values)
    return out


def _summary(method: str, out: Path, wall: float | None, peak_rss_mb: float | None) -> dict:
    summary = json.loads((out / "eval.json").read_text())
    ev, tr = summary["eval"], summary["train"]
    return {
        "method": method,
        "run": str(out),
        "epochs": summary["epochs"],
        "knn20_test": ev["knn"]["test"].get("20"),
        "knn20_test_bank_trainval": ev["knn"].get("test_bank_trainval", {}).get("20"),
        "knn_test": ev["knn"]["test"],
        "knn_best_k": ev["knn"]["best_k"],
        "knn_val": ev["knn"]["val"],
        "knn_temperature": ev["knn"].get("temperature"),
        "linear_test": ev["linear"]["test_acc"] if "linear" in ev else None,
        # the probe refitted on train + val at the chosen lr (older runs did not refit)
        "linear_test_refit_trainval": ev["linear"].get("test_acc_refit_trainval") if "linear" in ev else None,
        "linear_val": ev["linear"]["val_acc"] if "linear" in ev else None,
        "linear_lr": ev["linear"]["best_lr"] if "linear" in ev else None,
        "logreg_test": ev["logreg"]["test_acc"] if "logreg" in ev else None,
        # whether lbfgs reached the optimum (older runs stopped at 100 iterations and did not record it)
        "logreg_converged": ev["logreg"].get("converged") if "logreg" in ev else None,
        "logreg_n_iter": ev["logreg"].get("n_iter") if "logreg" in ev else None,
        "eval_seconds": summary.get("eval_seconds"),
        "images_per_s": tr["images_per_s"],
        "epoch_seconds": tr["epoch_seconds"],
        "train_seconds": tr["train_seconds"],
        "peak_rss_mb": peak_rss_mb if peak_rss_mb is not None else tr["peak_rss_mb"],
        "wall_seconds": wall,
        "last_epoch_monitors": {
            k: tr["last_epoch"].get(k) for k in ("knn_val", "mmd2_uniform", "effective_rank", "rayleigh_z")
        },
        "kernel": summary.get("kernel"),
        "loss_options": summary["loss_options"],
    }


def pixel_baseline(data_dir: str | None) -> dict:
    """Weighted 20-NN on raw pixels (values in [0, 1], cosine, T = 0.07; 84.6% with the 60 000 training images)."""
    from dotkernels_ssl.pretraining.data import load_dataset
    from dotkernels_ssl.pretraining.evaluation import knn_accuracy, pixel_features

    test = pixel_features(load_dataset("fashion-mnist", "test", data_dir), mean=(0.0,), std=(1.0,))
    out = {}
    for split in ("train", "trainval"):
        bank = pixel_features(load_dataset("fashion-mnist", split, data_dir), mean=(0.0,), std=(1.0,))
        out[f"knn20_test_bank_{split}"] = knn_accuracy(bank.features, bank.labels, test.features, test.labels, 20)
    return out


def pixel_protocol(data_dir: str | None) -> dict:
    """Raw pixels through the runs' kNN protocol: k and T chosen on the validation split, as for the features.

    The preset's ``eval.knn_k`` and ``eval.knn_temperatures``; the result is :func:`knn_protocol`'s, with the
    20-NN test accuracies (bank: the training split, then train + val) under the keys of :func:`pixel_baseline`.
    """
    from dotkernels_ssl.pretraining.config import parse_config
    from dotkernels_ssl.pretraining.data import load_dataset
    from dotkernels_ssl.pretraining.evaluation import knn_protocol, pixel_features

    cfg = parse_config(["--preset", PRESET])
    splits = {s: load_dataset("fashion-mnist", s, data_dir) for s in ("train", "val", "test")}
    feats = {s: pixel_features(d, mean=(0.0,), std=(1.0,)) for s, d in splits.items()}
    knn = knn_protocol(
        feats["train"], feats["val"], feats["test"], ks=cfg.eval.knn_k, temperatures=cfg.eval.knn_temperatures
    )
    bank20 = {"knn20_test_bank_train": knn["test"]["20"], "knn20_test_bank_trainval": knn["test_bank_trainval"]["20"]}
    return {**bank20, "knn": knn}


def step_parts(model: torch.nn.Module, loss_fn, opt: torch.optim.Optimizer, views: list[torch.Tensor]) -> dict:
    """One training step (forward, loss, backward, optimiser step) timed in parts; the same update as one backward.

    The loss is evaluated on detached copies of the embeddings, its backward stops there, and the embeddings'
    gradients are then propagated through the model: the parameters receive exactly the gradients of
    ``loss.backward()`` through the whole graph, and the loss's own forward and backward are timed apart from
    the model's. Returns the seconds of ``forward`` (the model), ``loss`` (the loss's forward and backward to
    the embeddings), ``backward`` (the model's) and ``optimizer`` (zeroing the gradients and the step).
    """
    clock = time.perf_counter
    t0 = clock()
    z = [model(v)[1] for v in views]
    t1 = clock()
    zd = [e.detach().requires_grad_(True) for e in z]
    loss = loss_fn.forward_terms(zd).loss
    loss.backward()
    t2 = clock()
    opt.zero_grad(set_to_none=True)
    torch.autograd.backward(z, [e.grad for e in zd])
    t3 = clock()
    opt.step()
    t4 = clock()
    return {"forward": t1 - t0, "loss": t2 - t1, "backward": t3 - t2, "optimizer": t4 - t3}


def time_loop(batches, step, steps: int, batch_size: int) -> dict:
    """Images/s of ``steps`` iterations of a training loop, and the share of an iteration spent in the loss.

    ``batches`` yields each step's views (drawing them, e.g. the augmentations, counts as the loop's ``data``
    time); ``step(views)`` returns its parts' seconds (:func:`step_parts`). One warm-up step is not timed.
    ``loss_share`` is the loss's forward and backward over the whole iteration (data included),
    ``loss_share_of_step`` over the step alone (data excluded).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    it = iter(batches)
    step(next(it))  # warm-up
    totals: dict[str, float] = {"data": 0.0}
    t_start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        views = next(it)
        totals["data"] += time.perf_counter() - t0
        for key, sec in step(views).items():
            totals[key] = totals.get(key, 0.0) + sec
    wall = time.perf_counter() - t_start
    step_s = sum(v for k, v in totals.items() if k != "data")
    return {
        "images_per_s": steps * batch_size / wall,
        "seconds_per_step": {k: v / steps for k, v in totals.items()},
        "loss_share": totals["loss"] / wall,
        "loss_share_of_step": totals["loss"] / step_s,
    }


def throughput(args: argparse.Namespace) -> dict:
    """Images/s of the loop's data path against per-image torchvision transforms in a DataLoader."""
    from torchvision.transforms import v2 as T

    from dotkernels_ssl.pretraining.augment import build_augment
    from dotkernels_ssl.pretraining.config import build_config
    from dotkernels_ssl.pretraining.data import InMemoryLoader, load_dataset
    from dotkernels_ssl.pretraining.loop import build_loss_from_config
    from dotkernels_ssl.pretraining.models import build_model
    from dotkernels_ssl.pretraining.optim import build_optimizer

    torch.set_num_threads(args.threads)
    cfg = build_config(PRESET, {"loss.method": "sfrik"})
    data = load_dataset("fashion-mnist", "train", args.data_dir, limit=args.throughput_images)
    batch = cfg.optim.batch_size
    steps = args.throughput_steps
    torch.manual_seed(0)
    model = build_model(cfg, in_channels=1, image_size=data.image_size)
    memory_format = torch.channels_last if cfg.run.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    current_loss = [build_loss_from_config(cfg)]
    opt = build_optimizer(cfg, model)
    for g in opt.param_groups:
        g["lr"] = 0.01

    def step(views: list[torch.Tensor]) -> dict[str, float]:
        return step_parts(model, current_loss[0], opt, [v.contiguous(memory_format=memory_format) for v in views])

    def timed(batches) -> float:
        return time_loop(batches, step, steps, batch)["images_per_s"]

    augment = build_augment(cfg, data.mean, data.std, data.image_size)
    loader = InMemoryLoader(data, batch, shuffle=True, seed=0)

    def batched():
        while True:
            for x, _ in loader:
                with torch.no_grad():
                    views = list(augment(x))
                yield views  # outside no_grad: a generator suspended inside it would disable the caller's autograd

    result = {"batch_size": batch, "steps": steps, "loop_batched_kornia": timed(batched())}
    # Every method's training step side by side in this one process (the runs' own images/s depend on what
    # shared the cores with them).
    per_method, parts = {}, {}
    for m in METHODS:
        current_loss[0] = build_loss_from_config(build_config(PRESET, {"loss.method": m}))
        parts[m] = time_loop(batched(), step, steps, batch)
        per_method[m] = parts[m]["images_per_s"]
    current_loss[0] = build_loss_from_config(cfg)
    result["methods_loop_images_per_s"] = per_method
    result["methods_step_parts"] = parts
    if args.throughput_only:
        return result

    scale = tuple(cfg.data.crop_scale or (0.08, 1.0))
    common = [T.RandomResizedCrop(28, scale=scale, antialias=True), T.RandomHorizontalFlip()]
    jitter = T.RandomApply([T.ColorJitter(0.4, 0.4)], p=0.8)  # grayscale: brightness and contrast only
    tail = [T.ToDtype(torch.float32, scale=True)]
    norm = T.Normalize(data.mean, data.std)
    view1 = T.Compose([*common, jitter, *tail, norm])
    view2 = T.Compose([*common, jitter, T.RandomSolarize(128, p=0.2), *tail, norm])

    class PerImage(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, i: int):
            img = data.images[i]
            return view1(img), view2(img)

    for workers in args.loader_workers:
        dl = torch.utils.data.DataLoader(
            PerImage(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=False
        )

        def per_image(dl=dl):
            while True:
                for v1, v2 in dl:
                    yield [v1, v2]

        result[f"plain_dataloader_torchvision_workers{workers}"] = timed(per_image())
    return result


def parse_setting(name: str) -> dict:
    """A training-step setting of :func:`step_settings`: ``fp32`` or ``bf16``, then ``-nchw`` and/or ``-compile``.

    ``fp32`` is the loop without autocast, ``bf16`` the forward under ``torch.autocast("cpu", torch.bfloat16)``
    (``run.amp bf16``); channels-last is on unless ``-nchw``; ``-compile`` wraps the views' forward in
    ``torch.compile`` (``run.compile``).
    """
    precision, *flags = name.split("-")
    if (
        precision not in ("fp32", "bf16")
        or any(f not in ("nchw", "compile") for f in flags)
        or len(set(flags)) < len(flags)
    ):
        raise ValueError(f"setting {name!r}: expected fp32 or bf16, optionally followed by -nchw and/or -compile")
    return {
        "amp": torch.bfloat16 if precision == "bf16" else None,
        "channels_last": "nchw" not in flags,
        "compile": "compile" in flags,
    }


def step_settings(args: argparse.Namespace) -> dict:
    """Images/s of the SFRIK training step under each setting (precision, memory format, compile), side by side.

    For each thread count of ``args.step_threads``: one model per setting, all with the same initial weights, the
    same pre-drawn batches of views (augmentations excluded: they are the same for every setting), the loop's step
    (forward of the views under autocast, the loss outside it, backward, LARS step). Every setting first takes
    ``args.step_warmup`` untimed steps (torch.compile compiles there); then the timed steps go round the settings
    (the order rotated each round), so that a changing load of the machine falls on every setting alike. The
    first warm-up step starts from the same weights and batch in every setting: its loss and gradients, against
    those of ``fp32``, measure each setting's rounding (``fp32-nchw``'s: float32's own, from another order of
    the sums). The embeddings' and the loss's dtypes
    are recorded (the loss is computed in float32 under autocast).
    """
    import copy
    import statistics

    from dotkernels_ssl.pretraining.augment import build_augment
    from dotkernels_ssl.pretraining.config import build_config
    from dotkernels_ssl.pretraining.data import InMemoryLoader, load_dataset
    from dotkernels_ssl.pretraining.loop import build_loss_from_config
    from dotkernels_ssl.pretraining.models import ViewsForward, build_model
    from dotkernels_ssl.pretraining.optim import build_optimizer

    cfg = build_config(PRESET, {"loss.method": "sfrik"})
    batch, warm, steps = cfg.optim.batch_size, args.step_warmup, args.throughput_steps
    settings = {name: parse_setting(name) for name in args.step_settings}
    data = load_dataset("fashion-mnist", "train", args.data_dir, limit=max(batch * (warm + steps), batch))
    torch.manual_seed(0)
    augment = build_augment(cfg, data.mean, data.std, data.image_size)
    loader = InMemoryLoader(data, batch, shuffle=True, seed=0)
    batches = []
    with torch.no_grad():
        while len(batches) < warm + steps:
            for x, _ in loader:
                batches.append(list(augment(x)))
                if len(batches) == warm + steps:
                    break
    base = build_model(cfg, in_channels=1, image_size=data.image_size)
    loss_fn = build_loss_from_config(cfg)
    out: dict = {"batch_size": batch, "warmup_steps": warm, "steps": steps, "threads": {}}
    for threads in args.step_threads:
        torch.set_num_threads(threads)
        runs = {}
        for name, s in settings.items():
            fmt = torch.channels_last if s["channels_last"] else torch.contiguous_format
            model = copy.deepcopy(base).to(memory_format=fmt)
            opt = build_optimizer(cfg, model)
            for g in opt.param_groups:
                g["lr"] = 0.01
            forward = ViewsForward(model, cfg.model.concat_views)
            runs[name] = {"model": model, "opt": opt, "forward": torch.compile(forward) if s["compile"] else forward}
            runs[name].update(fmt=fmt, amp=s["amp"], seconds=[], losses=[])

        def step(r: dict, views: list[torch.Tensor], keep: bool = False) -> float:
            t0 = time.perf_counter()
            views = [v.contiguous(memory_format=r["fmt"]) for v in views]
            with torch.autocast("cpu", dtype=r["amp"] or torch.float32, enabled=r["amp"] is not None):
                embs = r["forward"](views)
            res = loss_fn.forward_terms(embs)
            r["opt"].zero_grad(set_to_none=True)
            res.loss.backward()
            if keep:
                r["first"] = {
                    "loss": float(res.loss.detach()),
                    "embedding_dtype": str(embs[0].dtype).replace("torch.", ""),
                    "loss_dtype": str(res.loss.dtype).replace("torch.", ""),
                    "grads": [p.grad.detach().float().clone() for p in r["model"].parameters()],
                }
            r["opt"].step()
            r["losses"].append(float(res.loss.detach()))
            return time.perf_counter() - t0

        for r in runs.values():
            t0 = time.perf_counter()
            for i in range(warm):
                step(r, batches[i], keep=i == 0)
            r["warmup_seconds"] = time.perf_counter() - t0
        names = list(runs)
        for i in range(steps):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                runs[name]["seconds"].append(step(runs[name], batches[warm + i]))
        table = {}
        for name, r in runs.items():
            ref = runs.get("fp32")
            row = {
                "images_per_s": batch * len(r["seconds"]) / sum(r["seconds"]),
                "median_seconds_per_step": statistics.median(r["seconds"]),
                "seconds_per_step": r["seconds"],
                "warmup_seconds": r["warmup_seconds"],
                "embedding_dtype": r["first"]["embedding_dtype"],
                "loss_dtype": r["first"]["loss_dtype"],
                "first_loss": r["first"]["loss"],
                "losses": r["losses"],
            }
            if ref is not None:
                num = sum(float((g - h).pow(2).sum()) for g, h in zip(r["first"]["grads"], ref["first"]["grads"]))
                den = sum(float(h.pow(2).sum()) for h in ref["first"]["grads"])
                row["first_loss_rel_diff"] = abs(r["first"]["loss"] - ref["first"]["loss"]) / abs(ref["first"]["loss"])
                row["first_grad_rel_diff"] = (num / den) ** 0.5
            table[name] = row
        out["threads"][str(threads)] = table
    return out


def compare_runs(reference: Path, other: Path) -> dict:
    """Two finished runs of the same recipe and seed side by side (e.g. ``--amp off`` and ``--amp bf16``).

    From their ``metrics_step.csv`` and ``metrics_epoch.csv``: the largest relative difference of the step losses,
    and the last epoch's loss, validation kNN accuracy, uniformity monitors and images/s of each.
    """
    import csv

    def rows(path: Path) -> list[dict]:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    steps = [rows(Path(r) / "metrics_step.csv") for r in (reference, other)]
    if [r["step"] for r in steps[0]] != [r["step"] for r in steps[1]]:
        raise ValueError(f"{reference} and {other} logged different steps")
    diffs = [abs(float(a["loss"]) - float(b["loss"])) / abs(float(a["loss"])) for a, b in zip(*steps)]
    keys = ("loss", "knn_val", "mmd2_uniform", "effective_rank", "images_per_s", "epoch_seconds")
    last = [rows(Path(r) / "metrics_epoch.csv")[-1] for r in (reference, other)]
    return {
        "runs": [str(reference), str(other)],
        "steps": len(diffs),
        "max_step_loss_rel_diff": max(diffs),
        "last_epoch": [{k: float(e[k]) for k in keys if e.get(k) not in (None, "")} for e in last],
    }


def settings_markdown(result: dict) -> str:
    """The table of :func:`step_settings`: images/s per setting and thread count, speed-up over fp32, rounding."""
    threads = list(result["threads"])
    names = list(result["threads"][threads[0]])
    head = " | ".join(f"{t} thread{'s' if t != '1' else ''}: images/s (x fp32)" for t in threads)
    lines = [
        f"| setting | {head} | loss rel. diff. (step 1) | gradient rel. diff. (step 1) |",
        "|---|" + "---:|" * len(threads) + "---:|---:|",
    ]
    for name in names:
        cells = []
        for t in threads:
            row, ref = result["threads"][t][name], result["threads"][t].get("fp32")
            speed = f" ({row['images_per_s'] / ref['images_per_s']:.2f})" if ref is not None else ""
            cells.append(f"{row['images_per_s']:.0f}{speed}")
        first = result["threads"][threads[0]][name]
        diffs = [f"{first[k]:.1e}" if k in first else "-" for k in ("first_loss_rel_diff", "first_grad_rel_diff")]
        lines.append(f"| {name} | {' | '.join(cells)} | {' | '.join(diffs)} |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    lines = [
        "| method | linear probe (test) | logistic regression (test) | 20-NN (test; bank: train split / all 60k) "
        "| images/s (side by side) | s/epoch (run) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    def acc(m, key):
        """The seed-0 accuracy, or mean ± sd over seeds."""
        if f"{key}_mean" in m:
            return f"{pct(m[key + '_mean'])} ± {100 * m[key + '_sd']:.2f}"
        return pct(m.get(key))

    def linear(m):
        """The probe fitted on the training split, then (when the run refitted it) on train + val."""
        if m.get("linear_test_refit_trainval") is None:
            return acc(m, "linear_test")
        return f"{acc(m, 'linear_test')} / {acc(m, 'linear_test_refit_trainval')}"

    side_by_side = (results.get("throughput") or {}).get("methods_loop_images_per_s", {})
    for m in results["methods"].values():
        m = {**m, "images_per_s": side_by_side.get(m["method"], m["images_per_s"])}
        seeds = f" ({len(m['seeds'])} seeds)" if "seeds" in m else ""
        lines.append(
            f"| {NAMES[m['method']]}{seeds} | {linear(m)} | {acc(m, 'logreg_test')} | "
            f"{acc(m, 'knn20_test')} / {acc(m, 'knn20_test_bank_trainval')} | "
            f"{m['images_per_s']:.0f} | {m['epoch_seconds']:.0f} | "
            f"{m['peak_rss_mb']:.0f} |"
        )
    px = results.get("pixels")
    if px:
        lines.append(
            f"| raw pixels (bank: train split / all 60k) | - | - | {pct(px['knn20_test_bank_train'])} / "
            f"{pct(px['knn20_test_bank_trainval'])} | - | - | - |"
        )
    tp = results.get("throughput")
    if tp:
        lines += ["", "| data path (same model, loss, batch) | images/s |", "|---|---|"]
        for k, v in tp.items():
            if k not in ("batch_size", "steps", "methods_loop_images_per_s", "methods_step_parts"):
                lines.append(f"| {k} | {v:.0f} |")
    return "\n".join(lines)


def pixels_markdown(px: dict) -> str:
    """The raw pixels' kNN with the runs' protocol: the chosen k and T, and the 20-NN test accuracy of both banks."""
    knn = px["knn"]
    return "\n".join(
        [
            "| raw pixels | chosen k, T | validation 20-NN | test 20-NN (bank: train split / all 60k) |",
            "|---|---|---:|---:|",
            f"| kNN protocol of the runs | {knn['best_k']}, {knn['temperature']} | {100 * knn['val']['20']:.2f} | "
            f"{100 * px['knn20_test_bank_train']:.2f} / {100 * px['knn20_test_bank_trainval']:.2f} |",
        ]
    )


def throughput_markdown(tp: dict) -> str:
    """The training loop's images/s and the loss's share of an iteration, per method (one process, side by side)."""
    lines = [
        "| method | images/s (loop) | ms/step: data, forward, loss, backward, optimizer | loss share of the "
        "iteration | of the step |",
        "|---|---|---|---|---|",
    ]
    for m, r in tp["methods_step_parts"].items():
        ms = ", ".join(f"{1000 * r['seconds_per_step'][k]:.0f}" for k in ("data", "forward", "loss", "backward"))
        ms += f", {1000 * r['seconds_per_step']['optimizer']:.0f}"
        lines.append(
            f"| {NAMES[m]} | {r['images_per_s']:.0f} | {ms} | {100 * r['loss_share']:.1f}% "
            f"| {100 * r['loss_share_of_step']:.1f}% |"
        )
    return "\n".join(lines)


def _cpu_flags() -> list[str]:
    """The CPU's bfloat16 and AMX flags (from /proc/cpuinfo; empty where it is not readable)."""
    try:
        flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags.split(":", 1)[1].split() if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None, help="epochs per method (default: the preset's)")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    p.add_argument("--subset", type=int, default=None, help="pretrain on the first N training images only")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1)")
    p.add_argument("--jobs", type=int, default=2, help="runs at the same time (default 2: one per core)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "bench_pretrain"), help="run folders (git-ignored)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pretrain.json"))
    p.add_argument("--seeds", type=int, default=1, help="runs per method: seeds 0..N-1; N > 1 adds mean and sd")
    p.add_argument("--fresh", action="store_true", help="retrain even when a complete run folder exists")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-pixels", action="store_true")
    p.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the training loop's images/s and loss share of every method (no runs, no pixels, no DataLoader)",
    )
    p.add_argument(
        "--settings-only",
        action="store_true",
        help="only the SFRIK training step under each of --step-settings, side by side (no runs, no methods)",
    )
    p.add_argument(
        "--step-settings",
        default="fp32,bf16,fp32-nchw,bf16-nchw,fp32-compile,bf16-compile",
        help="settings of --settings-only: fp32 or bf16 (autocast), then -nchw (channels-last off), -compile",
    )
    p.add_argument("--step-threads", default="1,2", help="torch thread counts of --settings-only")
    p.add_argument("--step-warmup", type=int, default=2, help="untimed steps per setting before --settings-only's")
    p.add_argument(
        "--compare-runs",
        nargs=2,
        metavar=("REFERENCE", "OTHER"),
        help="with --settings-only: add two finished run folders of the same recipe side by side to the JSON",
    )
    p.add_argument(
        "--pixels-only",
        action="store_true",
        help="only the kNN on raw pixels with the runs' protocol (k and T chosen on the validation split)",
    )
    p.add_argument("--throughput-steps", type=int, default=20)
    p.add_argument("--throughput-images", type=int, default=8192)
    p.add_argument("--loader-workers", default="0,2", help="DataLoader workers of the per-image baseline")
    p.add_argument("extra", nargs="*", help="extra dotkernels-pretrain options after --, e.g. -- --lr 0.5")
    args = p.parse_args(argv)
    args.loader_workers = [int(w) for w in args.loader_workers.split(",") if w.strip()]
    args.step_settings = [w.strip() for w in args.step_settings.split(",") if w.strip()]
    args.step_threads = [int(w) for w in args.step_threads.split(",") if w.strip()]
    for name in args.step_settings:
        try:
            parse_setting(name)
        except ValueError as err:
            p.error(str(err))
    if args.step_warmup < 1:
        p.error(f"--step-warmup must be at least 1, got {args.step_warmup}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; choose among {', '.join(METHODS)}")
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1, got {args.seeds}")
    runs_dir = Path(args.runs_dir).resolve()
    results: dict = {
        "preset": PRESET,
        "epochs": args.epochs,
        "subset": args.subset,
        "threads": args.threads,
        "jobs": args.jobs,
        "seeds": args.seeds,
        "extra_options": args.extra,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "load_average_at_start": os.getloadavg(),
            "cpu_flags": _cpu_flags(),
        },
        "methods": {},
    }
    t0 = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.settings_only and args.compare_runs:  # added to the settings' JSON, which is kept
        results = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else results
        results["compare_runs"] = compare_runs(*map(Path, args.compare_runs))
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["compare_runs"], indent=1))
        return 0
    for only, key, measure, part_markdown in (
        (args.settings_only, "step_settings", step_settings, settings_markdown),
        (args.throughput_only, "throughput", throughput, throughput_markdown),
        (args.pixels_only, "pixels", lambda a: pixel_protocol(a.data_dir), pixels_markdown),
    ):
        if only:
            results[key] = measure(args)
            results["total_seconds"] = time.perf_counter() - t0
            results["machine"]["load_average_at_end"] = os.getloadavg()
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(part_markdown(results[key]))
            print(f"\nwrote {out}")
            return 0
    results["methods"] = run_methods(methods, args, runs_dir)
    out.write_text(json.dumps(results, indent=2) + "\n")  # the pretraining results first, then the rest
    if not args.skip_pixels:
        results["pixels"] = pixel_baseline(args.data_dir)
    if not args.skip_throughput:
        results["throughput"] = throughput(args)
    results["total_seconds"] = time.perf_counter() - t0
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
