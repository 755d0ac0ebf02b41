"""The pretraining loop: :func:`train` for one CPU process, one GPU, or many processes (torchrun).

:func:`train` reads top to bottom:

1. validate the configuration, build the loss (:func:`build_loss_from_config`), check the run folder and read
   its ``last.pt`` (:mod:`~dotkernels_ssl.pretraining.checkpoint`); a run that is already complete is reported
   as such and nothing is written;
2. join the processes of a ``torchrun`` launch and pick the device (:mod:`~dotkernels_ssl.pretraining.runtime`);
3. :func:`prepare` the data, the model, the optimiser, the schedule and the augmentations (resuming their state);
4. :func:`train_epoch` for each remaining epoch: :func:`train_step` on every batch, then the monitors
   (:class:`~dotkernels_ssl.pretraining.monitors.EpochMonitor`), the logs (:mod:`~dotkernels_ssl.pretraining.logs`)
   and the checkpoint;
5. :func:`final_evaluation` of the frozen backbone (:mod:`~dotkernels_ssl.pretraining.evaluation`), written to
   ``eval.json``.

The run folder holds ``config.yaml``, ``metrics_step.csv``, ``metrics_epoch.csv``, ``tb/``, ``last.pt`` (and
``epoch-XXXX.pt`` when ``run.checkpoint_every`` > 0) and ``eval.json``. ``last.pt`` is written (atomically) at
the end of every epoch, every ``run.checkpoint_minutes`` of training inside an epoch, and after the current step
when SIGINT (Ctrl-C) or SIGTERM arrives (:class:`StopRequests`; the run then stops with
:class:`TrainingInterrupted`, and a second signal stops it at once). Running again with the same ``--out``
resumes from ``last.pt`` exactly at its step: model, optimiser, gradient scaler, the schedule rebuilt at the
global step, the epoch's remaining batches in the same order (the permutation depends on the seed and the epoch
only), the partial sums of the epoch's metrics and every rank's random states, so that the resumed run computes
the same losses as an uninterrupted one; rows and TensorBoard events logged after the checkpoint are dropped. A
NaN or infinite loss raises :class:`NonFiniteLossError` before the optimiser step: the parameters are not
updated and ``last.pt`` (the last good checkpoint) is kept.
"""

from __future__ import annotations

import contextlib
import gc
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..losses import build_loss
from ..losses import distributed as D
from .augment import build_augment
from .checkpoint import (
    CHECKPOINT_FORMAT,
    check_resume_config,
    keep_copy,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import Config, ConfigError, check_data_dir, check_run_folder, config_to_dict, is_run_folder, save_yaml
from .data import ImageData, build_loader, load_split
from .evaluation import evaluate_model, write_json
from .logs import RunLog, epoch_line, progress_bar, read_result, summary_lines, train_summary
from .models import ViewsForward, build_model, sync_batchnorm
from .monitors import MONITOR_KEYS, EpochMonitor
from .optim import build_optimizer, scaled_lr, warmup_cosine_schedule, warmup_steps
from .runtime import autocast_dtype, peak_rss_mb, seed_all, start_processes

__all__ = [
    "NonFiniteLossError",
    "RunState",
    "StopRequests",
    "TrainResult",
    "TrainingInterrupted",
    "build_loss_from_config",
    "final_evaluation",
    "prepare",
    "train",
    "train_epoch",
    "train_step",
]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped before updating the parameters."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run; the message says what was saved and how to resume.

    Parameters
    ----------
    message
        What was saved (or kept) and how to resume.
    signum
        The signal (``signal.SIGINT`` or ``signal.SIGTERM``); the command line exits with ``128 + signum``.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


class StopRequests:
    """The SIGINT and SIGTERM handlers of a run (a context manager; installed from the main thread only).

    While :attr:`deferring` (the training steps), a first signal is recorded in :attr:`signum` and the loop writes
    a checkpoint and stops after the current step; elsewhere (set-up, monitors, evaluation), and at a second
    signal, the run stops at once with :class:`TrainingInterrupted` (the last checkpoint is kept).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        if self.deferring and self.signum is None:
            self.signum = signum
            return
        raise TrainingInterrupted("", signum)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    out_dir
        The run folder.
    epochs_done
        Completed epochs (of ``optim.epochs``).
    completed
        All epochs are done (False when ``run.stop_after`` stopped the run early).
    history
        One dict of metrics per epoch trained in this call.
    eval
        The final evaluation (``eval.json``), None when not run.
    checkpoint
        Path of ``last.pt``.
    """

    out_dir: Path
    epochs_done: int
    completed: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] | None = None
    checkpoint: Path | None = None


