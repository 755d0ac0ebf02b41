"""``dotkernels-report``: print the Gegenbauer spectrum of a kernel in one or more dimensions.

Examples
--------
::

    dotkernels-report --kernel sfrik --q 3 64 8192 --degree 6
    dotkernels-report --kernel gaussian:gamma=2.5 --q 128 --degree 10 --json spectrum.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

import numpy as np

from ._validate import check_degree, check_dimension
from .gegenbauer import log_harmonic_dimension
from .kernels import parse_kernel


def spectrum_report(kernel_spec: str, dimensions: Sequence[int], degree: int) -> dict:
    """Spectrum, Mercer eigenvalues, truncation error and definiteness of a kernel, per dimension, as plain data.

    ``positive_semidefinite`` is Schoenberg's criterion (every a_l >= 0); ``strictly_positive_definite`` is the
    strict condition (True, False, or None when it cannot be decided).

    Examples
    --------
    >>> rep = spectrum_report("sfrik", [3], 4)
    >>> rep["dimensions"]["3"]["positive_semidefinite"], rep["dimensions"]["3"]["strictly_positive_definite"]
    (True, False)
    """
    kernel = parse_kernel(kernel_spec)
    degree = check_degree(degree)
    out: dict = {"kernel": repr(kernel), "degree": degree, "dimensions": {}}
    for q in dimensions:
        q = check_dimension(q)
        log_a, sign = kernel.log_spectrum(degree, q=q)
        log_n = log_harmonic_dimension(np.arange(degree + 1), q=q)
        out["dimensions"][str(q)] = {
            "a": [
                float(s * math.exp(v)) if s != 0 and v < 709 else (0.0 if s == 0 else float("inf"))
                for v, s in zip(log_a, sign)
            ],
            "log10_abs_a": [float(v / math.log(10)) if s != 0 else None for v, s in zip(log_a, sign)],
            "log10_mercer_eigenvalue": [
                float((v - n) / math.log(10)) if s != 0 else None for v, s, n in zip(log_a, sign, log_n)
            ],
            "sign": [int(s) for s in sign],
            "uniform_mean_embedding": kernel.uniform_mean_embedding(q=q),
            "phi_at_one": kernel.phi_at_one(q=q),
            "truncation_error": kernel.truncation_error(degree, q=q),
            "positive_semidefinite": kernel.is_positive_semidefinite(q=q),
            "strictly_positive_definite": kernel.is_strictly_positive_definite(q=q),
        }
    return out


def _definiteness(rep: dict) -> str:
    if not rep["positive_semidefinite"]:
        return "not positive semi-definite"
    strict = rep["strictly_positive_definite"]
    if strict is None:
        return "positive semi-definite (strict positive definiteness undecided)"
    return "strictly positive definite" if strict else "positive semi-definite, not strictly positive definite"


def _format(report: dict) -> str:
    lines = [f"kernel: {report['kernel']}"]
    for q, rep in report["dimensions"].items():
        lines.append("")
        lines.append(
            f"q = {q}: a_0 (uniform mean embedding) = {rep['uniform_mean_embedding']:.6g}, phi(1) = "
            f"{rep['phi_at_one']:.6g}, truncation error at degree {report['degree']}: {rep['truncation_error']:.3g}, "
            f"{_definiteness(rep)}"
        )
        lines.append(f"{'l':>4} {'a_l':>14} {'log10|a_l|':>12} {'log10 a_l/N(q,l)':>18}")
        for l, (a, la, lm) in enumerate(zip(rep["a"], rep["log10_abs_a"], rep["log10_mercer_eigenvalue"])):
            la_s = f"{la:12.4f}" if la is not None else f"{'-inf':>12}"
            lm_s = f"{lm:18.4f}" if lm is not None else f"{'-inf':>18}"
            lines.append(f"{l:>4} {a:14.6e} {la_s} {lm_s}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dotkernels-report", description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default="sfrik", help="kernel string, e.g. 'gaussian:gamma=2.5' (default: sfrik)")
    parser.add_argument("--q", type=int, nargs="+", default=[3, 64, 8192], help="dimensions (default: 3 64 8192)")
    parser.add_argument("--degree", type=int, default=6, help="highest degree (default: 6)")
    parser.add_argument("--json", help="also write the report to this JSON file")
    args = parser.parse_args(argv)
    try:
        report = spectrum_report(args.kernel, args.q, args.degree)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"dotkernels-report: error: {exc}\n")
    if args.json:
        try:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2)
        except OSError as exc:
            parser.exit(1, f"dotkernels-report: error: cannot write --json {args.json}: {exc.strerror}\n")
    try:
        print(_format(report), flush=True)
    except BrokenPipeError:
        # the reader (e.g. `| head`) closed the pipe: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
