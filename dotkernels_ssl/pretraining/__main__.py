"""``python -m dotkernels_ssl.pretraining [options]``: the same as ``dotkernels-pretrain``."""

from __future__ import annotations

from .cli import pretrain_command

if __name__ == "__main__":
    raise SystemExit(pretrain_command())