@dataclass
class RunState:
    """Everything a run holds while it trains (built by :func:`prepare`).

    ``epoch`` counts the completed epochs, ``epoch_step`` the batches of the current one already trained (a
    checkpoint inside an epoch), ``partial`` the sums of that epoch's metrics so far, ``plan`` the schedule's
    (warm-up steps, total steps, peak rate, final ratio), ``saved`` the (global step, epoch, epoch step) of the
    last checkpoint written or read, ``next_save`` the time (``time.monotonic``) of the next timed one, and
    ``due`` the (stop, save) flags the ranks agreed on in the last step (under ``torchrun``) and ``pending`` a
    signal received after them, found when the checkpoint at the epoch's end is written.
    """

    cfg: Config
    ctx: D.DistributedContext
    device: torch.device
    model: nn.Module
    forward: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: torch.optim.lr_scheduler.LambdaLR
    augment: nn.Module
    loader: Any
    train_data: ImageData
    amp_dtype: torch.dtype | None
    plan: tuple[int, int, float, float] = (0, 1, 0.0, 0.0)
    epoch: int = 0
    global_step: int = 0
    epoch_step: int = 0
    partial: dict[str, Any] = field(default_factory=lambda: {"sums": {}, "steps": 0, "seconds": 0.0})
    term_names: list[str] = field(default_factory=list)
    monitor: EpochMonitor | None = None
    stops: StopRequests = field(default_factory=StopRequests)
    saved: tuple[int, int, int] | None = None
    next_save: float = math.inf
    due: tuple[bool, bool] = (False, False)
    pending: int | None = None

    @property
    def ckpt_path(self) -> Path:
        return self.cfg.out_dir / "last.pt"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)


def say(msg: str) -> None:
    print(msg, flush=True)


def build_loss_from_config(cfg: Config) -> nn.Module:
    """The loss module of ``cfg.loss``: ``build_loss(method, kernel=..., preset=..., **options)``.

    Raises
    ------
    ConfigError
        Unknown method or preset, bad kernel string or bad loss options.
    """
    loss = cfg.loss
    try:
        return build_loss(loss.method, kernel=loss.kernel, preset=loss.preset, **dict(loss.options))
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"cannot build the {loss.method!r} loss (kernel={loss.kernel!r}, preset={loss.preset!r}, "
            f"options={dict(loss.options)}): {exc}"
        ) from None


