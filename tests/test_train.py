"""dotkernels_ssl.pretraining loop / cli: tiny end-to-end runs on real data, resume, failures, two processes (gloo).

Every run here is tiny (scikit-learn's digits, or a few hundred Fashion-MNIST images; a 4-8-8-8 ConvNet; a few
steps) so that each takes seconds on a CPU. The two-process run spawns ``torch.distributed.run`` (gloo).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kornia")
pytest.importorskip("sklearn")

from dotkernels_ssl.pretraining.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from dotkernels_ssl.pretraining.cli import eval_main, pretrain_main  # noqa: E402
from dotkernels_ssl.pretraining.config import ConfigError, parse_config  # noqa: E402
from dotkernels_ssl.pretraining.data import DatasetNotFoundError, load_dataset  # noqa: E402
from dotkernels_ssl.pretraining.evaluation import evaluate_checkpoint  # noqa: E402
from dotkernels_ssl.pretraining.loop import NonFiniteLossError, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

TINY = (
    "--dataset digits --limit 128 --batch-size 32 --epochs 1 --lr 0.3 --warmup-epochs 0.5 "
    "--model.convnet_widths 4,8,8,8 --projector 16-8 --eval-limit 120 --linear-epochs 1 --eval.linear_lrs 0.1 "
    "--eval.logreg_cs 1 --eval.knn_k 5,20 --eval.monitor_bank 100 --threads 1 --quiet"
).split()

TERMS = {
    "sfrik": ["invariance", "uniformity"],
    "kernel": ["invariance", "uniformity"],
    "auh": ["invariance", "uniformity"],
    "vicreg": ["invariance", "variance", "covariance"],
    "barlow": ["invariance", "redundancy"],
    "simclr": ["contrastive"],
}


def _cfg(out, *extra):
    return parse_config([*TINY, "--out", str(out), *extra])


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _digest(folder):
    """{relative path: sha256} of every file under ``folder``."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _params(path):
    return load_checkpoint(path)["model"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One complete tiny SFRIK run on digits, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "sfrik"
    res = train(_cfg(out, "--method", "sfrik"))
    assert res.completed
    return out


# --------------------------------------------------------------------------------------------------------------
# End-to-end runs


@pytest.mark.parametrize("method", ["sfrik", "kernel", "auh", "vicreg", "barlow", "simclr"])
def test_every_method_end_to_end_on_digits(tmp_path, method, finished_run):
    if method == "sfrik":
        out = finished_run
    else:
        extra = ["--kernel", "gaussian:gamma=2.5"] if method == "kernel" else []
        res = train(_cfg(tmp_path / method, "--method", method, *extra))
        assert res.completed and res.epochs_done == 1 and len(res.history) == 1
        out = res.out_dir
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics_step.csv", "metrics_epoch.csv", "last.pt", "eval.json", "tb"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    steps = _rows(out / "metrics_step.csv")
    assert len(steps) == 4  # 128 images / batch 32
    for row in steps:
        for key in ["loss", *TERMS[method], "lr", "images_per_s"]:
            assert float(row[key]) == float(row[key])  # present and not NaN
    epoch = _rows(out / "metrics_epoch.csv")[-1]
    assert 0 <= float(epoch["knn_val"]) <= 1
    for key in ("mmd2_uniform", "rayleigh", "rayleigh_p", "effective_rank", "embedding_std", "peak_rss_mb"):
        assert epoch[key] != ""
    assert 1 <= float(epoch["effective_rank"]) <= 8
    result = json.loads((out / "eval.json").read_text())
    assert result["method"] == method and result["epochs"] == 1
    ev = result["eval"]
    assert set(ev["knn"]["test"]) == {"5", "20"} and ev["knn"]["best_k"] in (5, 20)
    assert 0 <= ev["linear"]["test_acc"] <= 1 and 0 <= ev["logreg"]["test_acc"] <= 1
    assert result["train"]["images_per_s"] > 0 and result["train"]["peak_rss_mb"] > 0
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 1 and state["global_step"] == 4


def test_fashion_mnist_subset(tmp_path):
    try:
        load_dataset("fashion-mnist", "test", limit=1)
    except DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    args = [a for a in TINY]
    args[args.index("digits")] = "fashion-mnist"
    args[args.index("--limit") + 1] = "256"
    args[args.index("--batch-size") + 1] = "64"
    args += ["--eval.monitor_queries", "100", "--model.convnet_pool", "flatten"]
    res = train(parse_config([*args, "--out", str(tmp_path / "fm")]))
    assert res.completed
    ev = res.eval["eval"]
    assert ev["n_test"] == 120 and ev["knn"]["test_acc"] > 0.3  # 10 classes: far above chance
    assert ev["feature_dim"] == 8 * 3 * 3  # the last 3 x 3 feature map, flattened
    again = evaluate_checkpoint(tmp_path / "fm" / "last.pt", overrides={"eval.linear": "false", "eval.logreg": "0"})
    assert again["knn"]["test"] == ev["knn"]["test"]


def test_rerunning_a_complete_run_is_a_no_op(finished_run, capsys):
    before = _digest(finished_run)
    files = sorted(p.relative_to(finished_run) for p in finished_run.rglob("*"))
    res = train(parse_config(["--out", str(finished_run)]))
    assert res.completed and res.history == [] and res.eval["method"] == "sfrik"
    after = _digest(finished_run)
    assert before["last.pt"] == after["last.pt"] and before["eval.json"] == after["eval.json"]
    assert sorted(p.relative_to(finished_run) for p in finished_run.rglob("*")) == files  # no new event file
    out = capsys.readouterr().out
    assert "is complete" in out and "20-NN accuracy" in out and "k and T chosen on the validation split" in out
    assert str(finished_run / "eval.json") in out


def test_out_below_a_file_is_one_line_before_any_loading(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert pretrain_main([*TINY, "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is below the file" in err[0]


def test_bf16_channels_last_multicrop_concat_views(tmp_path):
    res = train(
        _cfg(
            tmp_path / "mc",
            *"--method vicreg --data.image_size 16 --data.local_crops 2 --data.local_size 8 --amp bf16".split(),
            *"--model.convnet_pool avg".split(),  # views of two sizes: flattened features would differ in size
            *"--channels-last --model.concat_views true --no-final-eval".split(),
        )
    )
    assert res.completed and res.eval is None
    assert all(float(r["loss"]) == float(r["loss"]) for r in _rows(tmp_path / "mc" / "metrics_step.csv"))


def test_image_folder_training(tmp_path):
    """The file-backed path (DataLoader over an ImageFolder) with a folder the test writes."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 24), ("val", 6)):
        for c in ("a", "b"):
            d = tmp_path / "imgs" / split / c
            d.mkdir(parents=True)
            for i in range(n):
                arr = torch.randint(0, 256, (20, 20, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(arr).save(d / f"{i:03d}.png")
    res = train(
        _cfg(
            tmp_path / "run",
            *["--dataset", "imagefolder", "--data-dir", str(tmp_path / "imgs"), "--data.image_size", "16"],
            *"--data.val_fraction 0.25 --limit none --workers 0 --batch-size 8 --method simclr".split(),
        )
    )
    assert res.completed and res.eval["eval"]["n_test"] == 12
    assert len(_rows(tmp_path / "run" / "metrics_step.csv")) == 4  # 36 training images / 8


# --------------------------------------------------------------------------------------------------------------
# Resume


def test_resume_continues_the_same_curve(tmp_path):
    """2 epochs in one go == 1 epoch, then a resumed run for the second (random augmentations, LARS)."""
    extra = ["--method", "sfrik", "--epochs", "2", "--no-final-eval"]
    assert train(_cfg(tmp_path / "full", *extra)).completed
    part = train(_cfg(tmp_path / "part", *extra, "--stop-after", "1"))
    assert not part.completed and part.epochs_done == 1
    resumed = train(parse_config(["--out", str(tmp_path / "part"), "--run.stop_after", "none"]))
    assert resumed.completed and resumed.epochs_done == 2 and len(resumed.history) == 1
    a, b = _params(tmp_path / "full" / "last.pt"), _params(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    la = [float(r["loss"]) for r in _rows(tmp_path / "full" / "metrics_step.csv")]
    lb = [float(r["loss"]) for r in _rows(tmp_path / "part" / "metrics_step.csv")]
    assert len(la) == len(lb) == 8
    assert la == pytest.approx(lb, rel=1e-6, abs=1e-7)
    sa, sb = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    assert sa["global_step"] == sb["global_step"] == 8
    # the schedule is rebuilt from the step: nothing of it is stored, and the resumed rates are the same
    assert "scheduler" not in sa and "scheduler" not in sb
    lr_a = [r["lr"] for r in _rows(tmp_path / "full" / "metrics_step.csv")]
    assert lr_a == [r["lr"] for r in _rows(tmp_path / "part" / "metrics_step.csv")]
    assert len(set(lr_a)) >= 7  # warm-up then cosine: the rate changes at every step (the peak is held twice)


def test_monitors_do_not_change_the_training(tmp_path):
    """The end-of-epoch monitors (every epoch, every other one, never) leave the weights bit-identical: the
    preset's choice of how often to run them changes the run's time only."""
    extra = ["--method", "sfrik", "--epochs", "3", "--no-final-eval", "--no-tensorboard"]
    weights = {}
    for every in ("1", "2", "0"):
        train(_cfg(tmp_path / every, *extra, "--eval-every", every))
        weights[every] = _params(tmp_path / every / "last.pt")
    monitored = [r["knn_val"] for r in _rows(tmp_path / "2" / "metrics_epoch.csv")]
    assert monitored[0] == "" and monitored[1] != "" and monitored[2] != ""  # epochs 2 and 3 (the last)
    for every in ("2", "0"):
        for k in weights["1"]:
            assert torch.equal(weights["1"][k], weights[every][k]), (every, k)


def test_a_stored_scheduler_state_is_ignored_on_resume(tmp_path):
    """Checkpoints of earlier versions hold the scheduler's state: they resume, on the schedule of the step."""
    extra = ["--method", "sfrik", "--epochs", "2", "--no-final-eval"]
    assert train(_cfg(tmp_path / "full", *extra)).completed
    out = tmp_path / "old"
    train(_cfg(out, *extra, "--stop-after", "1"))
    state = load_checkpoint(out / "last.pt")
    # what an earlier version stored, with values that would derail the rates if they were read
    state["scheduler"] = {"last_epoch": 99, "_last_lr": [5.0, 5.0], "base_lrs": [7.0, 7.0], "_step_count": 100}
    torch.save(state, out / "last.pt")
    assert train(parse_config(["--out", str(out), "--run.stop_after", "none"])).completed
    full, old = _rows(tmp_path / "full" / "metrics_step.csv"), _rows(out / "metrics_step.csv")
    assert [r["lr"] for r in full] == [r["lr"] for r in old]
    assert [r["loss"] for r in full] == [r["loss"] for r in old]


def test_nonfinite_loss_stops_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "nan"
    train(_cfg(out, "--epochs", "2", "--stop-after", "1", "--no-final-eval"))
    before = _digest(out)["last.pt"]
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 2.*last good checkpoint"):
        train(parse_config(["--out", str(out), "--run.stop_after", "none", "--lr", "1e30"]))
    assert _digest(out)["last.pt"] == before
    assert load_checkpoint(out / "last.pt")["epoch"] == 1


# --------------------------------------------------------------------------------------------------------------
# Bad inputs


def test_corrupt_checkpoint_is_reported_and_left_untouched(tmp_path, finished_run, capsys):
    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    before = _digest(run)
    with pytest.raises(CheckpointError, match=r"last\.pt is corrupt"):
        train(parse_config(["--out", str(run), "--epochs", "2"]))
    assert _digest(run) == before
    assert pretrain_main(["--out", str(run), "--epochs", "2"]) == 2  # refused: nothing was written
    assert "corrupt" in capsys.readouterr().err
    assert _digest(run) == before
    assert eval_main(["--run", str(run), "--device", "cpu"]) == 2


def test_missing_data_set_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DOTKERNELS_DATA", raising=False)
    out = tmp_path / "run"
    other = tmp_path / "other"  # a folder with files, but not the data set: no fall-back to another copy
    other.mkdir()
    (other / "notes.txt").write_text("x")
    argv = [*TINY, "--dataset", "cifar10", "--data-dir", str(other), "--out", str(out)]
    with pytest.raises(DatasetNotFoundError, match="cifar10"):
        train(parse_config(argv))
    assert not out.exists()
    assert pretrain_main(argv) == 2
    err = capsys.readouterr().err
    assert "not found" in err and str(other) in err and "Nothing is ever downloaded" in err
    assert "/usr/share/datasets" not in err.split("To install")[0]  # only the folder given was looked in
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "problem"), [(None, "does not exist"), ("dir", "is empty"), ("file", "is not a folder")]
)
def test_data_dir_must_hold_data(tmp_path, monkeypatch, capsys, make, problem):
    """An explicit --data-dir that is missing, empty or a file is refused before torch work (exit 2)."""
    from dotkernels_ssl.pretraining import loop

    monkeypatch.setattr(loop, "train", lambda cfg: pytest.fail("train() must not start"))
    data = tmp_path / "data"
    if make == "dir":
        data.mkdir()
    elif make == "file":
        data.write_text("x")
    out = tmp_path / "run"
    argv = [*TINY, "--dataset", "fashion-mnist", "--data-dir", str(data), "--out", str(out)]
    assert pretrain_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--data-dir {data} {problem}" in err[0]
    assert "apt-get install -y dataset-fashion-mnist" in err[0]  # how to get the data
    assert not out.exists()
    with pytest.raises(ConfigError, match=problem):
        train(parse_config(argv))


@pytest.mark.parametrize("bad", [["--method", "byol"], ["--kernel", "gaussian:gamma=oops"], ["--kernel", "nosuch:1"]])
def test_unknown_method_or_kernel_touches_nothing(tmp_path, finished_run, bad, capsys):
    fresh = tmp_path / "fresh"
    assert pretrain_main([*TINY, "--out", str(fresh), *bad]) == 2
    assert not fresh.exists()
    assert "error" in capsys.readouterr().err
    before = _digest(finished_run)
    assert pretrain_main(["--out", str(finished_run), *bad]) == 2
    assert _digest(finished_run) == before


def test_changed_configuration_cannot_resume(tmp_path, finished_run):
    with pytest.raises(ConfigError, match=r"model\.projector"):
        train(parse_config(["--out", str(finished_run), "--projector", "32-8"]))


# --------------------------------------------------------------------------------------------------------------
# Evaluation of a checkpoint


def test_eval_cli_on_a_checkpoint(tmp_path, finished_run, capsys):
    out = tmp_path / "ev.json"
    code = eval_main(
        [
            "--checkpoint",
            str(finished_run / "last.pt"),
            "--device",
            "cpu",
            "--no-logreg",
            "--out",
            str(out),
            "--eval.knn_k",
            "3",
        ]
    )
    assert code == 0
    res = json.loads(out.read_text())
    assert res["epoch"] == 1 and res["method"] == "sfrik" and set(res["knn"]["test"]) == {"3"}
    assert "linear" in res and "logreg" not in res
    printed = capsys.readouterr().out  # the summary of dotkernels-pretrain, not the JSON
    assert printed.startswith("evaluation of sfrik on digits, checkpoint of epoch 1 (test split):")
    assert f"kNN accuracy {100 * res['knn']['test_acc']:.2f}% at k = 3" in printed and f"all results: {out}" in printed
    assert len(printed.splitlines()) <= 6
    # the same features and kNN as the final evaluation of the run (--json: the whole result on stdout)
    stored = json.loads((finished_run / "eval.json").read_text())["eval"]["knn"]
    assert eval_main(["--run", str(finished_run), "--device", "cpu", "--no-linear", "--no-logreg", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["knn"]["test"] == stored["test"]
    # --quiet: the result only in --out
    quiet_out = tmp_path / "quiet.json"
    argv = ["--run", str(finished_run), "--device", "cpu", "--no-linear", "--no-logreg", "--quiet"]
    assert eval_main([*argv, "--out", str(quiet_out)]) == 0
    assert capsys.readouterr().out == "" and json.loads(quiet_out.read_text())["knn"]["test"] == stored["test"]
    with pytest.raises(SystemExit) as exc:
        eval_main(argv)
    assert exc.value.code == 2 and "--quiet prints nothing, so it needs --out" in capsys.readouterr().err


def test_python_m_entry_points(finished_run):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dotkernels_ssl.pretraining.cli import eval_main; raise SystemExit(eval_main())",
            "--run",
            str(finished_run),
            "--device",
            "cpu",
            "--no-linear",
            "--no-logreg",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "knn" in json.loads(r.stdout)
    r = subprocess.run(
        [sys.executable, "-m", "dotkernels_ssl.pretrain", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert r.returncode == 0 and "--optim.base_lr" in r.stdout


# --------------------------------------------------------------------------------------------------------------
# Two processes


@pytest.mark.distributed
def test_two_processes_match_one_process(tmp_path):
    """torchrun with 2 gloo processes == 1 process on the same global batch (SyncBatchNorm, global losses).

    The recipe "none" makes the views deterministic, so both runs see exactly the same images; every epoch's
    permutation is split over the ranks, so the union of the local batches is the single-process batch.
    """
    args = [
        *TINY,
        *"--method sfrik --epochs 2 --recipe none --batch-size 64 --no-final-eval --eval-every 0".split(),
        # gentle steps: float32 noise stays small
        *"--no-tensorboard --lr 0.1 --loss.options.invariance_weight 50".split(),
        # contiguous tensors: channels_last convolutions round differently for a batch of 32 and one of 64 (its
        # float32 noise, amplified by 4 steps, reaches 3e-4 on the first BatchNorm bias, with or without DDP);
        # channels_last itself is checked in float64 in test_models.py
        *"--run.channels_last false".split(),
        # float32: bf16 autocast (the preset's default on CPUs with bfloat16 instructions) rounds batches of 32 and
        # 64 differently far beyond these tolerances
        *"--amp off".split(),
    ]
    train(parse_config([*args, "--out", str(tmp_path / "one")]))
    # faulthandler: should a worker abort, its Python stack is in the output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [*launcher, "-m", "dotkernels_ssl.pretrain", *args, "--out", str(tmp_path / "two")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    assert two["world_size"] == 2 and len(two["rng"]) == 2 and one["world_size"] == 1
    assert two["global_step"] == one["global_step"] == 4
    for k in one["model"]:
        torch.testing.assert_close(two["model"][k], one["model"][k], rtol=1e-5, atol=1e-5, msg=k)
    l1 = [float(r["loss"]) for r in _rows(tmp_path / "one" / "metrics_step.csv")]
    l2 = [float(r["loss"]) for r in _rows(tmp_path / "two" / "metrics_step.csv")]
    assert l1 == pytest.approx(l2, rel=1e-5, abs=1e-6)


_DDP_SCRIPT = """
import json, os, signal, sys
from dotkernels_ssl.losses import distributed as D
from dotkernels_ssl.pretraining import loop
from dotkernels_ssl.pretraining.config import parse_config
from dotkernels_ssl.pretraining.models import ViewsForward

out_file, plan, args = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
rank, step_now, calls = int(os.environ["RANK"]), [0], []
for name in ("all_reduce_mean", "all_reduce_min", "all_reduce_max", "all_reduce_sum", "all_gather_object",
             "all_gather_no_grad", "all_gather_with_grad", "barrier", "broadcast", "broadcast_object"):
    def counted(*a, _real=getattr(D, name), _name=name, **k):
        caller = sys._getframe(1).f_code
        if os.path.basename(caller.co_filename) == "loop.py":  # the loop's own collectives, not the loss's
            calls.append([step_now[0], caller.co_name, _name])
        return _real(*a, **k)
    setattr(D, name, counted)
real_step, real_forward = loop.train_step, ViewsForward.forward

def step(state, x):
    step_now[0] = state.global_step + 1
    if rank == 1 and plan.get("signal_before") == step_now[0]:
        state.stops.signum = signal.SIGTERM  # SIGTERM reached rank 1 alone, before this step's all-reduce
    out = real_step(state, x)
    if rank == 1 and plan.get("signal_after") == step_now[0]:
        state.stops.signum = signal.SIGTERM  # after this step's all-reduce
    return out

def forward(self, views):
    embs = real_forward(self, views)
    return [e * float("nan") for e in embs] if rank == 1 and plan.get("nan_at") == step_now[0] else embs

loop.train_step, ViewsForward.forward = step, forward
try:
    outcome = f"completed={loop.train(parse_config(args)).completed}"
except (loop.TrainingInterrupted, loop.NonFiniteLossError) as exc:
    outcome = f"{type(exc).__name__}: {exc}"
with open(f"{out_file}.rank{rank}.json", "w") as f:
    json.dump({"outcome": outcome, "calls": calls}, f)
from dotkernels_ssl.pretraining.cli import _end_worker  # ends as the CLI's workers do (no finalization race)
_end_worker(0)
"""


@pytest.mark.distributed
def test_a_torchrun_worker_ends_without_finalization(tmp_path, monkeypatch):
    """Launched by torchrun, the program ends with os._exit(status) once its group is destroyed (the interpreter's
    finalization can race gloo's threads and abort a finished run); pretrain_main, a function, returns."""
    import socket

    import torch.distributed as dist

    from dotkernels_ssl.pretraining import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for key, value in launch.items():
        monkeypatch.setenv(key, value)
    ended = []

    class Ended(Exception):
        pass

    def fake_exit(status):
        ended.append((status, dist.is_initialized()))
        raise Ended

    monkeypatch.setattr(cli, "_exit", fake_exit)
    args = [*TINY, "--no-final-eval", "--eval-every", "0", "--no-tensorboard"]
    monkeypatch.setattr(sys, "argv", ["dotkernels-pretrain", *args, "--out", str(tmp_path / "a")])
    with pytest.raises(Ended):
        cli.pretrain_command()
    assert ended == [(0, False)]  # the run's status, after the process group was destroyed
    assert load_checkpoint(tmp_path / "a" / "last.pt")["global_step"] == 4
    monkeypatch.setattr(sys, "argv", ["dotkernels-pretrain", *args, "--out", str(tmp_path / "b")])
    assert pretrain_main() == 0 and len(ended) == 1  # the function returns


@pytest.mark.distributed
def test_two_processes_one_loop_collective_per_step(tmp_path):
    """Under torchrun the loop adds one collective per step to the loss's and DDP's; the ranks still agree on
    a signal that reached one of them (before a step's all-reduce, or after the last one of an epoch) and on a
    non-finite embedding of one of them, and a resumed run continues."""
    script = tmp_path / "count.py"
    script.write_text(_DDP_SCRIPT)
    out = tmp_path / "run"
    args = [*TINY, *"--method sfrik --epochs 3 --no-final-eval --eval-every 0 --no-tensorboard".split()]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    # faulthandler: should a worker abort, its Python stack is in the output
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}

    def launch(name, plan, *extra):
        cmd = [*launcher, str(tmp_path / name), json.dumps(plan), *args, *extra]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return [json.loads((tmp_path / f"{name}.rank{k}.json").read_text()) for k in range(2)]

    def per_step(res):
        counts = {}
        for step, func, _ in res["calls"]:
            if func in ("train_step", "_save_or_stop"):
                counts[step] = counts.get(step, 0) + 1
        return counts

    # SIGTERM on rank 1 after the all-reduce of the epoch's last step (4 steps an epoch): both stop at its end
    first = launch("a", {"signal_after": 4}, "--out", str(out))
    for res in first:
        assert res["outcome"] == (
            f"TrainingInterrupted: SIGTERM: stopped after step 4, the end of epoch 1; checkpoint written to "
            f"{out / 'last.pt'}: resume with the same --out"
        )
        assert per_step(res) == {1: 1, 2: 1, 3: 1, 4: 1}  # one all-reduce a step, nothing from _save_or_stop
        assert [c for c in res["calls"] if c[0] == 2] == [[2, "train_step", "all_reduce_mean"]]
    # resumed; SIGTERM on rank 1 alone before step 6's all-reduce: both save after step 6 and stop
    second = launch("b", {"signal_before": 6}, "--out", str(out))
    for res in second:
        assert res["outcome"].startswith("TrainingInterrupted: SIGTERM: stopped after step 6 of epoch 2;")
        assert per_step(res) == {5: 1, 6: 1}
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["global_step"], state["epoch_step"], len(state["rng"])) == (1, 6, 2, 2)
    # a non-finite embedding on rank 1 only: both stop before the update, the checkpoint is kept
    third = launch("c", {"nan_at": 7}, "--out", str(out))
    for res in third:
        assert res["outcome"].startswith("NonFiniteLossError: non-finite loss at epoch 2, step 7 (embeddings=nan)")
    assert load_checkpoint(out / "last.pt")["global_step"] == 6
    assert [r["step"] for r in _rows(out / "metrics_step.csv")] == [str(i) for i in range(1, 7)]


def test_bf16_on_a_cpu_without_bfloat16_instructions_warns(monkeypatch):
    from dotkernels_ssl.pretraining import runtime

    cpu = torch.device("cpu")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert not runtime.native_cpu_bf16()
    with pytest.warns(UserWarning, match="no bfloat16 instructions"):
        assert runtime.autocast_dtype("bf16", cpu) is torch.bfloat16
    assert runtime.autocast_dtype("auto", cpu) is None and runtime.autocast_dtype("off", cpu) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert runtime.native_cpu_bf16()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime.autocast_dtype("bf16", cpu) is torch.bfloat16
        assert runtime.autocast_dtype("auto", cpu) is torch.bfloat16
    assert runtime.autocast_dtype("off", cpu) is None


def test_torch_compile(tmp_path):
    res = train(_cfg(tmp_path / "c", "--compile", "--no-final-eval"))
    assert res.completed


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (KeyboardInterrupt(), 130, "dotkernels-pretrain: interrupted"),
        (RuntimeError("out of memory"), 1, "error: out of memory"),
    ],
)
def test_cli_failures_are_one_line(tmp_path, monkeypatch, capsys, exc, code, text):
    from dotkernels_ssl.pretraining import loop

    def boom(cfg):
        raise exc

    monkeypatch.setattr(loop, "train", boom)
    assert pretrain_main([*TINY, "--out", str(tmp_path / "r")]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0]


def test_eval_cli_rejects_an_out_below_a_file_before_loading(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        eval_main(["--run", str(tmp_path / "nosuch"), "--out", str(blocker / "eval.json")])
    assert exc.value.code == 2 and "is below the file" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# Interruptions: SIGINT / SIGTERM, checkpoints inside an epoch, exact resume


def _signal_at(monkeypatch, steps):
    """Make train_step send ``steps[global_step]`` (a signal) to this process right after that step."""
    from dotkernels_ssl.pretraining import loop

    real = loop.train_step

    def step(state, x):
        out = real(state, x)
        sig = steps.get(state.global_step)
        if sig is not None:
            os.kill(os.getpid(), sig)
        return out

    monkeypatch.setattr(loop, "train_step", step)


def _tb_steps(folder, tag="step/loss"):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tb"))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_interrupted_runs_resume_exactly(tmp_path, monkeypatch, capsys):
    """SIGTERM in epoch 1 and SIGINT in epoch 2, each resumed: every step's loss equals the uninterrupted run's."""
    import signal

    extra = ["--method", "sfrik", "--epochs", "2", "--no-final-eval"]  # random augmentations (recipe "small")
    assert train(_cfg(tmp_path / "full", *extra)).completed
    out = tmp_path / "part"
    _signal_at(monkeypatch, {3: signal.SIGTERM, 6: signal.SIGINT})
    assert pretrain_main([*TINY, *extra, "--out", str(out)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dotkernels-pretrain: SIGTERM: stopped after step 3 of epoch 1; checkpoint written to "
                   f"{out / 'last.pt'}: resume with the same --out"]  # fmt: skip
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["global_step"], state["epoch_step"]) == (0, 3, 3)
    assert pretrain_main(["--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert f"resuming {out} after step 3 of epoch 1" in captured.out
    assert "SIGINT: stopped after step 6 of epoch 2" in captured.err
    assert pretrain_main(["--out", str(out)]) == 0
    assert f"resuming {out} after step 6 of epoch 2" in capsys.readouterr().out
    full, part = _rows(tmp_path / "full" / "metrics_step.csv"), _rows(out / "metrics_step.csv")
    assert [r["step"] for r in part] == [str(i) for i in range(1, 9)]  # each step once
    for a, b in zip(full, part, strict=True):
        for key in ("loss", "invariance", "uniformity", "lr"):
            assert a[key] == b[key], (a["step"], key)
    ea, eb = _rows(tmp_path / "full" / "metrics_epoch.csv"), _rows(out / "metrics_epoch.csv")
    assert [r["epoch"] for r in eb] == ["1", "2"]
    for a, b in zip(ea, eb, strict=True):  # the epoch means include the steps before the interruption
        assert a["loss"] == b["loss"] and a["knn_val"] == b["knn_val"]
    sa, sb = _params(tmp_path / "full" / "last.pt"), _params(out / "last.pt")
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert _tb_steps(out) == list(range(1, 9))


def test_crash_after_a_timed_checkpoint_drops_later_rows(tmp_path, monkeypatch):
    """run.checkpoint_minutes writes last.pt inside an epoch; a crash after it: the resumed run logs each step once."""
    from dotkernels_ssl.pretraining import loop

    extra = ["--method", "sfrik", "--epochs", "2", "--no-final-eval"]
    out = tmp_path / "crash"
    real = loop.train_step

    def crash_at_6(state, x):
        if state.global_step == 5:
            raise RuntimeError("simulated crash")
        return real(state, x)

    monkeypatch.setattr(loop, "train_step", crash_at_6)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_cfg(out, *extra, "--run.checkpoint_minutes", "1e-9"))  # a checkpoint after every step
    state = load_checkpoint(out / "last.pt")
    assert (state["epoch"], state["global_step"], state["epoch_step"]) == (1, 5, 1)
    # no timed checkpoints (0) but one forced after step 5, then step 6 logged, then a crash in step 7
    shutil.rmtree(out)

    def save_at_5_crash_at_7(state, x):
        if state.global_step == 6:
            raise RuntimeError("simulated crash")
        res = real(state, x)
        if state.global_step == 5:
            state.next_save = 0.0  # as if the interval had passed
        return res

    monkeypatch.setattr(loop, "train_step", save_at_5_crash_at_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_cfg(out, *extra, "--run.checkpoint_minutes", "0"))
    assert load_checkpoint(out / "last.pt")["global_step"] == 5
    assert [r["step"] for r in _rows(out / "metrics_step.csv")] == ["1", "2", "3", "4", "5", "6"]
    monkeypatch.setattr(loop, "train_step", real)
    assert train(parse_config(["--out", str(out)])).completed
    assert [r["step"] for r in _rows(out / "metrics_step.csv")] == [str(i) for i in range(1, 9)]
    assert _tb_steps(out) == list(range(1, 9))
    full = train(_cfg(tmp_path / "full", *extra))
    assert full.completed
    la = [r["loss"] for r in _rows(tmp_path / "full" / "metrics_step.csv")]
    assert la == [r["loss"] for r in _rows(out / "metrics_step.csv")]


def test_interrupt_before_the_first_checkpoint_says_so(tmp_path, monkeypatch, capsys):
    from dotkernels_ssl.pretraining import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "prepare", interrupted)
    assert pretrain_main([*TINY, "--out", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dotkernels-pretrain: SIGINT: stopped before the first checkpoint; nothing to resume (the same "
                   "command starts over)"]  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Careless inputs: one line, exit status 2, nothing written


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--workers", "-3"], "--workers (data.num_workers) must be >= 0, got -3"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--device", "tpu"], "unknown device 'tpu'; choose auto, cpu, cuda or cuda:N"),
        (["--out", "/proc/dotkernels-run"], "cannot write in /proc"),
        (["--run.checkpoint_minutes", "-1"], "run.checkpoint_minutes must be >= 0"),
    ],
)
def test_rejected_arguments_exit_2_before_any_work(tmp_path, monkeypatch, capsys, argv, text):
    from dotkernels_ssl.pretraining import loop

    monkeypatch.setattr(loop, "train", lambda cfg: pytest.fail("train() must not start"))
    code = pretrain_main([*TINY, "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and text in err[0], err
    assert not (tmp_path / "r").exists()


def test_out_into_a_folder_that_is_not_a_run(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    before = _digest(mine)
    assert pretrain_main([*TINY, "--out", str(mine)]) == 2
    assert "is a folder with other files and not a run folder" in capsys.readouterr().err
    assert _digest(mine) == before and sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert pretrain_main([*TINY, "--out", str(empty), "--epochs", "1", "--no-final-eval"]) == 0
    assert (empty / "last.pt").is_file()


def test_eval_never_overwrites_a_run_and_reads_results_defensively(tmp_path, finished_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _digest(run)
    for name in ("eval.json", "last.pt", "config.yaml"):
        with pytest.raises(SystemExit) as exc:
            eval_main(["--run", str(run), "--out", str(run / name)])
        assert exc.value.code == 2 and "would overwrite a file of the run folder" in capsys.readouterr().err
    assert _digest(run) == before
    # a foreign or corrupt eval.json in a complete run: one clear line, exit 2, the file left alone
    for text in ('["not", "a", "result"]', "{truncated", '{"knn": {"test": {}}}'):
        (run / "eval.json").write_text(text)
        code = pretrain_main(["--out", str(run)])
        err = capsys.readouterr().err.strip().splitlines()
        if text.startswith('{"knn"'):  # a dotkernels-eval result: its summary is printed
            assert code == 0 and err == []
        else:
            assert code == 2 and len(err) == 1 and f"{run / 'eval.json'} is" in err[0] and "move it away" in err[0]
        assert (run / "eval.json").read_text() == text


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--out", "/proc/dotkernels-eval.json"], "cannot write in /proc"),
        (["--device", "tpu"], "unknown device 'tpu'; choose auto, cpu, cuda or cuda:N"),
        (["--bogus"], "unrecognized argument '--bogus'"),
    ],
)
def test_eval_rejections_are_one_line_before_any_work(finished_run, monkeypatch, capsys, argv, text):
    from dotkernels_ssl.pretraining import evaluation

    monkeypatch.setattr(evaluation, "evaluate_checkpoint", lambda *a, **k: pytest.fail("must not evaluate"))
    with pytest.raises(SystemExit) as exc:
        eval_main(["--run", str(finished_run), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("dotkernels-eval: error: ") and text in err[0]


def test_eval_of_a_file_that_is_not_a_checkpoint(finished_run, capsys):
    assert eval_main(["--checkpoint", str(finished_run / "config.yaml"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is corrupt or not a checkpoint" in err[0]


def test_interrupt_outside_the_steps_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the monitors of epoch 2: no wait for them, the checkpoint of epoch 1 is kept and named."""
    import signal

    from dotkernels_ssl.pretraining import loop

    real, calls = loop.EpochMonitor.__call__, []

    def monitor(self, *args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args)

    monkeypatch.setattr(loop.EpochMonitor, "__call__", monitor)
    out = tmp_path / "r"
    assert pretrain_main([*TINY, "--epochs", "2", "--eval-every", "1", "--no-final-eval", "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dotkernels-pretrain: SIGINT: stopped; the last checkpoint {out / 'last.pt'} (after step 4, the "
                   "end of epoch 1) is kept: resume with the same --out"]  # fmt: skip
    assert load_checkpoint(out / "last.pt")["global_step"] == 4


def test_sigterm_from_outside_writes_a_checkpoint(tmp_path):
    """As a cluster scheduler does: SIGTERM to the running command; it saves the current step and exits 143."""
    import signal
    import time

    out = tmp_path / "r"
    args = [*TINY, "--epochs", "200", "--no-final-eval", "--eval-every", "0", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dotkernels_ssl.pretrain", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    steps = out / "metrics_step.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if steps.is_file() and len(steps.read_text().splitlines()) > 6:  # 5 steps logged: in epoch 2
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    state = load_checkpoint(out / "last.pt")
    assert 4 <= state["global_step"] < 800
    assert "resume with the same --out" in err
    rows = [int(r["step"]) for r in _rows(steps)]
    if f"SIGTERM: stopped after step {state['global_step']}" in err:  # in the steps (nearly always)
        assert state["global_step"] >= 5 and rows == list(range(1, state["global_step"] + 1))
    else:  # at an epoch's end, between the steps and its checkpoint: the last one (an epoch's end) is kept
        assert "SIGTERM: stopped; the last checkpoint" in err and state["global_step"] % 4 == 0
        assert rows[: state["global_step"]] == list(range(1, state["global_step"] + 1))
