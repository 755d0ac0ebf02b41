"""Command-line entry points: ``dotkernels-pretrain`` and ``dotkernels-eval``.

``dotkernels-pretrain [--preset NAME] [--config FILE.yaml] [--method M] [--kernel SPEC] [--out DIR] [...]``
pretrains (or resumes, when ``--out`` is an existing run folder); see :mod:`dotkernels_ssl.config` for every
option (``--help`` lists them). Under ``torchrun --nproc_per_node N`` the same command trains on N processes.

``dotkernels-eval (--checkpoint FILE | --run DIR) [--device D] [--out FILE.json] [--SECTION.FIELD VALUE ...]``
evaluates a saved checkpoint with the protocol of its run (kNN, linear probe, logistic regression; choices on the
validation split, accuracies on test) and prints the result as JSON.

Both return 0 on success, 2 for a configuration or usage error, 1 for a runtime failure (missing data, corrupt
checkpoint, non-finite loss), printing one clear message instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["eval_main", "pretrain_main"]


def _error(prog: str, exc: BaseException, code: int) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return code


def pretrain_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dotkernels-pretrain`` / ``python -m dotkernels_ssl.pretrain``; returns the exit status."""
    from .config import ConfigError, parse_config

    prog = "dotkernels-pretrain"
    try:
        cfg = parse_config(list(sys.argv[1:] if argv is None else argv))  # --help exits here, before torch loads
    except ConfigError as exc:
        return _error(prog, exc, 2)
    from .data import DatasetNotFoundError
    from .train import CheckpointError, NonFiniteLossError, train

    try:
        train(cfg)
    except ConfigError as exc:
        return _error(prog, exc, 2)
    except (DatasetNotFoundError, CheckpointError, NonFiniteLossError) as exc:
        return _error(prog, exc, 1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; resume with the same --out", file=sys.stderr)
        return 130
    return 0


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dotkernels-eval",
        description=(
            "Evaluate a pretrained checkpoint: weighted kNN, linear probe and logistic regression on frozen "
            "features; hyper-parameters chosen on the validation split, accuracies reported on test."
        ),
        epilog="Any stored setting can be overridden as --SECTION.FIELD VALUE (e.g. --eval.linear_epochs 10).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a checkpoint file (run/last.pt, run/epoch-0010.pt)")
    src.add_argument("--run", help="a run folder (its last.pt)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--data-dir", help="folder holding the data set (default: the run's)")
    p.add_argument("--out", help="also write the result as JSON to this file")
    p.add_argument("--linear-epochs", type=int, help="epochs of the linear probe")
    p.add_argument("--eval-limit", type=int, help="use only the first N images of each split")
    p.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    p.add_argument("--no-logreg", action="store_true", help="skip the logistic regression")
    p.add_argument("--quiet", action="store_true", help="print nothing (the result goes only to --out, required)")
    return p


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dotkernels-eval`` / ``python -m dotkernels_ssl.evaluate``; returns the exit status."""
    from .config import ConfigError
    from .data import DatasetNotFoundError
    from .evaluate import evaluate_checkpoint
    from .train import CheckpointError

    prog = "dotkernels-eval"
    parser = _eval_parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    overrides: dict[str, str] = {}
    i = 0
    while i < len(rest):
        name, eq, value = rest[i].partition("=")
        if not name.startswith("--") or "." not in name:
            parser.error(f"unrecognized argument {rest[i]!r}")
        if not eq:
            if i + 1 >= len(rest):
                parser.error(f"{name} needs a value")
            value = rest[i + 1]
            i += 1
        overrides[name[2:]] = value
        i += 1
    if args.quiet and args.out is None:
        parser.error("--quiet prints nothing, so it needs --out FILE.json")
    if args.data_dir is not None:
        overrides["data.data_dir"] = args.data_dir
    if args.linear_epochs is not None:
        overrides["eval.linear_epochs"] = str(args.linear_epochs)
    if args.eval_limit is not None:
        overrides["data.eval_limit"] = str(args.eval_limit)
    if args.no_linear:
        overrides["eval.linear"] = "false"
    if args.no_logreg:
        overrides["eval.logreg"] = "false"
    try:
        result = evaluate_checkpoint(
            args.checkpoint, run=args.run, overrides=overrides, device=args.device, out=args.out
        )
    except ConfigError as exc:
        return _error(prog, exc, 2)
    except (DatasetNotFoundError, CheckpointError) as exc:
        return _error(prog, exc, 1)
    if not args.quiet:
        print(json.dumps(result, indent=2, default=str))
    return 0
