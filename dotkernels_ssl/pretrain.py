"""``python -m dotkernels_ssl.pretrain [options]``: the same as ``dotkernels-pretrain`` (for ``torchrun``)."""

from __future__ import annotations

from .pretraining.cli import pretrain_command, pretrain_main

__all__ = ["pretrain_command", "pretrain_main"]

if __name__ == "__main__":
    raise SystemExit(pretrain_command())
