"""Benchmark of kernel matrices: every kernel family, numpy and torch side by side, and GeometricKernels.

Four parts, all measured in one process on the same points:

1. ``kernel.gram(X)`` for n in ``--n`` (default 1000, 4000) and q in ``--q`` (default 3, 10, 100), for every
   family of the kernel grammar (and the Matérn kernels), with numpy float64 and torch float64 (CPU) input. The
   kernel's spectrum and series degree are computed (and cached) by a warm-up call on 4 points first: the times
   are those of the kernel matrix itself. GeometricKernels 1.0.1 (numpy backend, ``MaternKarhunenLoeveKernel`` with
   its default 25 levels, the same parameterisation as ``MaternKernel``), where it is installed, at n = 1000 only
   unless ``--gk-all`` (it takes about 15 s per 1000 x 1000 matrix here); its largest difference to dotkernels is
   recorded too. geomstats 2.8 (a dependency of GeometricKernels 1.0.1) calls ``numpy.trapz``, removed in numpy
   2.4: the script aliases it to ``numpy.trapezoid`` before importing GeometricKernels.
2. Matérn and heat kernels (nu = 1/2, 3/2, 5/2, inf; lengthscales 0.1 and 0.5) at the same n and q: the plan's and
   the table's build times (cold caches), ``kernel.gram(X)`` by the tabulated profile (numpy, torch, and torch with
   a lengthscale that requires grad, backward pass included), and by the direct route (the plan's sums for every
   entry, as before the table) in the same run where predicted under ``--max-seconds``, with the largest difference
   of the two matrices and ``profile_error``; a paragraph (:func:`matern_summary`) sums the table up.
3. Long Gegenbauer series under torch: a 200 x 200 matrix of a series of L terms with and without gradient, the
   in-place summation of ``legendre_series`` against the per-term allocating loop it replaced (kept below as
   ``allocating_clenshaw`` for the comparison).
4. ``mmd2_uniform_features`` on n = 10^6 points (``--feature-n``), against the exact ``mmd2_uniform`` on
   ``--exact-n`` points (its cost grows as n^2).

Times are the best of ``--repeats`` runs (one run when a call takes more than 2 s); BLAS and torch run on one
thread so that the ratios are not distorted by contention. The load average (``os.getloadavg``, as ``uptime`` shows
it) at the start and the end goes into the JSON.

Usage::

    python benchmarks/bench_gram.py            # the full grid, writes benchmarks/results/gram.json
    python benchmarks/bench_gram.py --quick    # n = 500, q = 3 and 10, no GeometricKernels at n > 500
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

from dotkernels import legendre_series, mmd2_uniform, parse_kernel, sample_uniform
from dotkernels.features import mmd2_uniform_features

FAMILIES = [
    "exponential:kappa=1",
    "gaussian:gamma=1",
    "polynomial:p=3,c=1",
    "monomial:p=2",
    "poisson:rho=0.5",
    "generating:rho=0.5",
    "imq:c=1,beta=0.5",
    "distance:s=1",
    "arccos:order=1",
    "gine",
    "nngp:depth=2",
    "ntk:depth=2",
    "bandlimited:degree=3",
    "legendre:1,1,1,1",
    "sfrik",
    "heat:time=0.1",
    "matern:nu=0.5,lengthscale=0.5",
    "matern:nu=1.5,lengthscale=0.5",
    "matern:nu=inf,lengthscale=0.5",
]
#: (nu, lengthscale) of the Matérn kernels compared with GeometricKernels
GK_MATERN = [(0.5, 0.5), (math.inf, 0.5)]
#: (nu, lengthscale) of the Matérn section: the table route against the direct route
MATERN = [(nu, ell) for nu in (0.5, 1.5, 2.5, math.inf) for ell in (0.1, 0.5)]
MATERN_QUICK = [(1.5, 0.5), (math.inf, 0.1)]
RESULTS = Path(__file__).resolve().parent / "results" / "gram.json"


def _time(fn, repeats: int, budget: float = 1.0) -> float:
    """Best of ``repeats`` runs; one run when a call takes > 2 s; fast calls repeat while the total is < budget."""
    best, total, runs = float("inf"), 0.0, 0
    while True:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, total, runs = min(best, elapsed), total + elapsed, runs + 1
        if elapsed > 2.0 or runs >= 50 or (runs >= repeats and total > budget):
            return best


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def _geometric_kernels():
    """GeometricKernels' sphere space and Matérn kernel class, or None when it is not installed."""
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # noqa: NPY201  (geomstats 2.8 still calls it; removed in numpy 2.4)
    try:
        import logging

        logging.getLogger("geometric_kernels").setLevel(logging.WARNING)
        from geometric_kernels.kernels import MaternKarhunenLoeveKernel
        from geometric_kernels.spaces import Hypersphere
    except Exception:  # not installed, or failing to import with this numpy
        return None
    return Hypersphere, MaternKarhunenLoeveKernel


