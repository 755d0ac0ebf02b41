"""Benchmark of the uniformity tests: one test at a time and many at once, n = 1000 .. 100000, q = 3 .. 1000.

Two parts, numpy float64 on ``--threads`` threads (default 1; set through the environment before numpy loads):

1. The battery target: the seven tests Rayleigh, Bingham, Ajne, Gine_Gn, Bakshaev, Poisson and Softmax on one
   sample (n = 10000, q = 10) as seven ``uniformity_test`` calls and as one ``uniformity_test(Z, [the seven])``
   call (the battery), each timed cold (first call in the process: the null laws are built) and warm (laws
   cached); the largest relative difference between the two routes' statistics and p-values is recorded.
2. A grid over (n, q): every test of the seven alone (``uniformity_test``, warm) and the seven, and every spherical
   test sphunif has ("all"), in one battery call. Pairwise tests at n = 100000 (5e9 pairs) run only with
   ``--large``.

Usage::

    python benchmarks/bench_uniformity.py            # writes benchmarks/results/uniformity.json, prints tables
    python benchmarks/bench_uniformity.py --quick    # n = 1000, 10000 and q = 3, 10 only
    python benchmarks/bench_uniformity.py --large    # adds n = 100000 for the pairwise tests (minutes)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

SEVEN = ["Rayleigh", "Bingham", "Ajne", "Gine_Gn", "Bakshaev", "Poisson", "Softmax"]


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--large", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "uniformity.json"))
    return p.parse_args()


def main() -> None:
    args = _parse()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np

    from dotkernels.sampling import sample_uniform
    from dotkernels.uniformity import uniformity_battery, uniformity_test

    def timed(fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        return time.perf_counter() - t0, out

    # ------------------------------------------------------------------------------------------- battery target
    Z = sample_uniform(10000, q=10, rng=0)
    cold_single, singles = timed(lambda: [uniformity_test(Z, name) for name in SEVEN])
    warm_single, singles = timed(lambda: [uniformity_test(Z, name) for name in SEVEN])
    cold_battery, battery = timed(lambda: uniformity_test(Z, SEVEN))
    warm_battery, battery = timed(lambda: uniformity_test(Z, SEVEN))
    stat_diff = max(
        abs(battery[name].statistic - r.statistic) / max(abs(r.statistic), 1e-300)
        for name, r in zip(SEVEN, singles, strict=True)
    )
    p_diff = max(
        abs(battery[name].pvalue - r.pvalue) / max(r.pvalue, 1e-300) for name, r in zip(SEVEN, singles, strict=True)
    )
    target = {
        "n": 10000,
        "q": 10,
        "tests": SEVEN,
        "seven_calls_cold_s": cold_single,
        "seven_calls_warm_s": warm_single,
        "battery_cold_s": cold_battery,
        "battery_warm_s": warm_battery,
        "max_rel_diff_statistic": stat_diff,
        "max_rel_diff_pvalue": p_diff,
    }
    print("Seven tests, n = 10000, q = 10 (seconds):")
    print(f"  seven uniformity_test calls: cold {cold_single:.2f}, warm {warm_single:.2f}")
    print(f"  one battery call:            cold {cold_battery:.2f}, warm {warm_battery:.2f}")
    print(f"  largest relative difference: statistics {stat_diff:.1e}, p-values {p_diff:.1e}")

    # ------------------------------------------------------------------------------------------- grid
    ns = [1000, 10000] if args.quick else [1000, 10000, 100000]
    qs = [3, 10] if args.quick else [3, 10, 100, 1000]
    rows = []
    for n in ns:
        for q in qs:
            Z = sample_uniform(n, q=q, rng=1)
            row = {"n": n, "q": q}
            pairwise = n < 100000 or args.large  # 5e9 pairs at n = 100000
            for name in SEVEN:
                if name in ("Rayleigh", "Bingham") or pairwise:
                    try:
                        uniformity_test(Z[:50], name)  # the null law is built (and cached) outside the timing
                        row[name] = timed(uniformity_test, Z, name)[0]
                    except (ValueError, ArithmeticError) as exc:  # e.g. a law float64 cannot resolve
                        row[name] = f"error: {exc}"[:120]
            if pairwise:
                uniformity_battery(Z[:50], SEVEN)
                row["battery_seven"] = timed(uniformity_battery, Z, SEVEN)[0]
                uniformity_battery(Z[:50], "all", rng=0)
                row["battery_all"] = timed(uniformity_battery, Z, "all", rng=0)[0]
                row["battery_all_tests"] = len(uniformity_battery(Z[:50], "all", rng=0))
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    cols = [*SEVEN, "battery_seven", "battery_all"]
    print("\n| n | q | " + " | ".join(cols) + " |")
    print("|---:|---:|" + "---:|" * len(cols))
    for row in rows:
        cells = [(f"{row[c]:.3f}" if isinstance(row[c], float) else "error") if c in row else "" for c in cols]
        print(f"| {row['n']} | {row['q']} | " + " | ".join(cells) + " |")

    out = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "threads": args.threads,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "numpy": np.__version__,
        "target": target,
        "grid": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
