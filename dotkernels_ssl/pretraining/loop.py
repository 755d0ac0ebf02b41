"""The pretraining loop: one function, :func:`train`, for one CPU process, one GPU, or many processes (torchrun).

What a run does
---------------
1. Validates the configuration and builds the loss (an unknown method, kernel or loss option stops here, before
   anything is written), reads the run folder's ``last.pt`` when there is one (a corrupt checkpoint stops here
   with :class:`CheckpointError`, and the file is left untouched), and loads the data (a missing data set stops
   with :class:`~dotkernels_ssl.data.DatasetNotFoundError`).
2. Under torchrun (``RANK``/``WORLD_SIZE`` in the environment) initialises the process group from the environment
   (gloo on CPU, nccl on GPU), takes ``cuda:LOCAL_RANK``, converts BatchNorm to SyncBatchNorm and wraps the model
   in DistributedDataParallel; the data sampler splits every epoch's permutation over the ranks and the losses
   use the global batch. ``optim.batch_size`` is the global batch.
3. Trains: batched augmentations on the device (kornia), one forward per view (or one for all views), the loss's
   terms, mixed precision (bf16, or fp16 with a gradient scaler), LARS with the warm-up + cosine schedule set
   every step. A tqdm bar shows the loss terms and the throughput (``run.quiet`` turns it off).
4. After each epoch: the monitors (weighted kNN accuracy on the validation split with a bank of training images,
   and the collapse monitors of :mod:`dotkernels_ssl.monitors` on the validation embeddings), a row of
   ``metrics_epoch.csv``, TensorBoard scalars, and the checkpoint ``last.pt`` (written to a temporary file, then
   renamed over the previous one).
5. At the end: the evaluation protocol of :mod:`dotkernels_ssl.evaluate` on the frozen backbone, written to
   ``eval.json``.

The run folder
--------------
``config.yaml`` (the resolved configuration), ``metrics_step.csv`` (every loss term, learning rate, images/s per
step), ``metrics_epoch.csv``, ``tb/`` (TensorBoard events), ``last.pt`` (and ``epoch-XXXX.pt`` when
``run.checkpoint_every`` > 0), ``eval.json``. Running again with the same ``--out`` resumes from ``last.pt``:
model, optimizer, gradient scaler, schedule, epoch (the sampler's permutation depends on it) and the python, numpy
and torch random states of every rank, so a resumed run continues the same curve.

A NaN or infinite loss raises :class:`NonFiniteLossError` before the optimizer step: the parameters are not
updated and ``last.pt`` (the end of the last good epoch) is kept.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import math
import os
import random
import resource
import shutil
import sys
import time
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .config import KERNEL_METHODS, Config, ConfigError, config_from_dict, config_to_dict, save_yaml

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "GlobalBatchNorm",
    "NonFiniteLossError",
    "TrainResult",
    "build_augment",
    "build_loss_from_config",
    "build_model",
    "convert_global_batchnorm",
    "load_checkpoint",
    "monitor_kernel",
    "resolve_device",
    "save_checkpoint",
    "sync_batchnorm",
    "train",
]

CHECKPOINT_FORMAT = "dotkernels_ssl.checkpoint/1"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped before updating the parameters."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a dotkernels_ssl checkpoint (the file is left untouched)."""


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


# --------------------------------------------------------------------------------------------------------------
# Building blocks


