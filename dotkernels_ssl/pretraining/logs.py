"""What a run writes and prints: the CSV metrics, TensorBoard scalars, the progress bar and the console lines.

The run folder holds ``metrics_step.csv`` (every loss term, learning rate and images/s per step),
``metrics_epoch.csv`` (one row per epoch, with the monitors) and ``tb/`` (TensorBoard events). Only rank 0
writes.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError

__all__ = ["CSVLog", "RunLog", "epoch_line", "progress_bar", "read_result", "summary_lines", "train_summary"]


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.8g}"
    return "" if v is None else v


def _num(v: str | None) -> Any:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


class CSVLog:
    """Append rows to a CSV file; the header is fixed by the first row (or read back when resuming)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None)

    def write(self, row: dict[str, Any]) -> None:
        """Append ``row`` (keys outside the header are dropped)."""
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: _fmt(v) for k, v in row.items()})

    def truncate_after(self, key: str, last: int) -> None:
        """Drop rows whose ``key`` is larger than ``last`` (steps logged after the checkpoint being resumed)."""
        if self.fields is None or key not in self.fields:
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if r.get(key) not in (None, "") and int(float(r[key])) <= last]
        if len(kept) == len(rows):
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, self.path)


class RunLog:
    """The step and epoch CSV files and the TensorBoard writer of a run folder (rank 0).

    Parameters
    ----------
    out
        The run folder (it exists).
    resumed_step, resumed_epoch
        When resuming: rows logged after the checkpoint are dropped and TensorBoard purges the later events.
    tensorboard
        Write TensorBoard events.
    """

    def __init__(
        self, out: Path, *, resumed_step: int | None = None, resumed_epoch: int = 0, tensorboard: bool = True
    ) -> None:
        self.steps = CSVLog(out / "metrics_step.csv")
        self.epochs = CSVLog(out / "metrics_epoch.csv")
        if resumed_step is not None:
            self.steps.truncate_after("step", resumed_step)
            self.epochs.truncate_after("epoch", resumed_epoch)
        self.tb = None
        if tensorboard:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.utils.tensorboard import SummaryWriter  # tensorboard is slow to import: only when used

            # events at steps after the checkpoint (written before a crash or an interruption) are purged: the
            # resumed run logs them again from step resumed_step + 1
            purge = None if resumed_step is None else resumed_step + 1
            self.tb = SummaryWriter(str(out / "tb"), purge_step=purge)

    def step(self, row: dict[str, Any]) -> None:
        """Log one training step (``row`` has ``step`` and ``epoch``)."""
        self.steps.write(row)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch"):
                    self.tb.add_scalar(f"step/{k}", v, row["step"])

    def epoch(self, metrics: dict[str, Any]) -> None:
        """Log one epoch's metrics (``metrics`` has ``epoch``)."""
        self.epochs.write(metrics)
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    self.tb.add_scalar(f"epoch/{k}", v, metrics["epoch"])
            self.tb.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self.tb is not None:
            self.tb.close()