def train(cfg: Config) -> TrainResult:
    """Pretrain (or resume) the run described by ``cfg``; see the module docstring.

    Raises
    ------
    ConfigError
        Invalid configuration, loss options, data folder, run folder, or a resumed run whose configuration
        changed.
    dotkernels_ssl.pretraining.checkpoint.CheckpointError
        The run folder's ``last.pt`` is corrupt (left untouched; nothing is written).
    dotkernels_ssl.pretraining.data.DatasetNotFoundError
        The data set's files are missing (nothing is written).
    NonFiniteLossError
        The loss became NaN or infinite (the last good checkpoint is kept).
    TrainingInterrupted
        SIGINT (Ctrl-C) or SIGTERM: during the training steps a checkpoint of the current step is written first.
    """
    cfg.validate()
    check_data_dir(cfg.data.data_dir, cfg.data.dataset)
    loss_fn = build_loss_from_config(cfg)
    check_run_folder(cfg.out_dir)
    ckpt_path = cfg.out_dir / "last.pt"
    resume = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    changed = check_resume_config(resume["config"], cfg, ckpt_path) if resume is not None else []
    done = _finished(cfg, resume)
    if done is not None:
        return done
    if cfg.run.threads:
        torch.set_num_threads(int(cfg.run.threads))
    with StopRequests() as stops:
        ctx, device = start_processes(cfg)
        state = None
        try:
            state = prepare(cfg, ctx, device, loss_fn, resume)
            state.stops = stops
            end_epoch = min(cfg.optim.epochs, cfg.run.stop_after or cfg.optim.epochs)
            log = _open_run_folder(state, resume, changed)
            try:
                history = [train_epoch(state, log) for _ in range(state.epoch, end_epoch)]
            finally:
                if log is not None:
                    log.close()
            result = TrainResult(cfg.out_dir, state.epoch, state.epoch >= cfg.optim.epochs, history, None, ckpt_path)
            if result.completed and cfg.run.final_eval and ctx.is_main:
                result.eval = final_evaluation(state, history)
            return result
        except TrainingInterrupted as exc:
            raise _interrupted(cfg, state, resume, exc) from None
        except KeyboardInterrupt:
            raise _interrupted(cfg, state, resume, TrainingInterrupted("")) from None
        finally:
            # the DDP model's reducer holds gloo work and the group: release it before the group is destroyed,
            # not at interpreter exit (where gloo's threads can abort the process)
            state = None
            gc.collect()
            D.shutdown(ctx)


def _interrupted(
    cfg: Config, state: RunState | None, resume: dict[str, Any] | None, exc: TrainingInterrupted
) -> TrainingInterrupted:
    """The interruption with its message: what was saved or kept, and how to resume."""
    if exc.args and exc.args[0]:
        return exc
    name = signal.Signals(exc.signum).name
    saved = state.saved if state is not None else _position(resume)
    if saved is None:
        msg = f"{name}: stopped before the first checkpoint; nothing to resume (the same command starts over)"
    else:
        msg = (
            f"{name}: stopped; the last checkpoint {cfg.out_dir / 'last.pt'} ({_where(*saved)}) is kept: resume "
            "with the same --out"
        )
    return TrainingInterrupted(msg, exc.signum)


def _position(ckpt: dict[str, Any] | None) -> tuple[int, int, int] | None:
    """(global step, completed epochs, steps into the next epoch) of a checkpoint."""
    if ckpt is None:
        return None
    return int(ckpt.get("global_step", 0)), int(ckpt["epoch"]), int(ckpt.get("epoch_step", 0))


def _where(step: int, epoch: int, epoch_step: int) -> str:
    """``after step 1234 of epoch 2`` (in an epoch) or ``after step 840, the end of epoch 4``."""
    if epoch_step:
        return f"after step {step} of epoch {epoch + 1}"
    return f"after step {step}, the end of epoch {epoch}" if epoch else "before the first step"


def _finished(cfg: Config, resume: dict[str, Any] | None) -> TrainResult | None:
    """The result of a run with nothing left to do (its results printed again), or None."""
    if resume is None:
        return None
    epoch, out = int(resume["epoch"]), cfg.out_dir
    eval_path = out / "eval.json"
    result = TrainResult(out, epoch, epoch >= cfg.optim.epochs, [], None, out / "last.pt")
    if result.completed and cfg.run.final_eval and eval_path.is_file():
        result.eval = read_result(eval_path)
        if D.is_main_process():
            say(f"{out} is complete ({epoch}/{cfg.optim.epochs} epochs, evaluated); nothing to do")
            for line in summary_lines(result.eval, eval_path):
                say(line)
        return result
    if result.completed and not cfg.run.final_eval:
        say(f"{out} is complete ({epoch}/{cfg.optim.epochs} epochs); nothing to do")
        return result
    if cfg.run.stop_after is not None and epoch >= cfg.run.stop_after and not result.completed:
        say(f"{out} is at epoch {epoch}, run.stop_after = {cfg.run.stop_after}; nothing to do")
        return result
    return None