def _kernels(names):
    out = []
    for name in names:
        try:
            out.append((name, parse_kernel(name)))
        except (ValueError, TypeError) as exc:  # a family this version does not have
            print(f"skipped {name}: {exc}", file=sys.stderr)
    return out


def gram_rows(args, torch, gk) -> list[dict]:
    rows = []
    kernels = _kernels(args.families)
    for n in args.n:
        for q in args.q:
            X = sample_uniform(n, q=q, rng=0)
            Xt = torch.tensor(X) if torch is not None else None
            for name, kernel in kernels:
                row = {"kernel": name, "n": n, "q": q}
                before = [r for r in rows if (r["kernel"], r["q"]) == (name, q) and "numpy_s" in r]
                if before:
                    took, m = before[-1]["numpy_s"], before[-1]["n"]
                else:  # a probe on a quarter of the points predicts the cost of the full matrix
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        kernel.gram(X[:4])  # spectrum and series degree, cached
                        m = max(n // 4, 4)
                        took = _time(lambda k=kernel, Y=X[:m]: k.gram(Y), 1, budget=0.0)
                predicted = took * (n / m) ** 2
                if predicted > args.max_seconds:
                    row["skipped"] = f"n = {m} took {took:.1f} s: ~{predicted:.0f} s here"
                    rows.append(row)
                    print(f"{name:<32} n={n:<5} q={q:<4} skipped: {row['skipped']}", flush=True)
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    kernel.gram(X[:4])  # spectrum and series degree, cached
                    row["numpy_s"] = _time(lambda k=kernel, X=X: k.gram(X), args.repeats)
                    if torch is not None and row["numpy_s"] <= args.max_seconds:
                        kernel.gram(Xt[:4])
                        row["torch_s"] = _time(lambda k=kernel, Xt=Xt: k.gram(Xt), args.repeats)
                rows.append(row)
                print(_row_line(row), flush=True)
            if gk is not None and (n <= 1000 or args.gk_all):
                rows.extend(_gk_rows(gk, X, n, q, args))
    return rows


def _gk_rows(gk, X, n, q, args) -> list[dict]:
    Hypersphere, MaternKarhunenLoeveKernel = gk
    rows = []
    for nu, lengthscale in GK_MATERN:
        name = f"matern:nu={'inf' if math.isinf(nu) else nu},lengthscale={lengthscale}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kernel = MaternKarhunenLoeveKernel(Hypersphere(dim=q - 1), num_levels=25)
            params = kernel.init_params()
            params["nu"], params["lengthscale"] = np.array([nu]), np.array([lengthscale])
            holder = {}

            def run(kernel=kernel, params=params, holder=holder):
                holder["K"] = kernel.K(params, X, X)

            seconds = _time(run, 1, budget=0.0)
            ours = parse_kernel(name).gram(X)
        K = np.asarray(holder["K"], dtype=np.float64)
        finite = bool(np.all(np.isfinite(K)))
        row = {
            "kernel": name,
            "n": n,
            "q": q,
            "geometric_kernels_s": seconds,
            "geometric_kernels_max_abs_diff": float(np.max(np.abs(K - ours))) if finite else None,
        }
        rows.append(row)
        print(_row_line(row), flush=True)
    return rows


def _row_line(row: dict) -> str:
    parts = [f"{row['kernel']:<32} n={row['n']:<5} q={row['q']:<4}"]
    for key in ("numpy_s", "torch_s", "geometric_kernels_s"):
        if key in row:
            parts.append(f"{key}={row[key]:.4f}")
    if "geometric_kernels_max_abs_diff" in row:
        diff = row["geometric_kernels_max_abs_diff"]
        parts.append("max|diff|=" + ("non-finite" if diff is None else f"{diff:.2g}"))
    return "  ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Matérn and heat kernels: the tabulated profile against the direct route


class _direct_route:
    """Inside this block MaternKernel takes its direct route (the plan's sums, no table) for every call."""

    def __enter__(self):
        from dotkernels.kernels import matern

        self.saved = matern._TABLE_MIN_POINTS
        matern._TABLE_MIN_POINTS = math.inf

    def __exit__(self, *exc):
        from dotkernels.kernels import matern

        matern._TABLE_MIN_POINTS = self.saved


def _clear_matern_caches():
    from dotkernels.kernels import matern

    for cached in (matern._matern_plan, matern._heat_plan, matern._heat_slope_plan, matern._matern_table):
        cached.cache_clear()
    matern._heat_table.cache_clear()


def _matern_name(nu: float, ell: float) -> str:
    return f"matern:nu={'inf' if math.isinf(nu) else nu},lengthscale={ell}"


def matern_rows(args, torch) -> list[dict]:
    """Per (nu, lengthscale, q, n): plan and table build (cold caches), the Gram matrix by the table route (numpy,
    torch, torch with the lengthscale's gradient), and by the direct route where predicted under --max-seconds."""
    from dotkernels import MaternKernel
    from dotkernels.kernels import matern

    rows = []
    for q in args.q:
        points = {n: sample_uniform(n, q=q, rng=0) for n in args.n}
        for nu, ell in MATERN_QUICK if args.quick else MATERN:
            kernel = MaternKernel(nu, ell)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _clear_matern_caches()
                start = time.perf_counter()
                plan = kernel._plan(q)
                plan_s = time.perf_counter() - start
                long_head = plan.head.size > matern._TABLE_MIN_HEAD
                start = time.perf_counter()
                table = kernel._table(q) if long_head else None
                table_s = time.perf_counter() - start if long_head else None
                bound = kernel.profile_error(q=q)
            direct_took = None  # (seconds, n) of the last direct numpy call, to predict the next
            for n in args.n:
                X = points[n]
                tabulated = long_head and n * n >= matern._TABLE_MIN_POINTS
                row = {"kernel": _matern_name(nu, ell), "n": n, "q": q, "head_terms": int(plan.head.size)}
                row.update(route="table" if tabulated else "direct", plan_s=plan_s, profile_error=bound)
                if tabulated:
                    row.update(table_s=table_s, table_intervals=table.intervals)
                holder = {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row["numpy_s"] = _time(lambda X=X, k=kernel, h=holder: h.update(K=k.gram(X)), args.repeats)
                    if torch is not None:
                        Xt = torch.tensor(X)
                        row["torch_s"] = _time(lambda Xt=Xt, k=kernel: k.gram(Xt), args.repeats)
                        row["torch_grad_s"] = _lengthscale_gradient_time(torch, nu, ell, Xt, args.repeats)
                    if tabulated:
                        _direct_cells(args, torch, kernel, X, row, holder, direct_took)
                        if "direct_numpy_s" in row:
                            direct_took = (row["direct_numpy_s"], n)
                rows.append(row)
                print(_matern_line(row), flush=True)
    return rows


def _lengthscale_gradient_time(torch, nu, ell, Xt, repeats) -> float:
    """The Gram matrix with a lengthscale that requires grad, and the backward pass of its sum (shifted plan and
    its table built first, untimed)."""
    from dotkernels import MaternKernel

    def run():
        p = torch.tensor(ell, dtype=torch.float64, requires_grad=True)
        MaternKernel(nu, p).gram(Xt).sum().backward()

    run()
    return _time(run, repeats)


def _direct_cells(args, torch, kernel, X, row, holder, direct_took) -> None:
    """The direct route's time (numpy, torch) where predicted under --max-seconds, and its largest difference to the
    table route's matrix."""
    n = X.shape[0]
    with _direct_route():
        if direct_took is None:  # a probe on a quarter of the points predicts the cost of the full matrix
            m = max(n // 4, 4)
            direct_took = (_time(lambda Y=X[:m]: kernel.gram(Y), 1, budget=0.0), m)
        took, m = direct_took
        predicted = took * (n / m) ** 2
        if predicted > args.max_seconds:
            row["direct_skipped"] = f"n = {m} took {took:.1f} s: ~{predicted:.0f} s here"
            return
        direct = {}
        row["direct_numpy_s"] = _time(lambda: direct.update(K=kernel.gram(X)), args.repeats)
        row["max_abs_diff"] = float(np.max(np.abs(direct["K"] - holder["K"])))
        if torch is not None and row["direct_numpy_s"] <= args.max_seconds:
            Xt = torch.tensor(X)
            row["direct_torch_s"] = _time(lambda: kernel.gram(Xt), args.repeats)


def _matern_line(row: dict) -> str:
    parts = [f"{row['kernel']:<32} n={row['n']:<5} q={row['q']:<4} L={row['head_terms']:<6} {row['route']}"]
    for key in ("plan_s", "table_s", "numpy_s", "torch_s", "torch_grad_s", "direct_numpy_s", "direct_torch_s"):
        if row.get(key) is not None:
            parts.append(f"{key}={row[key]:.4f}")
    if "direct_skipped" in row:
        parts.append(f"direct skipped: {row['direct_skipped']}")
    return "  ".join(parts)


def matern_markdown(rows: list[dict]) -> str:
    """One row per (kernel, q, n): build times, the table route, the direct route and their ratio."""
    lines = [
        "| kernel | q | n | head terms | plan s | table build s | intervals | numpy s | torch s "
        "| torch, lengthscale gradient s | direct numpy s | direct torch s | direct / table (numpy) "
        "| max abs diff | profile_error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tabulated = r["route"] == "table"
        same = "same route" if not tabulated else ("skipped" if "direct_skipped" in r else "")
        cells = [
            f"`{r['kernel']}`",
            str(r["q"]),
            str(r["n"]),
            str(r["head_terms"]),
            f"{r['plan_s']:.3f}",
            f"{r['table_s']:.3f}" if tabulated else "no table",
            str(r["table_intervals"]) if tabulated else "",
            f"{r['numpy_s']:.3f}",
            f"{r['torch_s']:.3f}" if "torch_s" in r else "",
            f"{r['torch_grad_s']:.3f}" if "torch_grad_s" in r else "",
            f"{r['direct_numpy_s']:.3f}" if "direct_numpy_s" in r else same,
            f"{r['direct_torch_s']:.3f}" if "direct_torch_s" in r else (same or "skipped"),
            f"{r['direct_numpy_s'] / r['numpy_s']:.0f}x" if "direct_numpy_s" in r else "",
            f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "",
            f"{r['profile_error']:.1e}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def matern_summary(rows: list[dict]) -> str:
    """The paragraph under the Matérn table: at n = 1000, the table route against the direct route (ratios, times,
    build costs, and the largest difference of the two in units of ``profile_error``)."""
    table = [r for r in rows if r["route"] == "table"]
    small = [r for r in table if r["n"] == 1000]
    both = [r for r in small if "direct_numpy_s" in r]
    numpy_ratio = [r["direct_numpy_s"] / r["numpy_s"] for r in both]
    torch_ratio = [r["direct_torch_s"] / r["torch_s"] for r in both if "direct_torch_s" in r and "torch_s" in r]
    diff = [r["max_abs_diff"] / r["profile_error"] for r in table if "max_abs_diff" in r]
    if not (both and torch_ratio and diff):
        return ""  # no tabulated kernel at n = 1000 with both routes timed (e.g. --quick)

    def span(values: list[float], digits: int) -> str:
        low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
        return low if low == high else f"{low} to {high}"

    return (
        f"At n = 1000 the table route is {span(numpy_ratio, 0)} times faster than the direct route with numpy "
        f"({span(torch_ratio, 0)} with torch), and a Matérn Gram matrix of 1000 points by the table takes "
        f"{span([r['numpy_s'] for r in small], 2)} s with numpy, {span([r['torch_s'] for r in small], 2)} s with "
        f"torch and {span([r['torch_grad_s'] for r in small], 2)} s with the lengthscale's gradient (a step of "
        f"marginal-likelihood learning), where the direct route took up to "
        f"{max(r['direct_numpy_s'] for r in both):.0f} s. Plans took at most {max(r['plan_s'] for r in rows):.2f} s "
        f"and tables at most {max(r['table_s'] for r in table):.2f} s to build "
        f"({span([r['table_intervals'] for r in table], 0)} intervals of degree 20). The two routes differ by at "
        f"most {max(diff):.2f} of `profile_error` where both ran."
    )


# ---------------------------------------------------------------------------------------------------------------
# long series under torch


def allocating_clenshaw(coef, q, t):
    """The loop ``legendre_series`` ran before for torch: a new tensor per operation and term (reference only)."""
    from dotkernels.gegenbauer import recurrence_coefficients

    L = len(coef) - 1
    alpha, beta = recurrence_coefficients(L, q=q)
    alpha, beta = alpha.tolist(), [*beta.tolist(), 0.0]
    b_next, b_next2 = t * 0.0, t * 0.0
    for k in range(L, -1, -1):
        b = coef[k] + alpha[k] * t * b_next - beta[k + 1] * b_next2
        b_next2, b_next = b_next, b
    return b_next


def series_rows(args, torch) -> list[dict]:
    if torch is None:
        return []
    X = sample_uniform(args.series_n, q=3, rng=1)
    T = np.clip(X @ X.T, -1.0, 1.0)
    rows = []
    Tt = torch.tensor(T)

    def with_grad(fn):
        def run():
            t = Tt.clone().requires_grad_(True)
            fn(t).sum().backward()

        return run

    for terms in args.series_terms:
        coef = (1.0 / np.arange(1, terms + 1) ** 2).tolist()

        def ours(t, coef=coef):
            return legendre_series(coef, t, q=3, validate=False)

        def allocating(t, coef=coef):
            return allocating_clenshaw(coef, 3, t)

        row = {"terms": terms, "points": args.series_n}
        row["numpy_s"] = _time(lambda: ours(T), args.repeats)
        row["torch_s"] = _time(lambda: ours(Tt), args.repeats)
        row["torch_grad_s"] = _time(with_grad(ours), args.repeats)
        if terms <= args.allocating_max_terms:
            row["allocating_torch_s"] = _time(lambda: allocating(Tt), 1, budget=0.0)
            row["allocating_torch_grad_s"] = _time(with_grad(allocating), 1, budget=0.0)
        rows.append(row)
        print(
            f"series of {terms} terms on {args.series_n}x{args.series_n}: "
            + "  ".join(f"{k}={v:.3f}" for k, v in row.items() if k.endswith("_s")),
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------
# linear-time MMD


def feature_mmd_rows(args) -> list[dict]:
    rows = []
    q = args.feature_q
    Z = sample_uniform(args.feature_n, q=q, rng=2)
    for name in ("sfrik", "gaussian:gamma=1"):
        kernel = parse_kernel(name)
        holder = {}

        def run(kernel=kernel, holder=holder):
            holder["r"] = mmd2_uniform_features(Z, kernel, n_directions=args.directions, rng=3)

        seconds = _time(run, 1, budget=0.0)
        result = holder["r"]
        Zs = Z[: args.exact_n]
        exact_s = _time(lambda k=kernel, Zs=Zs: mmd2_uniform(Zs, k, method="blocked"), 1, budget=0.0)
        features_small = _time(
            lambda k=kernel, Zs=Zs: mmd2_uniform_features(Zs, k, n_directions=args.directions, rng=3), 1, budget=0.0
        )
        row = {
            "kernel": name,
            "n": args.feature_n,
            "q": q,
            "n_directions": args.directions,
            "degree": result.degree,
            "features_s": seconds,
            "estimate": result.estimate,
            "standard_error": result.standard_error,
            "truncation_error": result.truncation_error,
            "exact_n": args.exact_n,
            "exact_s_at_exact_n": exact_s,
            "features_s_at_exact_n": features_small,
        }
        rows.append(row)
        print(
            f"feature MMD {name}: n={args.feature_n} q={q} m={args.directions} L={result.degree}: {seconds:.2f} s, "
            f"estimate {result.estimate:.3g} +- {result.standard_error:.2g}; exact at n={args.exact_n}: "
            f"{exact_s:.2f} s (features there {features_small:.3f} s)",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------


def _cell(row: dict, key: str) -> str:
    if key in row:
        return f"{row[key]:.3f}"
    return "skipped" if row.get("skipped") or (key == "torch_s" and "numpy_s" in row) else ""


def markdown(rows: list[dict]) -> str:
    """One table per n: a row per kernel, numpy and torch seconds per q, and GeometricKernels where measured."""
    lines = []
    for n in sorted({r["n"] for r in rows}):
        qs = sorted({r["q"] for r in rows if r["n"] == n})
        lines.append(f"n = {n} (seconds)\n")
        header = "| kernel | " + " | ".join(f"q={q} numpy | q={q} torch" for q in qs) + " |"
        lines += [header, "|---|" + "---:|" * (2 * len(qs))]
        for name in dict.fromkeys(r["kernel"] for r in rows if r["n"] == n and "geometric_kernels_s" not in r):
            cells = []
            for q in qs:
                key = (name, n, q)
                row = next(
                    (r for r in rows if (r["kernel"], r["n"], r["q"]) == key and "geometric_kernels_s" not in r), {}
                )
                cells += [_cell(row, "numpy_s"), _cell(row, "torch_s")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        gk = [r for r in rows if r["n"] == n and "geometric_kernels_s" in r]
        if gk:
            lines += [
                "",
                "| GeometricKernels 1.0.1 (numpy, 25 levels) | q | seconds | dotkernels numpy s | ratio "
                "| max abs diff |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for r in gk:
                ours = next(
                    (x for x in rows if (x["kernel"], x["n"], x["q"]) == (r["kernel"], n, r["q"]) and "numpy_s" in x),
                    {"numpy_s": math.nan},
                )
                diff = r["geometric_kernels_max_abs_diff"]
                shown = "non-finite" if diff is None else f"{diff:.1e}"
                lines.append(
                    f"| {r['kernel']} | {r['q']} | {r['geometric_kernels_s']:.2f} | {ours['numpy_s']:.3f} | "
                    f"{r['geometric_kernels_s'] / ours['numpy_s']:.0f}x | {shown} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (n = 500, q = 3, 10), a short run")
    parser.add_argument("--n", type=int, nargs="+", default=None, help="numbers of points (default 1000 4000)")
    parser.add_argument("--q", type=int, nargs="+", default=None, help="dimensions (default 3 10 100)")
    parser.add_argument("--families", nargs="+", default=FAMILIES, help="kernel strings (default: every family)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gk-all", action="store_true", help="GeometricKernels at every n (slow), not only n <= 1000")
    parser.add_argument("--no-gk", action="store_true", help="leave GeometricKernels out")
    parser.add_argument("--no-matern", action="store_true", help="leave the Matérn section out")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="skip a kernel matrix predicted (as n^2, from the previous n or a probe on n/4 points) to take longer, "
        "and torch after a numpy call that took longer",
    )
    parser.add_argument("--series-n", type=int, default=None, help="points of the long-series matrix (default 200)")
    parser.add_argument("--series-terms", type=int, nargs="+", default=None, help="default 2048 65536")
    parser.add_argument("--allocating-max-terms", type=int, default=2048, help="largest series for the old loop")
    parser.add_argument("--feature-n", type=int, default=None, help="points of the feature MMD (default 10^6)")
    parser.add_argument("--feature-q", type=int, default=32)
    parser.add_argument("--directions", type=int, default=256)
    parser.add_argument("--exact-n", type=int, default=None, help="points of the exact MMD (default 10^4)")
    parser.add_argument("--json", type=Path, default=None, help=f"output (default {RESULTS}; none with --quick)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.n = args.n or ([500] if quick else [1000, 4000])
    args.q = args.q or ([3, 10] if quick else [3, 10, 100])
    args.series_n = args.series_n or (100 if quick else 200)
    args.series_terms = args.series_terms or ([512] if quick else [2048, 65536])
    args.feature_n = args.feature_n or (20000 if quick else 1_000_000)
    args.exact_n = args.exact_n or (2000 if quick else 10000)
    out = args.json or (None if quick else RESULTS)

    torch = _torch()
    gk = None if args.no_gk else _geometric_kernels()
    load_start = _load_average()
    start = time.perf_counter()
    rows = gram_rows(args, torch, gk)
    maternal = [] if args.no_matern else matern_rows(args, torch)
    series = series_rows(args, torch)
    feature = feature_mmd_rows(args)
    total = time.perf_counter() - start
    load_end = _load_average()
    print()
    print(markdown(rows))
    if maternal:
        print(matern_markdown(maternal))
        summary = matern_summary(maternal)
        if summary:
            print(f"\n{summary}")
    print(f"total {total:.0f} s; load average (1, 5, 15 min) {load_start} at the start, {load_end} at the end")
    if out is not None:
        record = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/bench_gram.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "threads": 1,
                "numpy": np.__version__,
                "torch": getattr(torch, "__version__", None),
                "geometric_kernels": _version("geometric_kernels") if gk is not None else None,
            },
            "total_s": total,
            "load_average": {"start": load_start, "end": load_end},
            "gram": rows,
            "matern": maternal,
            "series": series,
            "feature_mmd": feature,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


def _load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (as ``uptime`` prints them)."""
    return [round(x, 2) for x in os.getloadavg()]


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module.replace("_", "-"))
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