def progress_bar(total: int, desc: str, enabled: bool, initial: int = 0) -> Any:
    """A tqdm bar (None when ``enabled`` is False).

    Parameters
    ----------
    total, desc
        Number of steps and the bar's label.
    enabled
        Show the bar.
    initial
        Steps already done (a resumed epoch).

    Returns
    -------
    tqdm.tqdm or None
        The bar.
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm  # tqdm.auto probes the notebook environment: only when a bar is shown

    return tqdm(total=total, desc=desc, dynamic_ncols=True, leave=False, initial=initial)


def epoch_line(m: dict[str, Any], epochs: int, names: list[str]) -> str:
    """The console line of an epoch: loss terms, learning rate, throughput, monitors."""
    parts = [f"epoch {m['epoch']}/{epochs}"]
    parts += [f"{k} {m[k]:.4g}" for k in names if m.get(k) is not None]
    parts.append(f"lr {m['lr']:.3g}")
    parts.append(f"{m['images_per_s']:.0f} img/s")
    parts.append(f"{m['epoch_seconds']:.0f} s")
    for k, label in (("knn_val", "kNN(val)"), ("mmd2_uniform", "MMD2"), ("effective_rank", "eff.rank")):
        if m.get(k) is not None:
            parts.append(f"{label} {m[k]:.4g}")
    return " | ".join(parts)


def read_result(path: Path) -> dict[str, Any]:
    """Read a result file (``eval.json`` of a run, or a ``dotkernels-eval --out`` file) defensively.

    Parameters
    ----------
    path
        The JSON file.

    Returns
    -------
    dict
        Its content, a mapping with an ``eval`` (a run's) or a ``knn`` (``dotkernels-eval``'s) section.

    Raises
    ------
    ConfigError
        The file is unreadable, not JSON, or not a result of ``dotkernels-pretrain`` or ``dotkernels-eval`` (one
        line that names the file and what to do).
    """
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable or not JSON ({exc}); move it away and run again") from None
    if not isinstance(data, dict) or not isinstance(data.get("eval", data.get("knn")), dict):
        raise ConfigError(
            f"{path} is not a result of dotkernels-pretrain or dotkernels-eval (no 'eval' or 'knn' section); "
            "move it away and run again to evaluate the run anew"
        )
    return data


def summary_lines(summary: dict[str, Any], eval_path: Path | None) -> list[str]:
    """The closing summary of a run: the 20-NN test accuracy the README's tables quote, k chosen on validation.

    Parameters
    ----------
    summary
        The content of ``eval.json`` (a run's result, with the protocol under ``eval``) or a result of
        ``dotkernels-eval`` (the protocol at the top level); missing parts are left out.
    eval_path
        Where the whole result is (None: not written).

    Returns
    -------
    list of str
        The lines, without newlines.
    """
    ev = summary.get("eval", summary)
    ev = ev if isinstance(ev, dict) else {}
    knn = ev.get("knn") if isinstance(ev.get("knn"), dict) else {}
    what = f"{summary.get('method', '?')} on {summary.get('dataset', '?')}"
    if summary.get("epoch") is not None:
        what += f", checkpoint of epoch {summary['epoch']}"
    lines = [f"{'final evaluation' if 'train' in summary else 'evaluation'} of {what} (test split):"]
    test, full = knn.get("test") or {}, knn.get("test_bank_trainval") or {}
    if "20" in test:
        both = f" / {100 * full['20']:.2f}% (bank: train + validation)" if "20" in full else ""
        lines.append(f"  20-NN accuracy {100 * test['20']:.2f}% (bank: the training split){both}, as in the README")
    if knn.get("test_acc") is not None:
        chosen = "k and T" if len(knn.get("temperatures") or ()) > 1 else "k"
        lines.append(
            f"  kNN accuracy {100 * knn['test_acc']:.2f}% at k = {knn.get('best_k')}, T = {knn.get('temperature')} "
            f"({chosen} chosen on the validation split)"
        )
    lin = ev.get("linear")
    if isinstance(lin, dict) and lin.get("test_acc") is not None:
        chosen = " chosen on validation" if len(lin.get("val") or {}) > 1 else ""
        refit = lin.get("test_acc_refit_trainval")
        both = f" / {100 * refit:.2f}% (refitted on train + validation)" if refit is not None else ""
        lines.append(f"  linear probe {100 * lin['test_acc']:.2f}% (lr {lin.get('best_lr')}{chosen}){both}")
    lr = ev.get("logreg")
    if isinstance(lr, dict) and lr.get("test_acc") is not None:
        note = "" if lr.get("converged", True) else f", not converged in {lr.get('n_iter')} iterations"
        chosen = " chosen on validation" if len(lr.get("val") or {}) > 1 else ""
        lines.append(f"  logistic regression {100 * lr['test_acc']:.2f}% (C {lr.get('best_c')}{chosen}{note})")
    lines.append(f"  all results: {eval_path}" if eval_path is not None else "  all results: --out FILE.json or --json")
    return lines


def train_summary(out: Path, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput and memory over every epoch of the run (read back from metrics_epoch.csv when resumed)."""
    rows = history
    path = out / "metrics_epoch.csv"
    if path.is_file():
        with open(path, newline="") as f:
            rows = [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def column(key: str) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key) not in (None, "")]

    ips, secs, rss = column("images_per_s"), column("epoch_seconds"), column("peak_rss_mb")
    last = rows[-1] if rows else {}
    return {
        "images_per_s": float(np.mean(ips)) if ips else None,
        "epoch_seconds": float(np.mean(secs)) if secs else None,
        "train_seconds": float(np.sum(secs)) if secs else None,
        "peak_rss_mb": max(rss) if rss else None,
        "peak_gpu_mb": last.get("peak_gpu_mb"),
        "last_epoch": {k: v for k, v in last.items() if v not in (None, "")},
    }