def prepare(
    cfg: Config, ctx: D.DistributedContext, device: torch.device, loss_fn: nn.Module, resume: dict[str, Any] | None
) -> RunState:
    """Data, model, optimiser, schedule and augmentations of a run, restored from ``resume`` when given.

    Nothing is written. Raises :class:`ConfigError` when the batch does not split over the processes or the
    data set has less than one batch.
    """
    o, r = cfg.optim, cfg.run
    if o.batch_size % ctx.world:
        raise ConfigError(f"optim.batch_size {o.batch_size} is not divisible by the {ctx.world} processes")
    train_data = load_split(cfg, cfg.data.train_split, cfg.data.limit)
    if len(train_data) < o.batch_size:
        raise ConfigError(
            f"the training split has {len(train_data)} images, fewer than one global batch of {o.batch_size}"
        )
    monitor = EpochMonitor(cfg, train_data) if ctx.is_main and r.eval_every > 0 else None
    seed_all(r.seed)
    model = build_model(cfg, train_data.in_channels, cfg.data.crop_size or train_data.image_size).to(device)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.active and cfg.model.sync_bn:
        model = sync_batchnorm(model, device)
    if ctx.rank > 0:
        seed_all(r.seed + ctx.rank)  # different augmentations on each rank
    optimizer = build_optimizer(cfg, model)
    amp_dtype = autocast_dtype(r.amp, device)
    loader = build_loader(cfg, train_data, world=ctx.world, rank=ctx.rank, device=device)
    if len(loader) < 1:
        raise ConfigError("an epoch has no full batch: lower optim.batch_size or use more data")
    total = o.epochs * len(loader)
    peak = scaled_lr(o.base_lr, o.batch_size) if o.scale_lr else o.base_lr
    plan = (warmup_steps(o.warmup_epochs, len(loader), total), total, peak, o.final_lr_ratio)
    schedule = warmup_cosine_schedule(optimizer, *plan)
    forward: nn.Module = ViewsForward(model, cfg.model.concat_views)
    if ctx.active and getattr(loss_fn, "check_finite", False):
        loss_fn.check_finite = False  # the step's all-reduce checks the embeddings of every rank together
    if ctx.active:
        ids = [device.index] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
    if r.compile:
        forward = torch.compile(forward)  # type: ignore[assignment]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    augment = build_augment(cfg, train_data.mean, train_data.std, train_data.image_size).to(device)
    state = RunState(
        cfg,
        ctx,
        device,
        model,
        forward,
        loss_fn,
        optimizer,
        torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        schedule,
        augment,
        loader,
        train_data,
        amp_dtype,
        plan=plan,
        monitor=monitor,
    )
    if resume is not None:
        _restore(state, resume)
    state.next_save = _next_save(r.checkpoint_minutes)
    return state


def _next_save(minutes: float) -> float:
    """The time (``time.monotonic``) of the next timed checkpoint, ``minutes`` from now (0: never)."""
    return time.monotonic() + 60 * minutes if minutes > 0 else math.inf


def _restore(state: RunState, resume: dict[str, Any]) -> None:
    """Load a checkpoint into the run (at an epoch's end or inside one); the schedule is rebuilt at its step.

    A changed number of epochs or learning rate re-plans the rest of the schedule from the checkpoint's step.
    """
    state.model.load_state_dict(resume["model"])
    state.optimizer.load_state_dict(resume["optimizer"])
    state.scaler.load_state_dict(resume["scaler"])
    state.epoch, state.global_step = int(resume["epoch"]), int(resume["global_step"])
    state.epoch_step = int(resume.get("epoch_step", 0))
    if state.epoch_step > len(state.loader):
        raise ConfigError(
            f"{state.ckpt_path} stopped after batch {state.epoch_step} of an epoch, but an epoch now has "
            f"{len(state.loader)} batches; resume with the batch size and data it was started with"
        )
    if state.epoch_step:
        partial = resume.get("partial") or {}
        state.partial = {
            "sums": {str(k): float(v) for k, v in dict(partial.get("sums", {})).items()},
            "steps": int(partial.get("steps", state.epoch_step)),
            "seconds": float(partial.get("seconds", 0.0)),
        }
    state.schedule = warmup_cosine_schedule(state.optimizer, *state.plan, step=state.global_step)
    state.saved = _position(resume)
    rng = resume.get("rng") or []
    if len(rng) == state.ctx.world:
        set_rng_state(rng[state.ctx.rank], state.device)
    else:
        warnings.warn(
            f"{state.ckpt_path} was written by {len(rng)} processes, this run has {state.ctx.world}: random states "
            "reseeded",
            stacklevel=3,
        )
        seed_all(state.cfg.run.seed + 1000 * state.epoch + state.ctx.rank)


