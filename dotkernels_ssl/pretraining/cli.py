"""Command-line entry points: ``dotkernels-pretrain`` and ``dotkernels-eval``.

``dotkernels-pretrain [--preset NAME] [--config FILE.yaml] [--method M] [--kernel SPEC] [--out DIR] [...]``
pretrains (or resumes, when ``--out`` is an existing run folder; a complete run prints its results again and
writes nothing); see :mod:`dotkernels_ssl.pretraining.config` for every option (``--help`` lists them). Under
``torchrun --nproc_per_node N`` the same command (``python -m dotkernels_ssl.pretrain``) trains on N processes;
each program ends with ``os._exit`` once its run is over and its process group destroyed (see
:func:`_end_worker`); :func:`pretrain_main`, the same as a function, returns its exit status.

``dotkernels-eval (--checkpoint FILE | --run DIR) [--device D] [--out FILE.json] [--SECTION.FIELD VALUE ...]``
evaluates a saved checkpoint with the protocol of its run (kNN, linear probe, logistic regression; choices on the
validation split, accuracies on test), prints the same summary as ``dotkernels-pretrain`` and writes the whole
result as JSON to ``--out`` (never over a run's own files).

Both parse and validate their arguments before importing torch (``--help`` and configuration errors answer at
once) and print one clear line instead of a traceback. Exit status: 0 on success; 2 when the command refuses to
start (a usage or configuration error, a run folder or data folder that cannot be used, a missing data set, an
unreadable checkpoint or result file): nothing was written then; 1 for a failure while working (non-finite
loss, out of memory...); 130 after Ctrl-C and 143 after SIGTERM (a checkpoint of the current step is written
first during training).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .config import (
    RUN_FILES,
    ConfigError,
    check_data_dir,
    check_device,
    check_run_folder,
    check_writable,
    is_run_folder,
    parse_config,
)

__all__ = ["eval_main", "pretrain_command", "pretrain_main"]


def _refusals() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "refused to start, nothing written" (imported once torch is loaded anyway)."""
    from .checkpoint import CheckpointError
    from .data import DatasetNotFoundError

    return ConfigError, CheckpointError, DatasetNotFoundError


def _guarded(prog: str, work: Callable[[], Any]) -> int:
    """Run ``work``; every failure becomes one line on stderr and an exit status (no traceback)."""
    try:
        work()
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        text = str(exc.args[0]) if exc.args and exc.args[0] else "interrupted"
        print(f"{prog}: {text}", file=sys.stderr)
        return 128 + int(getattr(exc, "signum", 2))
    except BrokenPipeError:
        return 1
    except Exception as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, _refusals()) else 1
    return 0


def pretrain_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dotkernels-pretrain`` / ``python -m dotkernels_ssl.pretrain``; returns the exit status."""
    prog = "dotkernels-pretrain"
    try:
        cfg = parse_config(list(sys.argv[1:] if argv is None else argv))  # --help exits here
        check_data_dir(cfg.data.data_dir, cfg.data.dataset)
        check_run_folder(cfg.out_dir)
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of --help (e.g. `| head`) closed the pipe: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

    def work() -> None:
        from .loop import train  # torch loads only once the arguments are known to be valid

        train(cfg)

    return _guarded(prog, work)


def pretrain_command() -> int:
    """The program ``dotkernels-pretrain`` (and ``python -m dotkernels_ssl.pretrain``): :func:`pretrain_main` on
    the command line; a ``torchrun`` worker then ends at once (:func:`_end_worker`) instead of returning."""
    status = pretrain_main()
    if _is_torchrun_worker():
        _end_worker(status)
    return status


def _is_torchrun_worker() -> bool:
    """True in a process that ``torchrun`` started (its environment names a rank and a world size); the test of
    :func:`dotkernels_ssl.losses.distributed.launched_by_torchrun`, without importing torch."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


_exit = os._exit  # what _end_worker calls (a test replaces it here, not in the os module)


def _end_worker(status: int) -> NoReturn:
    """End a ``torchrun`` worker whose run is over (its process group destroyed, its files closed) at once.

    The interpreter's normal finalization can race gloo's worker threads, which release their last tensors (and
    take the GIL to do so) while the interpreter is being torn down: the process then aborts after a successful
    run ("terminate called without an active exception", SIGABRT), at random, and ``torchrun`` reports the whole
    job as failed. Nothing is left to do in the process at this point, so it skips finalization.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _exit(status)


class _Parser(argparse.ArgumentParser):
    """argparse with errors in one line (``prog: error: ...``, exit status 2), like ``dotkernels-pretrain``."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` (and where to find the usage) and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (--help for the usage)\n")


def _eval_parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    p.add_argument("--out", help="write the whole result as JSON to this file (not a file of a run folder)")
    p.add_argument("--linear-epochs", type=int, help="epochs of the linear probe")
    p.add_argument("--eval-limit", type=int, help="use only the first N images of each split")
    p.add_argument("--no-linear", action="store_true", help="skip the linear probe")
    p.add_argument("--no-logreg", action="store_true", help="skip the logistic regression")
    p.add_argument("--quiet", action="store_true", help="print nothing (the result goes only to --out, required)")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON instead of the summary")
    return p


def _eval_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> dict[str, str]:
    """The dotted ``--SECTION.FIELD VALUE`` overrides and the flat options as configuration keys."""
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
    flat = {
        "data.data_dir": args.data_dir,
        "eval.linear_epochs": args.linear_epochs,
        "data.eval_limit": args.eval_limit,
        "eval.linear": "false" if args.no_linear else None,
        "eval.logreg": "false" if args.no_logreg else None,
    }
    overrides.update({k: str(v) for k, v in flat.items() if v is not None})
    return overrides


def _check_eval_out(parser: argparse.ArgumentParser, out: str) -> None:
    """Refuse an ``--out`` below a file, a folder, or a file of a run folder (``eval.json``, ``last.pt``...)."""
    path = Path(out)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            parser.error(f"--out {out} is below the file {parent}")
    if path.is_dir():
        parser.error(f"--out {out} is a folder; pass a file name such as eval-epoch8.json")
    if is_run_folder(path.parent) and (path.name in (*RUN_FILES, "eval.json") or path.suffix in (".pt", ".csv")):
        parser.error(
            f"--out {out} would overwrite a file of the run folder {path.parent}; pass another name "
            f"(e.g. {path.parent / 'eval-again.json'})"
        )
    if path.exists() and path.suffix != ".json":
        parser.error(f"--out {out} exists and is not a .json file; pass a new file name")
    try:
        check_writable(path)
    except ConfigError as exc:
        parser.error(str(exc))


def eval_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dotkernels-eval``; returns the exit status."""
    prog = "dotkernels-eval"
    parser = _eval_parser()
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    overrides = _eval_overrides(parser, args, rest)
    if args.quiet and args.out is None:
        parser.error("--quiet prints nothing, so it needs --out FILE.json")
    if args.out is not None:
        _check_eval_out(parser, args.out)
    try:
        check_device(args.device)
        check_data_dir(args.data_dir, "the run's data set")
    except ConfigError as exc:
        parser.error(str(exc))

    def work() -> None:
        from .evaluation import evaluate_checkpoint  # torch loads only once the arguments are known to be valid
        from .logs import summary_lines

        progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        result = evaluate_checkpoint(
            args.checkpoint, run=args.run, overrides=overrides, device=args.device, out=args.out, progress=progress
        )
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        elif not args.quiet:
            for line in summary_lines(result, Path(args.out) if args.out else None):
                print(line)

    return _guarded(prog, work)


if __name__ == "__main__":
    raise SystemExit(pretrain_command())
