"""Benchmark of mmd2_uniform per method ("moments", "gram", "blocked") over a grid of (n, q), numpy float64.

For every (n, q) the three methods run side by side on the same sample in the same process: time is the best of
``--repeats`` runs (a single run when one already takes more than 2 s), peak extra memory is measured by
tracemalloc in a separate run (numpy reports its buffers to tracemalloc). BLAS runs on ``--threads`` threads
(default 1, through threadpoolctl when it is installed) so that the ratios are not distorted by thread contention
on a shared machine. "gram" is skipped where its n x n float64
matrix alone would exceed ``--max-gram-gb``; its would-be size is reported instead. Every row also records the
largest difference between the methods' values (they compute the same number).

Usage::

    python benchmarks/bench_mmd.py            # full grid, writes benchmarks/results/mmd.json
    python benchmarks/bench_mmd.py --quick    # small grid
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from dotkernels import SFRIKKernel, parse_kernel
from dotkernels.mmd import mmd2_uniform
from dotkernels.sampling import sample_uniform

FULL_GRID = [(1024, 16), (1024, 256), (4096, 64), (4096, 512), (20000, 128)]
QUICK_GRID = [(1024, 16), (4096, 64)]
METHODS = ("moments", "gram", "blocked")


def _time(fn, repeats: int, budget: float = 1.0) -> float:
    """Best of ``repeats`` runs; a single run when one takes > 2 s; fast calls keep repeating (up to 200 runs)
    while the total stays under ``budget`` seconds, so that the minimum is robust on a busy machine."""
    best = float("inf")
    total = 0.0
    runs = 0
    while True:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        total += elapsed
        runs += 1
        if elapsed > 2.0 or runs >= 200 or (runs >= repeats and total > budget):
            return best


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


def run(grid, kernel, repeats: int, max_gram_gb: float, seed: int = 0) -> list[dict]:
    rows = []
    for n, q in grid:
        Z = sample_uniform(n, q=q, rng=seed)
        gram_gb = 8.0 * n * n / 1e9
        values = {}
        row_group = []
        for method in METHODS:
            row = {"n": n, "q": q, "method": method, "gram_matrix_gb": gram_gb}
            if method == "moments" and (kernel.degree is None or kernel.degree > 2):
                row.update(skipped="kernel degree > 2")
            elif method == "gram" and gram_gb > max_gram_gb:
                row.update(skipped=f"n x n matrix {gram_gb:.2f} GB > --max-gram-gb {max_gram_gb:g}")
            else:

                def call(method=method, Z=Z):
                    return mmd2_uniform(Z, kernel, method=method)

                values[method] = float(call())  # warm-up (spectrum cache, BLAS threads) and value
                row["seconds"] = _time(call, repeats)
                row["peak_mb"] = _peak_bytes(call) / 2**20
                row["value"] = values[method]
            row_group.append(row)
        timed = {r["method"]: r["seconds"] for r in row_group if "seconds" in r}
        spread = max(values.values()) - min(values.values()) if len(values) > 1 else 0.0
        for row in row_group:
            if "seconds" in row:
                if "gram" in timed:
                    row["gram_over_method"] = timed["gram"] / row["seconds"]
                if "blocked" in timed:
                    row["blocked_over_method"] = timed["blocked"] / row["seconds"]
            row["max_value_difference"] = spread
        rows.extend(row_group)
    return rows


def table(rows: list[dict]) -> str:
    head = (
        f"{'n':>6} {'q':>5} {'method':>8} {'time [ms]':>11} {'peak [MB]':>10} {'gram/this':>10} "
        f"{'blocked/this':>13}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if "seconds" in r:
            ratios = [f"{r[key]:.1f}x" if key in r else "-" for key in ("gram_over_method", "blocked_over_method")]
            note = f"max |value difference| {r['max_value_difference']:.1e}" if r["method"] == "moments" else ""
            lines.append(
                f"{r['n']:>6} {r['q']:>5} {r['method']:>8} {1e3 * r['seconds']:>11.2f} {r['peak_mb']:>10.1f} "
                f"{ratios[0]:>10} {ratios[1]:>13}  {note}"
            )
        else:
            lines.append(
                f"{r['n']:>6} {r['q']:>5} {r['method']:>8} {'skipped':>11} {'':>10} {'':>10} {'':>13}  {r['skipped']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small grid")
    parser.add_argument(
        "--max-gram-gb",
        type=float,
        default=1.0,
        help="skip 'gram' where its n x n float64 matrix exceeds this (GB); default 1",
    )
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs (default 5)")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (threadpoolctl); 0 leaves the library default; default 1"
    )
    parser.add_argument(
        "--kernel", default=None, help="kernel spec for parse_kernel (default: the SFRIK L = 2 kernel, b = (1, 40))"
    )
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "mmd.json"))
    args = parser.parse_args(argv)

    kernel = SFRIKKernel([1.0, 40.0]) if args.kernel is None else parse_kernel(args.kernel)
    grid = QUICK_GRID if args.quick else FULL_GRID
    threads = "library default"
    limiter = None
    if args.threads > 0:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("threadpoolctl is not installed: BLAS threads left at the library default", file=sys.stderr)
        else:
            limiter = threadpool_limits(limits=args.threads, user_api="blas")
            threads = str(args.threads)
    try:
        rows = run(grid, kernel, max(1, args.repeats), args.max_gram_gb)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    print(
        f"mmd2_uniform, V-statistic, kernel {kernel!r}, numpy {np.__version__}, float64, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), BLAS threads: {threads}"
    )
    print(table(rows))
    headline = [r for r in rows if r["n"] == 4096 and r["q"] == 64 and r["method"] == "moments" and "seconds" in r]
    if headline and "gram_over_method" in headline[0]:
        print(f"n=4096, q=64: moments is {headline[0]['gram_over_method']:.0f}x faster than gram")
    result = {
        "benchmark": "mmd2_uniform",
        "estimator": "v",
        "kernel": repr(kernel),
        "dtype": "float64",
        "backend": f"numpy {np.__version__}",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "blas_threads": threads,
        "max_gram_gb": args.max_gram_gb,
        "quick": args.quick,
        "rows": rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