def _open_run_folder(state: RunState, resume: dict[str, Any] | None, changed: list[str]) -> RunLog | None:
    """Rank 0 creates the run folder, writes ``config.yaml``, opens the logs and prints the banner."""
    cfg, out = state.cfg, state.cfg.out_dir
    log = None
    if state.ctx.is_main:
        new = not is_run_folder(out)
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp-*"):  # temporary files of a crashed checkpoint write
            stale.unlink()
        save_yaml(cfg, out / "config.yaml")
        step = state.global_step if resume is not None else None
        log = RunLog(out, resumed_step=step, resumed_epoch=state.epoch, tensorboard=cfg.run.tensorboard)
        for line in _banner(state, new=new and resume is None, changed=changed):
            say(line)
    D.barrier()
    return log


def _banner(state: RunState, *, new: bool, changed: Sequence[str] = ()) -> list[str]:
    """The lines printed when a run starts: the run folder (new or resumed), data, device, the effective recipe.

    Parameters
    ----------
    state
        The prepared run (:func:`prepare`).
    new
        The run folder is new (else the run resumes from its ``last.pt``).
    changed
        Settings changed since the checkpoint (a resumed run).

    Returns
    -------
    list of str
        The lines, without trailing newlines.
    """
    cfg, out, data = state.cfg, state.cfg.out_dir, state.train_data
    o, m, r = cfg.optim, cfg.model, cfg.run
    n = len(state.loader)
    if new:
        head = f"new run in {out}"
    elif state.saved is None or state.saved == (0, 0, 0):
        head = f"resuming {out}: no checkpoint yet, starting at step 0"
    else:
        head = f"resuming {out} {_where(*state.saved)} ({o.epochs} epochs of {n} steps)"
    if changed:
        head += f"; changed settings: {', '.join(changed)}"
    precision = {None: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[state.amp_dtype]
    world = f", {state.ctx.world} processes" if state.ctx.active else ""
    warm, _, peak, final = state.plan
    loss = f"{cfg.loss.method}" + (f" (kernel {cfg.loss.kernel})" if cfg.loss.kernel else "")
    loss += f", loss preset {cfg.loss.preset}" if cfg.loss.preset else ""
    loss += f", options {dict(cfg.loss.options)}" if cfg.loss.options else ""
    backbone = m.backbone + (
        f" {'-'.join(map(str, m.convnet_widths))} ({m.convnet_pool})" if m.backbone == "convnet" else ""
    )
    every = f" and every {r.checkpoint_minutes:g} min" if r.checkpoint_minutes > 0 else ""
    return [
        head,
        f"  data     {cfg.data.dataset} {cfg.data.train_split} split: {len(data)} images, read from "
        f"{data.source or 'local files'}",
        f"  device   {state.device}, {torch.get_num_threads()} thread(s){world}, {precision}"
        + (", channels-last" if r.channels_last else ""),
        f"  recipe   {loss}; {backbone}, projector {m.projector}; augmentations {cfg.data.recipe}",
        f"           {o.optimizer}, batch {o.batch_size}, {o.epochs} epochs x {n} steps, peak lr {peak:.4g}"
        f" (warm-up {warm} steps, cosine to {final:g} x peak), weight decay {o.weight_decay:g}, seed {r.seed}",
        f"  saves    {out / 'last.pt'} at each epoch's end{every}, and on Ctrl-C or SIGTERM",
    ]


def train_step(state: RunState, x: torch.Tensor) -> dict[str, float]:
    """One optimisation step on the batch ``x``; returns the loss and its terms (global values) for logging.

    Raises :class:`NonFiniteLossError` before the optimiser step when an embedding or the loss is not finite.

    Under ``torchrun`` the step adds one collective to the loss's own and DDP's: a single all-reduce of the loss
    terms, a "some embedding is not finite" flag and the "stop" (a signal arrived) and "save" (the checkpoint
    interval passed) flags of :func:`_save_or_stop`, so that every rank logs the global terms, stops before the
    update when any rank saw a non-finite value, and saves or stops after the same step. The loss's own finiteness
    check is off there (:func:`prepare`): a rank raising alone would leave the others waiting in the loss's
    collectives; a non-finite embedding still reaches every rank through the flag.
    """
    cfg = state.cfg
    x = x.to(state.device, non_blocking=True)
    with torch.no_grad():
        views = state.augment(x)
        views = list(views) if isinstance(views, (list, tuple)) else [views]
        if cfg.run.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    with state.autocast():
        embs = state.forward(views)
    try:
        res = state.loss_fn.forward_terms(embs)
    except ValueError as exc:  # one process: the loss rejects non-finite embeddings itself
        if "non-finite" in str(exc):
            _nonfinite(state, {"embeddings": math.nan}, exc)
        raise
    names = ["loss", *res.terms]
    values = [res.loss.detach().float(), *(t.detach().float() for t in res.terms.values())]
    if state.ctx.active:
        dev = values[0].device
        total = torch.stack([e.detach().sum(dtype=torch.float32) for e in embs]).sum().to(dev)
        stop, save = _due(state, ahead=1)
        flags = [
            (~torch.isfinite(total)).float(),
            torch.tensor(float(stop), device=dev),
            torch.tensor(float(save), device=dev),
        ]
        reduced = D.all_reduce_mean(torch.stack([*values, *flags]))  # the mean of a flag is > 0 if any rank set it
        reduced, agreed = reduced[: len(names)], reduced[len(names) :].tolist()
        state.due = (agreed[1] > 0, agreed[2] > 0)
        if agreed[0] > 0:
            _nonfinite(state, {"embeddings": math.nan})
    else:
        reduced = torch.stack(values)
    scalars = dict(zip(names, reduced.tolist()))
    if not all(math.isfinite(v) for v in scalars.values()):
        _nonfinite(state, scalars)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(res.loss).backward()
    if cfg.optim.grad_clip is not None:
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.model.parameters(), cfg.optim.grad_clip)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.schedule.step()
    state.global_step += 1
    state.term_names = names
    return scalars


