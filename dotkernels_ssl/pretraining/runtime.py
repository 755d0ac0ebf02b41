"""Where a run executes: the device, the processes of a ``torchrun`` launch, mixed precision and seeding.

Process-group calls go through :mod:`dotkernels_ssl.losses.distributed`, the one module that talks to
``torch.distributed``.
"""

from __future__ import annotations

import random
import resource
import sys
import warnings

import numpy as np
import torch

from ..losses import distributed as D
from .config import Config, ConfigError

__all__ = ["autocast_dtype", "native_cpu_bf16", "peak_rss_mb", "resolve_device", "seed_all", "start_processes"]


def resolve_device(spec: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """``"auto"``: ``cuda:LOCAL_RANK`` (or the current CUDA device) when CUDA is available, else the CPU.

    Raises
    ------
    ConfigError
        A CUDA device is requested on a machine without CUDA.
    """
    try:
        return D.select_device(spec, local_rank=local_rank)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    except RuntimeError:  # torch's list of every device type it knows
        raise ConfigError(f"unknown device {spec!r}; choose auto, cpu, cuda or cuda:N (e.g. cuda:1)") from None


def start_processes(cfg: Config) -> tuple[D.DistributedContext, torch.device]:
    """This process's device and distributed context (joining the process group of a ``torchrun`` launch).

    End it with :func:`dotkernels_ssl.losses.distributed.shutdown`.
    """
    several = D.launched_by_torchrun() or D.is_distributed()
    device = resolve_device(cfg.run.device, D.local_rank() if several else None)
    ctx = D.init_from_env(device, backend=cfg.run.dist_backend, timeout_s=cfg.run.dist_timeout_s)
    return ctx, device


def native_cpu_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (avx512_bf16 or AMX); without them bf16 autocast is emulated."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``run.amp``: ``"auto"`` is bf16 where the hardware computes it natively.

    ``"auto"`` is bf16 (or fp16) on a GPU, bf16 on a CPU with bfloat16 instructions (:func:`native_cpu_bf16`:
    1.7 times the images per second of float32 in ``benchmarks/bench_pretrain.py --settings-only``), and full
    precision on other CPUs. ``"bf16"`` on a CPU without bfloat16 instructions warns: it is emulated there and may
    be slower than full precision.
    """
    if amp == "off":
        return None
    if amp == "bf16":
        if device.type == "cpu" and not native_cpu_bf16():
            warnings.warn(
                "run.amp bf16: this CPU has no bfloat16 instructions (avx512_bf16 or AMX); bfloat16 autocast is "
                "emulated and may be slower than --amp off",
                stacklevel=2,
            )
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and native_cpu_bf16():
        return torch.bfloat16
    return None


def seed_all(seed: int) -> None:
    """Seed python's, numpy's legacy global and torch's generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global state is what user code may draw from
    torch.manual_seed(seed)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20
