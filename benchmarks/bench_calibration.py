"""Calibration of the uniformity tests: the measured size of every test's default p-value, and power at n = 50.

For every test of sphunif (34 circular tests at q = 2, 19 spherical ones at q = 3, 10, 100), n in {10, 20, 50,
200} and the levels 1 %, 5 %, 10 %: the rejection rate of the default p-value (``method="auto"``) and of the
asymptotic law (``method="asymptotic"``) under uniformity, on the same samples, with binomial standard errors
(:func:`dotkernels.calibration.size_study`); the p-value monitors of ``dotkernels_ssl`` (``monitor_pvalues``); and
sphunif's conventions where the library differs (CJ12's upper tail, Hodges-Ajne's P(H > h)). Then the power of the
default p-values at n = 50 against a von Mises-Fisher law, a Watson law and a vMF mixture
(:func:`dotkernels.calibration.power_study`).

Usage::

    python benchmarks/bench_calibration.py              # benchmarks/results/calibration.json, docs/calibration.md
    python benchmarks/bench_calibration.py --quick      # 200 samples per cell (minutes), for a look
    python benchmarks/bench_calibration.py --docs-only  # rewrites docs/calibration.md from the JSON

``render`` (the page from the JSON) imports nothing but the standard library: the tests check that the committed
page is the one the committed JSON gives.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "calibration.json"
PAGE = ROOT / "docs" / "calibration.md"
NS = (10, 20, 50, 200)
QS = (2, 3, 10, 100)
LEVELS = (0.01, 0.05, 0.10)
POWER_N = 50
SAMPLES = 2000
POWER_SAMPLES = 400


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=SAMPLES, help="uniform samples per (n, q)")
    p.add_argument("--power-samples", type=int, default=POWER_SAMPLES, help="samples per alternative and q")
    p.add_argument("--quick", action="store_true", help="200 samples per cell")
    p.add_argument("--docs-only", action="store_true", help="only rewrite docs/calibration.md from the JSON")
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--page", default=str(PAGE))
    return p.parse_args()


def run(samples: int, power_samples: int, seed: int) -> dict:
    """The measurements as JSON-ready data."""
    import numpy as np

    from dotkernels.calibration import power_study, size_study
    from dotkernels.uniformity import _circular as C
    from dotkernels.uniformity import _spherical as S
    from dotkernels.uniformity import available_uniformity_tests
    from dotkernels_ssl.pretraining.monitors import monitor_pvalues

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    tests: dict = {}
    for q in QS:
        for name in available_uniformity_tests(q=q):
            tests[name] = name
    for label, fn in monitor_pvalues().items():
        tests[f"dotkernels_ssl monitor {label}"] = fn
    size = size_study(tests, n=NS, q=QS, alpha=LEVELS, n_samples=samples, rng=rng, method=["auto", "asymptotic"])
    t_size = time.perf_counter() - t0

    # sphunif's conventions where the library differs, on fresh samples
    sphunif = size_study(
        {"CJ12, sphunif's upper tail 1 - F(t)": lambda Z: 1.0 - S.cj12_cdf(S.cj12(Z))},
        n=NS,
        q=QS[1:],
        alpha=LEVELS,
        n_samples=samples,
        rng=rng,
    )
    hodges = size_study(
        {"Hodges_Ajne, sphunif's P(H > h)": lambda Z: C.hodges_ajne_sf(C.hodges_ajne(C.angles(Z)) + 1, Z.shape[0])},
        n=NS,
        q=2,
        alpha=LEVELS,
        n_samples=samples,
        rng=rng,
    )
    t1 = time.perf_counter()
    power = power_study("all", n=POWER_N, q=QS, alpha=0.05, n_samples=power_samples, rng=rng)
    t_power = time.perf_counter() - t1
    return {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "seed": seed,
            "seconds_size": round(t_size, 1),
            "seconds_power": round(t_power, 1),
            "n": list(NS),
            "q": list(QS),
            "power_n": POWER_N,
        },
        "size": size.to_dict(),
        "sphunif": {"cells": sphunif.to_dict()["cells"] + hodges.to_dict()["cells"]},
        "power": power.to_dict(),
    }


# =================================================================================================================
# the page


def _fmt(rate: float, flagged: bool, law: str) -> str:
    text = f"{rate:.3f}"
    if law.startswith("Monte Carlo"):
        text += "†"
    elif law == "exact bound":
        text += "‡"
    return f"**{text}**" if flagged else text


def _size_table(cells: list[dict], setting: str, names: list[str] | None = None) -> list[str]:
    by_key: dict = {}
    order: list = []
    for c in cells:
        if c["setting"] != setting or (names is not None and c["test"] not in names):
            continue
        key = (c["q"], c["test"])
        if key not in by_key:
            order.append(key)
        by_key.setdefault(key, {})[(c["n"], c["alpha"])] = c
    ns = sorted({k[0] for v in by_key.values() for k in v})
    levels = sorted({k[1] for v in by_key.values() for k in v})
    head = "| q | test | " + " | ".join(f"n={n} {a:.0%}" for n in ns for a in levels) + " |"
    lines = [head, "|---:|---|" + "---:|" * (len(ns) * len(levels))]
    for q, test in sorted(order, key=lambda k: (k[0], k[1].lower())):
        row = by_key[(q, test)]
        vals = []
        for n in ns:
            for a in levels:
                c = row.get((n, a))
                vals.append("" if c is None else _fmt(c["rejection_rate"], c["anti_conservative"], c["method"]))
        lines.append(f"| {q} | {test} | " + " | ".join(vals) + " |")
    return lines


def render(data: dict) -> str:
    """docs/calibration.md from the JSON data of :func:`run` (standard library only)."""
    meta, size, power = data["meta"], data["size"], data["power"]
    m = size["n_samples"]
    cells = size["cells"]
    auto = [c for c in cells if c["setting"] == "auto"]
    flagged = [c for c in auto if c["anti_conservative"] and not c["test"].startswith("dotkernels_ssl")]
    flagged_monitors = sorted({c["test"] for c in auto if c["anti_conservative"] and c["test"].startswith("dotk")})
    se5 = math.sqrt(0.05 * 0.95 / m)
    names = sorted({c["test"] for c in auto})
    tests = [t for t in names if not t.startswith("dotkernels_ssl")]
    n_tests = len({(c["test"], c["q"] == 2) for c in auto if not c["test"].startswith("dotkernels_ssl")})
    above2 = sum(1 for c in auto if c["rejection_rate"] > c["alpha"] + 2 * c["standard_error"])
    lines = [
        "# Calibration of the uniformity tests",
        "",
        "<!-- generated by benchmarks/bench_calibration.py from benchmarks/results/calibration.json; do not edit -->",
        "",
        "Every p-value of `dotkernels.uniformity` is meant to be valid at the sample size it is given: under",
        "uniformity, `P(p <= alpha) <= alpha`. This page shows the measured sizes: the fraction of uniform samples",
        'whose p-value is at most alpha, for every test and its default p-value (`method="auto"`), at',
        f"n = {', '.join(map(str, meta['n']))} and q = {', '.join(map(str, meta['q']))} (the circular tests at",
        f"q = 2), with {m} samples per (n, q) (the same samples for every test of a cell). The binomial standard",
        f"error of a rate equal to the level is sqrt(alpha (1 - alpha) / {m}): {math.sqrt(0.01 * 0.99 / m):.4f} at",
        f"1 %, {se5:.4f} at 5 %, {math.sqrt(0.1 * 0.9 / m):.4f} at 10 %. A cell is flagged (bold) when its rate",
        f"exceeds alpha + z sqrt(alpha (1 - alpha) (1/{m} + 1/B)), z = {size['z']:.2f} (one-sided, family-wise 5 %",
        "over the cells of the study; B = 1999 for a Monte Carlo law, infinite otherwise).",
        "",
        f"Reproduce: `python benchmarks/bench_calibration.py` ({meta['seconds_size'] + meta['seconds_power']:.0f} s",
        f"on {meta['cpus']} shared CPU cores, Python {meta['python']}, {meta['date']}, seed {meta['seed']});",
        "the functions are `dotkernels.calibration.size_study` and `power_study`, the figure",
        "`dotkernels.plotting.plot_size_study`.",
        "",
        "## Summary",
        "",
        f"- {n_tests} tests (test, circle or sphere), {len(auto)} cells of the default p-values (the monitors",
        f"  included): {len(flagged)} cells of the library's tests flagged anti-conservative"
        + (
            " ("
            + ", ".join(
                f"{c['test']} (n={c['n']}, q={c['q']}, {c['alpha']:.0%}: {c['rejection_rate']:.3f})" for c in flagged
            )
            + ")"
            if flagged
            else ""
        )
        + (
            f"; flagged monitors: {', '.join(flagged_monitors)} (the standardised statistic read as a normal score,"
            " not a p-value the library reports: use rayleigh_p)"
            if flagged_monitors
            else ""
        )
        + ";",
        f"  {above2} above alpha + 2 standard errors (about {0.023 * len(auto):.0f} expected by chance for valid",
        "  p-values at exactly their level; the tests of a cell share their samples, so such excesses come in",
        "  clusters of cells, the Monte Carlo laws' cells included, which are valid by construction).",
        "- The default law is the asymptotic one except: † a finite-n Monte Carlo law (1999 uniform samples from a",
        "  fixed seed, cached), where the asymptotic law was measured anti-conservative at that n (second table) or",
        "  where the test has none (Cressie, FG01, CCF09, Pycke at q >= 3, Stereo at q = 3, Poisson at q = 100);",
        "  ‡ CJ12's exact union bound (valid at every n and q).",
        "- Where the library differs from sphunif on purpose, the last table shows sphunif's convention on the",
        "  same grid: CJ12's upper tail rejects nearly every uniform sample at q = 3, and Hodges-Ajne's P(H > h)",
        "  exceeds the level.",
        "",
        "## Sizes of the default p-values",
        "",
        "Rejection rates under uniformity (n, level); † Monte Carlo law, ‡ exact bound, **bold** flagged.",
        "",
        *_size_table(cells, "auto", tests),
        "",
        "## The monitors of dotkernels_ssl",
        "",
        "`dotkernels_ssl.pretraining.monitors.monitor_pvalues()`: `rayleigh_p` is the Rayleigh test's p-value,",
        "`rayleigh_z` the standardised statistic read as a normal score (its q -> infinity law).",
        "",
        *_size_table(cells, "auto", [t for t in names if t.startswith("dotkernels_ssl")]),
        "",
        "## The asymptotic laws where the default is not the asymptotic law",
        "",
        '`method="asymptotic"` on the same samples, for the tests whose default uses another law somewhere (the',
        "evidence for the switch; the asymptotic law of CJ12 is the lower tail of Cai & Jiang's limit).",
        "",
    ]
    switched = sorted({c["test"] for c in auto if c["method"] != "asymptotic" and not c["test"].startswith("dotk")})
    lines += _size_table(cells, "asymptotic", switched)
    sph = data.get("sphunif", {}).get("cells", [])
    if sph:
        lines += [
            "",
            "## sphunif's conventions where the library differs",
            "",
            "CJ12's statistic falls as the largest coherence grows: sphunif's upper tail 1 - F(t) rejects regular",
            "samples and never concentrated ones (and nearly all uniform samples at q = 3); Hodges-Ajne's count is",
            "discrete, and P(H > h) is not a valid p-value (P(H >= h) is).",
            "",
            *_size_table(sph, "auto"),
        ]
    lines += [
        "",
        f"## Power at n = {meta['power_n']}",
        "",
        f"Rejection rates of the default p-values at 5 % ({power['n_samples']} samples per cell; binomial standard",
        f"error at most {0.5 / math.sqrt(power['n_samples']):.3f}) under a von Mises-Fisher law about e1",
        "(kappa = sqrt(q)/2), a bipolar Watson law (kappa = q/2 + 1) and sphunif's vMF mixture about",
        "+-e1, ..., +-eq (kappa = q) (the default alternatives of `dotkernels.calibration.power_study`).",
        "",
    ]
    pcells = power["cells"]
    alts = list(dict.fromkeys(c["alternative"] for c in pcells))
    qs = sorted({c["q"] for c in pcells})
    table: dict = {}
    for c in pcells:
        table.setdefault(c["test"], {})[(c["q"], c["alternative"])] = c["power"]
    lines.append("| test | " + " | ".join(f"q={q} {a}" for q in qs for a in alts) + " |")
    lines.append("|---|" + "---:|" * (len(qs) * len(alts)))
    for test in sorted(table, key=str.lower):
        vals = [table[test].get((q, a)) for q in qs for a in alts]
        lines.append(f"| {test} | " + " | ".join("" if v is None else f"{v:.2f}" for v in vals) + " |")
    lines += [
        "",
        "```{eval-rst}",
        ".. plot::",
        "   :caption: Measured sizes of the default p-values at 5 % (:func:`dotkernels.plotting.plot_size_study`).",
        "",
        "   import json, pathlib, dotkernels",
        "   from dotkernels.calibration import SizeStudyResult",
        "   from dotkernels.plotting import plot_size_study",
        "",
        "   path = pathlib.Path(dotkernels.__file__).parents[1] / 'benchmarks' / 'results' / 'calibration.json'",
        "   plot_size_study(SizeStudyResult.from_dict(json.loads(path.read_text())['size']), alpha=0.05)",
        "```",
        "",
    ]
    return "\n".join(lines)


def dumps(data: dict) -> str:
    """JSON text with one cell per line (readable diffs, a third of the indented size)."""
    lines = ["{"]
    keys = list(data)
    for i, key in enumerate(keys):
        value = data[key]
        end = "," if i < len(keys) - 1 else ""
        if isinstance(value, dict) and "cells" in value:
            head = {k: v for k, v in value.items() if k != "cells"}
            lines.append(f"{json.dumps(key)}: {{")
            for k, v in head.items():
                lines.append(f" {json.dumps(k)}: {json.dumps(v)},")
            lines.append(' "cells": [')
            cells = value["cells"]
            lines += [
                f"  {json.dumps(c, sort_keys=True)}" + ("," if j < len(cells) - 1 else "") for j, c in enumerate(cells)
            ]
            lines.append(" ]")
            lines.append("}" + end)
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = _parse()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if not args.docs_only:
        samples = 200 if args.quick else args.samples
        power_samples = 100 if args.quick else args.power_samples
        data = run(samples, power_samples, args.seed)
        Path(args.out).write_text(dumps(data))
        print(f"wrote {args.out} ({data['meta']['seconds_size']} s + {data['meta']['seconds_power']} s)")
    data = json.loads(Path(args.out).read_text())
    Path(args.page).write_text(render(data))
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()