def train_epoch(state: RunState, log: RunLog | None) -> dict[str, Any]:
    """Train one epoch (or its rest, after a checkpoint inside it), then monitor, log and checkpoint it.

    A SIGINT or SIGTERM during the steps, and every ``run.checkpoint_minutes``, write ``last.pt`` after the
    current step (the signal then stops the run with :class:`TrainingInterrupted`).

    Parameters
    ----------
    state
        The run (:func:`prepare`); its epoch, step counts and checkpoint position advance.
    log
        The run's logs (rank 0), None on the other ranks.

    Returns
    -------
    dict
        The epoch's metrics (mean loss terms over the whole epoch, learning rate, throughput, monitors, memory).
    """
    cfg, epoch = state.cfg, state.epoch
    show = log is not None and not cfg.run.quiet
    state.loader.set_epoch(epoch, state.epoch_step)
    state.model.train()
    bar = progress_bar(len(state.loader), f"epoch {epoch + 1}/{cfg.optim.epochs}", show, initial=state.epoch_step)
    part = state.partial
    sums: dict[str, float] = part["sums"]
    t_epoch = time.perf_counter() - part["seconds"]
    t_last, lr = time.perf_counter(), state.schedule.get_last_lr()[0]
    state.stops.deferring = True
    try:
        for x, _ in state.loader:
            lr = state.schedule.get_last_lr()[0]
            scalars = train_step(state, x)
            state.epoch_step += 1
            part["steps"] += 1
            now = time.perf_counter()
            ips, t_last = cfg.optim.batch_size / max(now - t_last, 1e-9), now
            for k, v in scalars.items():
                sums[k] = sums.get(k, 0.0) + v
            if log is not None and state.global_step % cfg.run.log_every == 0:
                log.step({"step": state.global_step, "epoch": epoch + 1, **scalars, "lr": lr, "images_per_s": ips})
            if bar is not None:
                shown = {k: f"{v:.4g}" for k, v in scalars.items()}
                bar.set_postfix({**shown, "lr": f"{lr:.3g}", "img/s": f"{ips:.0f}"})
                bar.update(1)
            part["seconds"] = time.perf_counter() - t_epoch
            _save_or_stop(state, bar)
    finally:
        state.stops.deferring = False
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t_epoch
    n_steps = part["steps"]
    metrics: dict[str, Any] = {"epoch": epoch + 1, "step": state.global_step}
    metrics.update({k: v / max(n_steps, 1) for k, v in sums.items()})
    metrics.update({"lr": lr, "images_per_s": n_steps * cfg.optim.batch_size / max(seconds, 1e-9)})
    metrics["epoch_seconds"] = seconds
    if show and state.monitor is not None and _monitors_due(state):
        say(f"epoch {epoch + 1}/{cfg.optim.epochs}: monitors (kNN on the validation split, uniformity, rank)...")
    metrics.update(_monitors(state))
    metrics["peak_rss_mb"] = peak_rss_mb()
    if state.device.type == "cuda":
        metrics["peak_gpu_mb"] = torch.cuda.max_memory_allocated(state.device) / 2**20
    state.epoch += 1
    state.epoch_step = 0
    state.partial = {"sums": {}, "steps": 0, "seconds": 0.0}
    _checkpoint(state, metrics)
    if log is not None:
        log.epoch(metrics)
        say(epoch_line(metrics, cfg.optim.epochs, state.term_names))
    D.barrier()
    if state.pending is not None:  # a signal during the epoch's last step, after its flags were agreed
        signum = state.pending
        raise TrainingInterrupted(
            f"{signal.Signals(signum).name}: stopped {_where(*state.saved)}; checkpoint written to "  # type: ignore[misc]
            f"{state.ckpt_path}: resume with the same --out",
            signum,
        )
    return metrics