def resolve_device(spec: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """``"auto"``: ``cuda:LOCAL_RANK`` (or the current CUDA device) when CUDA is available, else the CPU."""
    if isinstance(spec, torch.device):
        return spec
    spec = str(spec).strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and local_rank is not None:
        spec = f"cuda:{local_rank}"
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return dev


def build_model(cfg: Config, in_channels: int, image_size: int | None = None) -> nn.Module:
    """The :class:`~dotkernels_ssl.models.SSLModel` of a configuration (backbone + projector), on the CPU.

    ``image_size`` (the side of the views) is needed by ``model.convnet_pool = "flatten"`` only.
    """
    from .models import ConvNet, SSLModel, build_backbone, build_projector

    m = cfg.model
    if m.backbone == "convnet":
        if m.convnet_pool == "flatten" and image_size is None:
            raise ValueError("model.convnet_pool = 'flatten' needs the image size")
        backbone: nn.Module = ConvNet(
            in_channels=in_channels, widths=tuple(m.convnet_widths), pool=m.convnet_pool, image_size=image_size
        )
        dim = backbone.out_dim  # type: ignore[assignment]
    else:
        backbone, dim = build_backbone(
            m.backbone,
            small_image_stem=m.small_image_stem,
            in_channels=in_channels,
            zero_init_residual=m.zero_init_residual,
        )
    return SSLModel(backbone, build_projector(int(dim), m.projector))


def build_loss_from_config(cfg: Config) -> nn.Module:
    """The loss module of ``cfg.loss`` (``dotkernels_ssl.losses.build_loss(method, kernel, **options)``).

    Raises
    ------
    ConfigError
        Unknown method, bad kernel string or bad loss options.
    """
    method, kernel, options = cfg.loss.method, cfg.loss.kernel, dict(cfg.loss.options)
    try:
        from .losses import build_loss  # type: ignore[attr-defined]
    except ImportError:
        build_loss = None
    try:
        if build_loss is not None:
            return build_loss(method, kernel=kernel, **options)
        from . import losses_baselines as B

        classes = {
            "auh": B.AlignUniformLoss,
            "vicreg": B.VICRegLoss,
            "barlow": B.BarlowTwinsLoss,
            "simclr": B.NTXentLoss,
        }
        if method not in classes:
            raise ConfigError(f"method {method!r} needs dotkernels_ssl.losses.build_loss, which is not available")
        return classes[method](**options)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot build the {method!r} loss (kernel={kernel!r}, options={options}): {exc}") from None


def monitor_kernel(cfg: Config) -> Any:
    """Kernel of the MMD monitor: the run's kernel for the kernel methods, else the SFRIK kernel."""
    from dotkernels import parse_kernel

    if cfg.loss.method in KERNEL_METHODS and cfg.loss.kernel:
        return parse_kernel(cfg.loss.kernel)
    return parse_kernel("sfrik")


class MirrorViews(nn.Module):
    """Deterministic "augmentation" (recipe ``"none"``): view 1 is the image, view 2 its horizontal mirror.

    Normalised with ``mean``/``std`` and resized to ``size``; no randomness, so runs that split the same batch
    differently (one process or several) see exactly the same views.
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.size = int(size)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[x, flip(x)]`` normalised, float32."""
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        c = x.shape[1]
        m = torch.tensor(self.mean * (c if len(self.mean) == 1 else 1), device=x.device).view(1, c, 1, 1)
        s = torch.tensor(self.std * (c if len(self.std) == 1 else 1), device=x.device).view(1, c, 1, 1)
        x = (x - m) / s
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return [x, x.flip(-1)]


def build_augment(cfg: Config, mean: Sequence[float], std: Sequence[float], image_size: int) -> nn.Module:
    """The batched augmentation of ``cfg.data`` (a module mapping a uint8 batch to a list of views)."""
    d = cfg.data
    size = int(d.crop_size or image_size)
    if d.recipe == "none":
        return MirrorViews(size, mean, std)
    from .augment import MultiCropAugment, TwoViewAugment

    if d.local_crops > 0:
        kwargs: dict[str, Any] = {}
        if d.crop_scale is not None:
            kwargs["global_scale"] = tuple(d.crop_scale)
        return MultiCropAugment(
            d.recipe, size, mean, std, n_global=2, n_local=d.local_crops, local_size=d.local_size, **kwargs
        )
    return TwoViewAugment(d.recipe, size, mean, std, crop_scale=tuple(d.crop_scale) if d.crop_scale else None)


class _ViewsForward(nn.Module):
    """Embeddings of a list of views: one forward per view (the papers' BN statistics) or one per image size."""

    def __init__(self, model: nn.Module, concat: bool) -> None:
        super().__init__()
        self.model = model
        self.concat = concat

    def forward(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.concat:
            return [self.model(v)[1] for v in views]
        out: list[torch.Tensor | None] = [None] * len(views)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[1:]), []).append(i)
        for idx in groups.values():
            z = self.model(torch.cat([views[i] for i in idx]))[1]
            for i, part in zip(idx, z.split(views[idx[0]].shape[0])):
                out[i] = part
        return out  # type: ignore[return-value]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch over all processes, on any device.

    ``torch.nn.SyncBatchNorm`` only runs on GPUs; this module does the same on the CPU (gloo) with the
    gradient-carrying :func:`dotkernels_ssl.distributed.all_reduce_sum`: the mean and the (biased) variance used
    for normalisation are computed over the concatenation of every rank's batch (two passes: the sum, then the
    sum of squared deviations), and the running statistics are updated with the unbiased variance, exactly as
    a BatchNorm over the whole batch in one process. Outside training, or in a single process, it is a plain
    BatchNorm. Use :func:`convert_global_batchnorm` to convert a model.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        from . import distributed as D

        self._check_input_dim(input)
        if not (self.training and D.is_distributed()):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        x = input.float()
        count = D.all_reduce_sum(torch.tensor([float(x.numel() // x.shape[1])], device=x.device))
        mean = D.all_reduce_sum(x.sum(dim=dims)) / count
        xc = x - mean.view(shape)
        var = D.all_reduce_sum(xc.pow(2).sum(dim=dims)) / count
        out = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[operator]
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                n = float(count)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)  # type: ignore[union-attr]
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)  # type: ignore[union-attr]
        return out.to(input.dtype)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d of ``module`` by a :class:`GlobalBatchNorm` (same parameters and buffers)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (GlobalBatchNorm, nn.SyncBatchNorm)
    ):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            with torch.no_grad():
                new.weight = module.weight
                new.bias = module.bias
        new.running_mean = module.running_mean
        new.running_var = module.running_var
        new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_global_batchnorm(child))
    return module


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm over the global batch: ``torch.nn.SyncBatchNorm`` on GPUs, :class:`GlobalBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return convert_global_batchnorm(model)


# --------------------------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state(device: torch.device) -> dict[str, Any]:
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is what user code may draw from
    state: dict[str, Any] = {
        "python": [int(version), [int(k) for k in keys], gauss],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, keys, gauss = state["python"]
    random.setstate((int(version), tuple(int(k) for k in keys), gauss))
    npst = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, flushed to disk, then renamed.

    A crash at any moment leaves either the previous file or the new one, never a partial file under ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        with zipfile.ZipFile(tmp) as z:  # cheap structural check (reads the central directory only)
            if not z.namelist():
                raise CheckpointError(f"checkpoint {tmp} was written empty")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`train` (``weights_only``: no code is run).

    Raises
    ------
    CheckpointError
        The file is missing, unreadable (truncated, corrupt) or lacks the checkpoint's keys. The message names
        the file; the file itself is never modified.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle/zip/EOF errors...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}). It was left untouched: "
            f"move or delete it to start the run over, or restore a good copy (epoch-XXXX.pt) as last.pt."
        ) from exc
    needed = ("format", "epoch", "model", "config")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise CheckpointError(
            f"checkpoint {path} is not a dotkernels_ssl checkpoint (missing keys "
            f"{[k for k in needed if not isinstance(state, dict) or k not in state]}); it was left untouched"
        )
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state['format']!r}, expected {CHECKPOINT_FORMAT!r}")
    return state


# Keys that may change when a run is resumed (everything else must match the stored configuration).
_RESUMABLE_PREFIXES = ("run.", "eval.", "optim.epochs", "optim.base_lr", "optim.final_lr_ratio", "optim.grad_clip")
_RESUMABLE_KEYS = {"data.data_dir", "data.num_workers", "data.eval_limit", "data.resident", "preset"}


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" != "loss.options":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _check_resume_config(stored: dict[str, Any], cfg: Config, path: Path) -> list[str]:
    old, new = _flat(stored), _flat(config_to_dict(cfg))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    fixed = [k for k in changed if k not in _RESUMABLE_KEYS and not k.startswith(_RESUMABLE_PREFIXES)]
    if fixed:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in fixed)
        raise ConfigError(
            f"cannot resume {path}: the configuration differs from the stored one in {details}. "
            f"Use another --out for a new run."
        )
    return changed


# --------------------------------------------------------------------------------------------------------------
# Distributed


@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return dist.is_available() and dist.is_initialized() and self.world > 1


def _setup_distributed(cfg: Config) -> tuple[_Dist, torch.device]:
    env = os.environ
    launched = "RANK" in env and "WORLD_SIZE" in env
    if dist.is_available() and dist.is_initialized():
        ctx = _Dist(dist.get_world_size(), dist.get_rank(), int(env.get("LOCAL_RANK", 0)), False)
    elif launched:
        ctx = _Dist(int(env["WORLD_SIZE"]), int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), True)
    else:
        ctx = _Dist()
    device = resolve_device(cfg.run.device, ctx.local_rank if (launched or ctx.world > 1) else None)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if ctx.initialized_here:
        backend = cfg.run.dist_backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {}
        if backend == "nccl":
            kwargs["device_id"] = device
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            timeout=datetime.timedelta(seconds=cfg.run.dist_timeout_s),
            **kwargs,
        )
        ctx.world, ctx.rank = dist.get_world_size(), dist.get_rank()
    return ctx, device


def _barrier(ctx: _Dist) -> None:
    if ctx.active:
        dist.barrier()


def _all_mean(values: torch.Tensor, ctx: _Dist) -> torch.Tensor:
    if ctx.active:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= ctx.world
    return values


# --------------------------------------------------------------------------------------------------------------
# Data


class _FolderLoader:
    """Batches of a file-backed data set (DataLoader with workers) in the order of the distributed sampler."""

    def __init__(self, data: Any, batch_size: int, *, seed: int, world: int, rank: int, num_workers: int) -> None:
        from .data import IndexBatchSampler

        self.sampler = IndexBatchSampler(
            len(data), batch_size, shuffle=True, seed=seed, drop_last=True, num_replicas=world, rank=rank
        )
        self.dataset = data.dataset
        self.num_workers = num_workers

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = [b.tolist() for b in self.sampler]
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )
        for x, y in loader:
            yield x, torch.as_tensor(y)


def _load(cfg: Config, split: str, limit: int | None) -> Any:
    from .data import load_dataset

    d = cfg.data
    return load_dataset(
        d.dataset,
        split,
        d.data_dir,
        val_fraction=d.val_fraction,
        split_seed=d.split_seed,
        resize=d.image_size,
        per_class=d.per_class,
        limit=limit,
        folder_resize=d.folder_resize,
    )


def _min_limit(*values: int | None) -> int | None:
    vals = [v for v in values if v is not None]
    return min(vals) if vals else None


# --------------------------------------------------------------------------------------------------------------
# Logging


class _CSVLog:
    """Append rows to a CSV file; the header is fixed by the first row (or read back when resuming)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None)

    def write(self, row: dict[str, Any]) -> None:
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


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.8g}"
    return "" if v is None else v


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def _short(values: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in values.items()}


# --------------------------------------------------------------------------------------------------------------
# The loop


def _resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def _build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    from .optim import LARS, param_groups

    o = cfg.optim
    groups = param_groups(model, o.weight_decay)
    if o.optimizer == "lars":
        return LARS(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay, eta=o.eta)
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=o.weight_decay)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def train(cfg: Config) -> TrainResult:
    """Pretrain (or resume) the run described by ``cfg``; see the module docstring.

    Parameters
    ----------
    cfg
        A resolved :class:`~dotkernels_ssl.config.Config` (e.g. from :func:`~dotkernels_ssl.config.parse_config`).

    Returns
    -------
    TrainResult

    Raises
    ------
    ConfigError
        Invalid configuration, loss options, or a resumed run whose configuration changed (before any write).
    CheckpointError
        The run folder's ``last.pt`` is corrupt (left untouched; nothing is written).
    dotkernels_ssl.data.DatasetNotFoundError
        The data set's files are missing (nothing is written).
    NonFiniteLossError
        The loss became NaN or infinite (the last good checkpoint is kept).
    """
    cfg.validate()
    loss_fn = build_loss_from_config(cfg)
    mon_kernel = monitor_kernel(cfg)
    out = cfg.out_dir
    ckpt_path = out / "last.pt"
    resume = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    changed: list[str] = []
    if resume is not None:
        changed = _check_resume_config(resume["config"], cfg, ckpt_path)
        if resume["config"]["optim"]["optimizer"] != cfg.optim.optimizer:  # pragma: no cover - caught above
            raise ConfigError("the optimizer of a resumed run cannot change")
    if cfg.run.threads:
        torch.set_num_threads(int(cfg.run.threads))

    ctx, device = _setup_distributed(cfg)
    try:
        return _train(cfg, ctx, device, loss_fn, mon_kernel, out, ckpt_path, resume, changed)
    finally:
        if ctx.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: Config,
    ctx: _Dist,
    device: torch.device,
    loss_fn: nn.Module,
    mon_kernel: Any,
    out: Path,
    ckpt_path: Path,
    resume: dict[str, Any] | None,
    changed: list[str],
) -> TrainResult:
    from .evaluate import extract_features, knn_accuracy, write_json
    from .monitors import collapse_monitors

    main = ctx.is_main
    o, d, r = cfg.optim, cfg.data, cfg.run
    if o.batch_size % ctx.world:
        raise ConfigError(f"optim.batch_size {o.batch_size} is not divisible by the {ctx.world} processes")
    local_batch = o.batch_size // ctx.world

    # ---- data (before writing anything) ------------------------------------------------------------------
    train_data = _load(cfg, d.train_split, d.limit)
    if len(train_data) < o.batch_size:
        raise ConfigError(
            f"the training split has {len(train_data)} images, fewer than one global batch of {o.batch_size}"
        )
    monitor_bank = monitor_val = None
    if main and r.eval_every > 0:
        bank_limit = _min_limit(cfg.eval.monitor_bank, d.eval_limit)
        if d.train_split == "train" and train_data.in_memory and d.limit is None:
            monitor_bank = train_data
            if bank_limit is not None and bank_limit < len(train_data):
                from .data import ImageData

                monitor_bank = ImageData(
                    name=train_data.name,
                    split="train",
                    labels=train_data.labels[:bank_limit],
                    num_classes=train_data.num_classes,
                    mean=train_data.mean,
                    std=train_data.std,
                    image_size=train_data.image_size,
                    in_channels=train_data.in_channels,
                    images=train_data.images[:bank_limit],
                )
        else:
            monitor_bank = _load(cfg, "train", bank_limit)
        if d.val_fraction > 0:
            monitor_val = _load(cfg, "val", _min_limit(cfg.eval.monitor_queries, d.eval_limit))

    # ---- model, optimisation -----------------------------------------------------------------------------
    _seed_all(r.seed)
    model = build_model(cfg, in_channels=train_data.in_channels, image_size=d.crop_size or train_data.image_size)
    model.to(device)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ctx.active and cfg.model.sync_bn:
        model = sync_batchnorm(model, device)
    raw_model = model
    if ctx.rank > 0:
        _seed_all(r.seed + ctx.rank)  # different augmentations on each rank
    optimizer = _build_optimizer(cfg, raw_model)
    amp_dtype = _resolve_amp(r.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    augment = build_augment(cfg, train_data.mean, train_data.std, train_data.image_size).to(device)

    if train_data.in_memory:
        from .data import InMemoryLoader

        loader: Any = InMemoryLoader(
            train_data,
            local_batch,
            shuffle=True,
            seed=r.seed,
            drop_last=True,
            num_replicas=ctx.world,
            rank=ctx.rank,
            device=device,
            resident=d.resident and device.type == "cuda",
            pin_memory=device.type == "cuda",
        )
    else:
        loader = _FolderLoader(
            train_data, local_batch, seed=r.seed, world=ctx.world, rank=ctx.rank, num_workers=d.num_workers
        )
    steps_per_epoch = len(loader)
    if steps_per_epoch < 1:
        raise ConfigError("an epoch has no full batch: lower optim.batch_size or use more data")
    from .optim import WarmupCosineSchedule, scaled_lr, warmup_steps

    peak_lr = scaled_lr(o.base_lr, o.batch_size) if o.scale_lr else o.base_lr
    total_steps = o.epochs * steps_per_epoch
    n_warmup = warmup_steps(o.warmup_epochs, steps_per_epoch, total_steps)
    schedule = WarmupCosineSchedule(optimizer, n_warmup, total_steps, peak_lr, o.final_lr_ratio)

    start_epoch, global_step = 0, 0
    if resume is not None:
        raw_model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scaler.load_state_dict(resume["scaler"])
        schedule.load_state_dict(resume["scheduler"])
        # A changed number of epochs or learning rate re-plans the schedule from the current step.
        schedule.total_steps, schedule.base_lr = total_steps, peak_lr
        schedule.final_lr_ratio = o.final_lr_ratio
        schedule.load_state_dict(schedule.state_dict())
        start_epoch, global_step = int(resume["epoch"]), int(resume["global_step"])
        rng = resume.get("rng") or []
        if len(rng) == ctx.world:
            _set_rng_state(rng[ctx.rank], device)
        else:
            warnings.warn(
                f"{ckpt_path} was written by {len(rng)} processes, this run has {ctx.world}: random states reseeded",
                stacklevel=2,
            )
            _seed_all(r.seed + 1000 * start_epoch + ctx.rank)

    fwd: nn.Module = _ViewsForward(raw_model, cfg.model.concat_views)
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel as DDP

        fwd = DDP(fwd, device_ids=[device.index] if device.type == "cuda" else None)
    if r.compile:
        fwd = torch.compile(fwd)  # type: ignore[assignment]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # ---- run folder (first write) ------------------------------------------------------------------------
    step_log = epoch_log = tb = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp-*"):  # temporary files of a crashed checkpoint write
            stale.unlink()
        save_yaml(cfg, out / "config.yaml")
        step_log = _CSVLog(out / "metrics_step.csv")
        epoch_log = _CSVLog(out / "metrics_epoch.csv")
        if resume is not None:
            step_log.truncate_after("step", global_step)
            epoch_log.truncate_after("epoch", start_epoch)
            if changed:
                _say(cfg, f"resuming {out} at epoch {start_epoch} with changed settings: {', '.join(changed)}")
            else:
                _say(cfg, f"resuming {out} at epoch {start_epoch}")
        if r.tensorboard:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(out / "tb"), purge_step=global_step if resume is not None else None)
    _barrier(ctx)

    history: list[dict[str, Any]] = []
    end_epoch = o.epochs if r.stop_after is None else min(o.epochs, r.stop_after)
    term_names: list[str] | None = None
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )
    train_seconds = 0.0
    try:
        for epoch in range(start_epoch, end_epoch):
            loader.set_epoch(epoch)
            raw_model.train()
            sums: dict[str, float] = {}
            n_steps = 0
            t_epoch = time.perf_counter()
            bar = None
            if main and not r.quiet:
                from tqdm.auto import tqdm

                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{o.epochs}", dynamic_ncols=True, leave=False)
            t_last = time.perf_counter()
            lr = schedule.get_last_lr()[0]
            for x, _ in loader:
                x = x.to(device, non_blocking=True)
                with torch.no_grad():
                    views = augment(x)
                    views = list(views) if isinstance(views, (list, tuple)) else [views]
                    if r.channels_last:
                        views = [v.contiguous(memory_format=torch.channels_last) for v in views]
                with autocast():
                    embs = fwd(views)
                if ctx.active:
                    ok = torch.tensor(
                        [float(all(bool(torch.isfinite(e.detach().float().sum())) for e in embs))], device=device
                    )
                    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
                    if float(ok) < 1:
                        _nonfinite(epoch, global_step, {"embeddings": math.nan}, ckpt_path)
                try:
                    res = loss_fn.forward_terms(embs)
                except ValueError as exc:
                    if "non-finite" in str(exc):
                        _nonfinite(epoch, global_step, {"embeddings": math.nan}, ckpt_path, exc)
                    raise
                names = ["loss", *res.terms]
                values = torch.stack([res.loss.detach().float(), *(t.detach().float() for t in res.terms.values())])
                values = _all_mean(values, ctx).tolist()
                scalars = dict(zip(names, values))
                if not all(math.isfinite(v) for v in values):
                    _nonfinite(epoch, global_step, scalars, ckpt_path)
                lr = schedule.get_last_lr()[0]
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(res.loss).backward()
                if o.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(raw_model.parameters(), o.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                global_step += 1
                n_steps += 1
                now = time.perf_counter()
                ips = o.batch_size / max(now - t_last, 1e-9)
                t_last = now
                for k, v in scalars.items():
                    sums[k] = sums.get(k, 0.0) + v
                if term_names is None:
                    term_names = names
                if main and global_step % r.log_every == 0:
                    row = {"step": global_step, "epoch": epoch + 1, **scalars, "lr": lr, "images_per_s": ips}
                    step_log.write(row)  # type: ignore[union-attr]
                    if tb is not None:
                        for k, v in scalars.items():
                            tb.add_scalar(f"step/{k}", v, global_step)
                        tb.add_scalar("step/lr", lr, global_step)
                        tb.add_scalar("step/images_per_s", ips, global_step)
                if bar is not None:
                    bar.set_postfix({**_short(scalars), "lr": f"{lr:.3g}", "img/s": f"{ips:.0f}"}, refresh=False)
                    bar.update(1)
            if bar is not None:
                bar.close()
            epoch_seconds = time.perf_counter() - t_epoch
            train_seconds += epoch_seconds
            metrics: dict[str, Any] = {"epoch": epoch + 1, "step": global_step}
            metrics.update({k: v / max(n_steps, 1) for k, v in sums.items()})
            metrics.update(
                {
                    "lr": lr,
                    "images_per_s": n_steps * o.batch_size / max(epoch_seconds, 1e-9),
                    "epoch_seconds": epoch_seconds,
                }
            )
            # ---- monitors (rank 0, no collectives) ---------------------------------------------------------
            last = epoch + 1 == o.epochs
            due = r.eval_every > 0 and ((epoch + 1) % r.eval_every == 0 or last)
            mon: dict[str, Any] = dict.fromkeys(_MONITOR_KEYS)
            if main and due and monitor_bank is not None:
                t0 = time.perf_counter()
                fe = {
                    "batch_size": cfg.eval.batch_size,
                    "device": device,
                    "size": d.crop_size,
                    "channels_last": r.channels_last,
                    "amp_dtype": amp_dtype,
                    "num_workers": d.num_workers if not monitor_bank.in_memory else 0,
                }
                bank = extract_features(raw_model, monitor_bank, **fe)
                queries = extract_features(raw_model, monitor_val, **fe) if monitor_val is not None else None
                if queries is not None:
                    mon["knn_val"] = knn_accuracy(
                        bank.features,
                        bank.labels,
                        queries.features,
                        queries.labels,
                        cfg.eval.monitor_k,
                        temperature=cfg.eval.knn_temperature,
                        num_classes=train_data.num_classes,
                    )
                embs_mon = (queries if queries is not None else bank).embeddings
                if embs_mon is not None and embs_mon.shape[1] >= 2:
                    mon.update(collapse_monitors(embs_mon, mon_kernel))
                mon["monitor_seconds"] = time.perf_counter() - t0
            metrics.update(mon)
            metrics["peak_rss_mb"] = _peak_rss_mb()
            if device.type == "cuda":
                metrics["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            history.append(metrics)
            # ---- checkpoint ---------------------------------------------------------------------------------
            rng = [_rng_state(device)]
            if ctx.active:
                gathered: list[Any] = [None] * ctx.world
                dist.all_gather_object(gathered, rng[0])
                rng = gathered
            if main:
                for p in raw_model.parameters():
                    if not bool(torch.isfinite(p.detach()).all()):  # pragma: no cover - guarded by the loss check
                        raise NonFiniteLossError(f"non-finite parameters after epoch {epoch + 1}; {ckpt_path} kept")
                state = {
                    "format": CHECKPOINT_FORMAT,
                    "epoch": epoch + 1,
                    "global_step": global_step,
                    "model": raw_model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "rng": rng,
                    "world_size": ctx.world,
                    "config": config_to_dict(cfg),
                    "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                    "torch_version": str(torch.__version__),
                }
                save_checkpoint(state, ckpt_path)
                if r.checkpoint_every and (epoch + 1) % r.checkpoint_every == 0:
                    keep = out / f"epoch-{epoch + 1:04d}.pt"
                    tmp = out / f".{keep.name}.tmp-{os.getpid()}"
                    shutil.copyfile(ckpt_path, tmp)
                    os.replace(tmp, keep)
                epoch_log.write(metrics)  # type: ignore[union-attr]
                if tb is not None:
                    for k, v in metrics.items():
                        if isinstance(v, (int, float)) and v is not None and k not in ("epoch", "step"):
                            tb.add_scalar(f"epoch/{k}", v, epoch + 1)
                    tb.flush()
                _say(cfg, _epoch_line(metrics, o.epochs, term_names or []))
            _barrier(ctx)
    finally:
        if tb is not None:
            tb.close()

    epochs_done = end_epoch if end_epoch > start_epoch else start_epoch
    completed = epochs_done >= o.epochs
    result = TrainResult(out, epochs_done, completed, history, None, ckpt_path)
    if not completed or not r.final_eval:
        return result
    eval_path = out / "eval.json"
    if not history and eval_path.is_file():  # nothing trained now: the run was already complete and evaluated
        import json

        with open(eval_path) as f:
            result.eval = json.load(f)
        return result
    if main:
        from .evaluate import evaluate_model

        t0 = time.perf_counter()
        ev = evaluate_model(raw_model, cfg, device=device, amp_dtype=amp_dtype)
        summary = {
            "method": cfg.loss.method,
            "kernel": cfg.loss.kernel,
            "loss_options": dict(cfg.loss.options),
            "dataset": d.dataset,
            "backbone": cfg.model.backbone,
            "projector": cfg.model.projector,
            "epochs": o.epochs,
            "batch_size": o.batch_size,
            "world_size": ctx.world,
            "eval": ev,
            "eval_seconds": time.perf_counter() - t0,
            "train": _train_summary(out, history),
        }
        write_json(summary, eval_path)
        result.eval = summary
        _say(cfg, _eval_line(summary))
    return result


_MONITOR_KEYS = (
    "knn_val",
    "mmd2_uniform",
    "rayleigh",
    "rayleigh_p",
    "rayleigh_z",
    "effective_rank",
    "embedding_std",
    "monitor_seconds",
)


def _nonfinite(
    epoch: int, step: int, scalars: dict[str, float], ckpt: Path, cause: BaseException | None = None
) -> None:
    kept = f"the last good checkpoint {ckpt} is kept" if ckpt.exists() else "no checkpoint was written yet"
    terms = ", ".join(f"{k}={v:.4g}" for k, v in scalars.items())
    raise NonFiniteLossError(
        f"non-finite loss at epoch {epoch + 1}, step {step + 1} ({terms}); the run stopped before updating the "
        f"parameters and {kept}. Lower the learning rate (--lr), use --amp bf16/off, or check the data, then "
        f"resume with the same --out."
    ) from cause


def _train_summary(out: Path, history: list[dict[str, Any]]) -> dict[str, Any]:
    """Throughput and memory over every epoch of the run (read back from metrics_epoch.csv when resumed)."""
    rows = history
    path = out / "metrics_epoch.csv"
    if path.is_file():
        with open(path, newline="") as f:
            rows = [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]
    ips = [float(r["images_per_s"]) for r in rows if r.get("images_per_s") not in (None, "")]
    secs = [float(r["epoch_seconds"]) for r in rows if r.get("epoch_seconds") not in (None, "")]
    rss = [float(r["peak_rss_mb"]) for r in rows if r.get("peak_rss_mb") not in (None, "")]
    last = rows[-1] if rows else {}
    return {
        "images_per_s": float(np.mean(ips)) if ips else None,
        "epoch_seconds": float(np.mean(secs)) if secs else None,
        "train_seconds": float(np.sum(secs)) if secs else None,
        "peak_rss_mb": max(rss) if rss else None,
        "peak_gpu_mb": last.get("peak_gpu_mb"),
        "last_epoch": {k: v for k, v in last.items() if v not in (None, "")},
    }


def _num(v: str) -> Any:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def _say(cfg: Config, msg: str) -> None:
    print(msg, flush=True)


def _epoch_line(m: dict[str, Any], epochs: int, names: list[str]) -> str:
    parts = [f"epoch {m['epoch']}/{epochs}"]
    parts += [f"{k} {m[k]:.4g}" for k in names if m.get(k) is not None]
    parts.append(f"lr {m['lr']:.3g}")
    parts.append(f"{m['images_per_s']:.0f} img/s")
    parts.append(f"{m['epoch_seconds']:.0f} s")
    for k, label in (("knn_val", "kNN(val)"), ("mmd2_uniform", "MMD2"), ("effective_rank", "eff.rank")):
        if m.get(k) is not None:
            parts.append(f"{label} {m[k]:.4g}")
    return " | ".join(parts)


def _eval_line(s: dict[str, Any]) -> str:
    ev = s["eval"]
    parts = [f"final evaluation ({s['method']})"]
    knn = ev["knn"]
    if "test" in knn:
        parts.append("kNN test " + ", ".join(f"k={k}: {100 * v:.2f}%" for k, v in knn["test"].items()))
    if "linear" in ev and ev["linear"]["test_acc"] is not None:
        parts.append(f"linear test {100 * ev['linear']['test_acc']:.2f}% (lr {ev['linear']['best_lr']})")
    if "logreg" in ev and ev["logreg"]["test_acc"] is not None:
        parts.append(f"logreg test {100 * ev['logreg']['test_acc']:.2f}% (C {ev['logreg']['best_c']})")
    return " | ".join(parts)


def load_run_config(out: str | os.PathLike) -> Config:
    """The configuration stored in a run folder's ``config.yaml``."""
    from .config import load_yaml

    return config_from_dict(load_yaml(Path(out) / "config.yaml"))
