"""Gegenbauer evaluation: dotkernels' normalised recurrence / Clenshaw against scipy.special.eval_gegenbauer.

Measures (1) the time of a degree-L series sum_l a_l P_{l,q}(t) on many points, by Clenshaw and by summing
normalised scipy values, and (2) accuracy and overflow of single polynomials at large q against mpmath (60 digits).

    python benchmarks/bench_legendre.py            # L = 50 on 10^6 points, q = 32768
    python benchmarks/bench_legendre.py --quick    # 10^5 points

Writes benchmarks/results/legendre.json and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import mpmath as mp
import numpy as np
import scipy
from scipy.special import eval_gegenbauer

from dotkernels import legendre, legendre_series


def _best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _scipy_series(a: np.ndarray, q: int, t: np.ndarray) -> np.ndarray:
    lam = (q - 2) / 2
    out = np.zeros_like(t)
    for l, coeff in enumerate(a):
        out += coeff * eval_gegenbauer(l, lam, t) / eval_gegenbauer(l, lam, 1.0)
    return out


def _reference(l: int, q: int, t: float) -> float:
    with mp.workdps(60):
        t = mp.mpf(t)
        vals = [mp.mpf(1), t]
        for k in range(1, l):
            vals.append(((2 * k + q - 2) * t * vals[k] - k * vals[k - 1]) / (k + q - 2))
        return float(vals[l])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 points instead of 10^6")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "legendre.json"))
    args = parser.parse_args()

    n_points = 10**5 if args.quick else 10**6
    L = 50
    rng = np.random.default_rng(0)
    t = rng.uniform(-1, 1, n_points)
    a = rng.uniform(0, 1, L + 1)
    speed = []
    print(f"series of degree L = {L} on {n_points:,} points (best of {args.repeat})")
    print(f"{'q':>6} {'dotkernels s':>13} {'scipy s':>9} {'speed-up':>9} {'max |diff|':>11}")
    for q in (3, 64, 1024):
        ours = _best_time(lambda q=q: legendre_series(a, t, q=q, validate=False), args.repeat)
        theirs = _best_time(lambda q=q: _scipy_series(a, q, t), args.repeat)
        diff = float(np.max(np.abs(legendre_series(a, t, q=q) - _scipy_series(a, q, t))))
        speed.append(
            {
                "q": q,
                "L": L,
                "points": n_points,
                "dotkernels_s": ours,
                "scipy_s": theirs,
                "speedup": theirs / ours,
                "max_abs_diff": diff,
            }
        )
        print(f"{q:>6} {ours:13.3f} {theirs:9.3f} {theirs / ours:9.1f} {diff:11.2e}")

    q = 32768
    points = [0.0, 1 / np.sqrt(q), 3 / np.sqrt(q), 0.1, 0.5, 1.0]
    accuracy = []
    print(f"\nsingle polynomials at q = {q} vs mpmath (60 digits): max absolute error")
    print(f"t in {[round(float(x), 5) for x in points]}")
    print(f"{'l':>5} {'dotkernels':>12} {'scipy':>12}")
    with np.errstate(all="ignore"):
        for l in (2, 10, 50, 100, 200):
            refs = np.array([_reference(l, q, x) for x in points])
            ours = legendre(l, np.array(points), q=q)
            theirs = eval_gegenbauer(l, (q - 2) / 2, np.array(points)) / eval_gegenbauer(l, (q - 2) / 2, 1.0)
            scale = 1.0  # |P| <= 1: absolute error (relative error is meaningless near the zeros of P)
            err_ours = float(np.max(np.abs(ours - refs) / scale))
            err_theirs = np.abs(theirs - refs) / scale
            err_theirs = float(np.max(err_theirs)) if np.all(np.isfinite(theirs)) else float("nan")
            accuracy.append(
                {
                    "l": l,
                    "q": q,
                    "dotkernels_max_abs_err": err_ours,
                    "scipy_max_abs_err": err_theirs,
                    "scipy_finite": bool(np.all(np.isfinite(theirs))),
                }
            )
            shown = f"{err_theirs:12.2e}" if np.isfinite(err_theirs) else f"{'nan/inf':>12}"
            print(f"{l:>5} {err_ours:12.2e} {shown}")

    result = {
        "machine": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "series_speed": speed,
        "large_q_accuracy": accuracy,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