def _due(state: RunState, ahead: int = 0) -> tuple[bool, bool]:
    """(stop, save) of this process: a signal arrived; the checkpoint interval passed and the epoch goes on.

    ``ahead`` counts the steps of the epoch still to finish before the checkpoint (1 inside :func:`train_step`).
    """
    stop = state.stops.signum is not None
    save = time.monotonic() >= state.next_save and state.epoch_step + ahead < len(state.loader)
    return stop, save


def _save_or_stop(state: RunState, bar: Any) -> None:
    """After a step: write ``last.pt`` when a signal arrived or the checkpoint interval passed; stop on a signal.

    Under ``torchrun`` the ranks use the flags they agreed on in the step's all-reduce (:func:`train_step`), so
    that every rank saves and stops after the same step without a collective of its own; a signal that arrives
    after that all-reduce is acted on after the next step (or at the end of the epoch).
    """
    if state.ctx.active:
        stop, save = state.due
        state.due = (False, False)
    else:
        stop, save = _due(state)
    if not (stop or save):
        return
    _checkpoint(state, None)
    if stop:
        if bar is not None:
            bar.close()
        signum = state.stops.signum or signal.SIGTERM
        raise TrainingInterrupted(
            f"{signal.Signals(signum).name}: stopped {_where(*state.saved)}; checkpoint written to "  # type: ignore[misc]
            f"{state.ckpt_path}: resume with the same --out",
            signum,
        )


