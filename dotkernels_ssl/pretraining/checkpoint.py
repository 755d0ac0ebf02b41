"""Checkpoints of a run: atomic writes, verified reads, the random states of every rank, and resume checks.

A checkpoint (``last.pt``, ``epoch-XXXX.pt``) is a dict with the keys ``format`` (:data:`CHECKPOINT_FORMAT`),
``epoch``, ``global_step``, ``epoch_step``, ``partial``, ``model``, ``optimizer``, ``scaler``, ``rng`` (one state
per rank), ``world_size``, ``config``, ``metrics`` and ``torch_version``. The learning-rate schedule is not stored:
it is a function of the global step, rebuilt on resume (so that a changed ``--epochs`` or ``--lr`` re-plans the rest
of the curve); the ``scheduler`` entry of checkpoints written by earlier versions is ignored. It is written to a
temporary file, flushed and renamed over the previous one, so a crash never leaves a partial file and the last good
checkpoint is kept; it is read with ``weights_only=True`` (no code runs) and a corrupt file raises
:class:`CheckpointError` without being touched.
"""

from __future__ import annotations

import os
import random
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Config, ConfigError, config_to_dict

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "check_resume_config",
    "keep_copy",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "dotkernels_ssl.checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a dotkernels_ssl checkpoint (the file is left untouched)."""


def rng_state(device: torch.device) -> dict[str, Any]:
    """The python, numpy and torch (and CUDA) random states of this process, as tensors and plain values."""
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


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore a state of :func:`rng_state`."""
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
    """Read a checkpoint written by the training loop (``weights_only``: no code is run).

    Raises
    ------
    CheckpointError
        The file is missing, unreadable (truncated, corrupt) or lacks the checkpoint's keys. The message names
        the file; the file itself is never modified.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is a wrong or truncated file
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a checkpoint (not the zip archive torch.save writes: cut short, or "
            "another file). It was left untouched: move or delete it to start the run over, or restore a good copy "
            "(epoch-XXXX.pt) as last.pt."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle/zip/EOF errors...
        why = (str(exc).strip().splitlines() or [""])[0][:160]  # torch's messages run over many lines
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {why}). It was left untouched: "
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


def keep_copy(path: str | os.PathLike, epoch: int) -> Path:
    """Copy ``path`` to ``epoch-XXXX.pt`` beside it (through a temporary file and a rename)."""
    path = Path(path)
    keep = path.with_name(f"epoch-{epoch:04d}.pt")
    tmp = path.with_name(f".{keep.name}.tmp-{os.getpid()}")
    shutil.copyfile(path, tmp)
    os.replace(tmp, keep)
    return keep


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


def check_resume_config(stored: dict[str, Any], cfg: Config, path: Path) -> list[str]:
    """The keys whose value differs from the stored configuration; :class:`ConfigError` if one may not change."""
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