def _monitors_due(state: RunState) -> bool:
    every, epoch = state.cfg.run.eval_every, state.epoch + 1
    return every > 0 and (epoch % every == 0 or epoch == state.cfg.optim.epochs)


def _monitors(state: RunState) -> dict[str, Any]:
    """The monitors when due (every ``run.eval_every`` epochs and at the last one), else empty values."""
    if state.monitor is None or not _monitors_due(state):
        return dict.fromkeys(MONITOR_KEYS)
    return state.monitor(state.model, state.device, state.amp_dtype)


def _checkpoint(state: RunState, metrics: dict[str, Any] | None) -> None:
    """Write ``last.pt`` (rank 0; every rank's random state gathered first) and the kept copies.

    ``metrics`` is None for a checkpoint inside an epoch (``epoch_step`` > 0, the partial sums kept with it).
    The signal any rank received and has not acted on yet is gathered with the random states (``state.pending``).
    """
    gathered = D.all_gather_object((rng_state(state.device), state.stops.signum))
    rngs = [rng for rng, _ in gathered]
    state.pending = next((sig for _, sig in gathered if sig is not None), None)
    cfg = state.cfg
    state.next_save = _next_save(cfg.run.checkpoint_minutes)
    state.saved = (state.global_step, state.epoch, state.epoch_step)
    if not state.ctx.is_main:
        return
    for p in state.model.parameters():
        if not bool(torch.isfinite(p.detach()).all()):  # pragma: no cover - guarded by the loss check
            raise NonFiniteLossError(f"non-finite parameters after step {state.global_step}; {state.ckpt_path} kept")
    save_checkpoint(
        {
            "format": CHECKPOINT_FORMAT,
            "epoch": state.epoch,
            "global_step": state.global_step,
            "epoch_step": state.epoch_step,
            "partial": state.partial if state.epoch_step else None,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(),
            "rng": rngs,
            "world_size": state.ctx.world,
            "config": config_to_dict(cfg),
            "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
            "torch_version": str(torch.__version__),
        },
        state.ckpt_path,
    )
    every = cfg.run.checkpoint_every
    if metrics is not None and every and state.epoch % every == 0:
        keep_copy(state.ckpt_path, state.epoch)


def final_evaluation(state: RunState, history: list[dict[str, Any]], report: Callable[[str], None] = say) -> dict:
    """The evaluation protocol on the frozen backbone, written to ``eval.json`` with the run's summary (rank 0)."""
    cfg, out = state.cfg, state.cfg.out_dir
    quiet = cfg.run.quiet
    t0 = time.perf_counter()
    ev = evaluate_model(
        state.model, cfg, device=state.device, amp_dtype=state.amp_dtype, progress=None if quiet else report
    )
    summary = {
        "method": cfg.loss.method,
        "kernel": cfg.loss.kernel,
        "loss_preset": cfg.loss.preset,
        "loss_options": dict(cfg.loss.options),
        "dataset": cfg.data.dataset,
        "backbone": cfg.model.backbone,
        "projector": cfg.model.projector,
        "epochs": cfg.optim.epochs,
        "batch_size": cfg.optim.batch_size,
        "world_size": state.ctx.world,
        "eval": ev,
        "eval_seconds": time.perf_counter() - t0,
        "train": train_summary(out, history),
    }
    write_json(summary, out / "eval.json")
    for line in summary_lines(summary, out / "eval.json"):
        report(line)
    return summary


def _nonfinite(state: RunState, scalars: dict[str, float], cause: BaseException | None = None) -> None:
    ckpt = state.ckpt_path
    kept = f"the last good checkpoint {ckpt} is kept" if ckpt.exists() else "no checkpoint was written yet"
    terms = ", ".join(f"{k}={v:.4g}" for k, v in scalars.items())
    raise NonFiniteLossError(
        f"non-finite loss at epoch {state.epoch + 1}, step {state.global_step + 1} ({terms}); the run stopped before "
        f"updating the parameters and {kept}. Lower the learning rate (--lr), use --amp bf16/off, or check the "
        f"data, then resume with the same --out."
    ) from cause
