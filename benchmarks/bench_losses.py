"""Benchmark of the fused kernel regulariser and the SSL losses (CPU float32 here; a CUDA section when available).

Sections (every ratio is measured side by side in the same run, on the same inputs):

(a) SFRIK regulariser forward+backward on l2-normalised rows: the fused function
    (:func:`dotkernels_ssl.losses.functional.kernel_regularizer`, ``method="gram"``, and ``"blocked"`` with 512-row
    blocks, the ``"auto"`` choice) against the naive autograd reference of the released code (Gram matrix, then
    the Gegenbauer recurrence P_{l+1} = ((2l+q-2) t P_l - l P_{l-1}) / (l+q-2) under autograd, mean of
    sum_l b_l P_l), over a grid of (n, q) that includes n = 2048, q = 8192. Time ratio (goal >= 1.5x) and peak
    extra memory ratio (goal <= 1/3), the latter both with and without the (n, q) gradient that every method
    returns ("work" = peak minus the gradient).
(b) SFRIKLoss against VICRegLoss (two views, n = 256) as q grows from 2048 to 32768: time and peak memory;
    VICReg's q x q covariance is the wall (configurations that would not fit in the available RAM are skipped
    and reported with their estimated size).
(c) Distributed, 2 gloo processes (one thread each): per-rank time and peak memory of the local-rows regulariser
    against replicating the full N x N Gram on every rank (the released code: all-gather with gradient, full Gram,
    naive recurrence; and the fused function on the full gathered batch).
(d) GPU (only when ``torch.cuda.is_available()``): section (a) at n = 4096, q = 32768 and (b) under bf16
    autocast, peak memory from ``torch.cuda.max_memory_allocated``, time from CUDA events.

Memory methods (CPU):

- ``peak``: peak of the CPU bytes allocated during one forward+backward, from the public ``torch.profiler`` events
  (``profile_memory=True``: the running sum, in the order the operators end, of every event's
  ``self_cpu_memory_usage``, the bytes an operator allocated minus those it freed, with the allocator's own
  ``[memory]`` events; resolution one operator; inputs excluded, gradients included).
- ``saved``: bytes that autograd keeps between forward and backward (``saved_tensors_hooks`` byte count).
- ``rss`` (section (a) at n = 2048, q = 8192, and whenever ``--rss``): peak resident set size minus the resident
  size before the call, in a fresh subprocess per (variant, n, q) with ``MALLOC_MMAP_THRESHOLD_=65536`` (large
  buffers are mmap-ed and returned on free) and the kernel's peak counter reset (``/proc/self/clear_refs``).

Time: median of ``--repeats`` runs after one warm-up, variants interleaved (the machine may be shared). Torch
runs on ``--threads`` intra-op threads (default 1: on a loaded shared machine OpenMP barriers stall every
elementwise pass by a scheduler quantum and distort the ratios).

Usage::

    python benchmarks/bench_losses.py --quick     # quick grid + the n = 2048, q = 8192 point
    python benchmarks/bench_losses.py             # full grid (slow on 2 cores)
    python benchmarks/bench_losses.py --sections a,c --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dotkernels_ssl.losses import SFRIKLoss, VICRegLoss
from dotkernels_ssl.losses import distributed as D
from dotkernels_ssl.losses.functional import describe_plan, kernel_regularizer, local_rows_regularizer

WEIGHTS = (1.0, 40.0, 40.0)
MAIN_POINT = (2048, 8192)
QUICK_GRID = [(512, 512), (1024, 2048), MAIN_POINT]
FULL_GRID = [(512, 512), (512, 8192), (1024, 2048), (2048, 2048), MAIN_POINT, (4096, 2048), (4096, 8192)]
VICREG_Q_QUICK = [2048, 4096, 8192]
VICREG_Q_FULL = [2048, 4096, 8192, 16384, 32768]
DIST_QUICK = (1024, 2048)  # (N global, q)
DIST_FULL = (2048, 8192)
GPU_GRID = [(4096, 32768)]
GPU_VICREG_Q = [2048, 8192, 32768]
MiB = float(1 << 20)


# ------------------------------------------------------------------------------------------------------------
# references
# ------------------------------------------------------------------------------------------------------------


def naive_sfrik(z: torch.Tensor, weights: tuple[float, ...] = WEIGHTS) -> torch.Tensor:
    """The released code's regulariser: full Gram matrix, Gegenbauer recurrence under autograd, mean."""
    q = z.shape[1]
    G = z @ z.T
    P_prev, P = torch.ones_like(G), G
    total = weights[0] * P.mean()
    for k in range(1, len(weights)):
        P_prev, P = P, ((2 * k + q - 2) * G * P - k * P_prev) / (k + q - 2)
        total = total + weights[k] * P.mean()
    return total


def fused_sfrik(z: torch.Tensor, method: str = "gram", block_size: int | None = None) -> torch.Tensor:
    return kernel_regularizer(z, "sfrik", method=method, block_size=block_size)


# ------------------------------------------------------------------------------------------------------------
# measurement helpers
# ------------------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time per variant; one warm-up each, then ``repeats`` rounds with the variants interleaved."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    _sync(device)
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def profiler_peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak of the CPU bytes allocated inside ``fn``, at the resolution of one operator (public profiler events).

    With ``profile_memory=True`` every profiler event carries ``self_cpu_memory_usage``, the bytes it allocated
    minus those it freed outside its children (the allocator's frees between operators are ``[memory]`` events);
    their running sum in the order the operators end is the live CPU memory after each operator, and its maximum
    the peak.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    current = peak = 0
    # an operator's own allocations and frees are booked when it ends, after those of the operators it called
    for event in sorted(prof.events(), key=lambda e: (e.time_range.end, -e.time_range.start)):
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn`` runs (storage-deduplicated)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _unit_rows(n: int, q: int, device: torch.device, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, q, generator=g, dtype=torch.float32)
    return F.normalize(z, dim=1).to(device=device, dtype=dtype)


def _two_view_step(loss: Callable, z1: torch.Tensor, z2: torch.Tensor, autocast: str | None = None) -> Callable:
    def run() -> None:
        z1.grad = z2.grad = None
        if autocast is None:
            r = loss(z1, z2)
        else:
            with torch.autocast(autocast, dtype=torch.bfloat16):
                r = loss(z1, z2)
        r.backward()

    return run


def _fwd_bwd(loss_fn: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        z.grad = None
        r = loss_fn(z)
        r.backward()
        return float(r.detach())

    return run


# ------------------------------------------------------------------------------------------------------------
# RSS in a subprocess
# ------------------------------------------------------------------------------------------------------------


def _rss_child(variant: str, n: int, q: int) -> None:
    """Entry point of the RSS subprocess: prints {"before": bytes, "peak": bytes}."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    fns = {
        "naive": naive_sfrik,
        "gram": fused_sfrik,
        "blocked": lambda z: fused_sfrik(z, "blocked", 512),
    }
    fn = fns[variant]
    small = _unit_rows(64, 64, torch.device("cpu")).requires_grad_()
    fn(small).backward()  # load kernels (BLAS, OpenMP) before measuring
    z = _unit_rows(n, q, torch.device("cpu")).requires_grad_()

    def status(field: str) -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(field)

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    before = status("VmRSS")
    r = fn(z)
    r.backward()
    peak = status("VmHWM")
    print(json.dumps({"before": before, "peak": peak}))


def rss_extra_bytes(variant: str, n: int, q: int, threads: int) -> int | None:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--_rss-child", variant, str(n), str(q)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=True).stdout
        res = json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
        print(f"  rss measurement failed for {variant} n={n} q={q}: {exc}", file=sys.stderr)
        return None
    return int(res["peak"] - res["before"])


# ------------------------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------------------------


def _fmt_mib(b: float | None) -> str:
    return "    -" if b is None else f"{b / MiB:9.1f}"


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / MiB:.1f}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def section_a(grid: list[tuple[int, int]], repeats: int, rss_points: set[tuple[int, int]], threads: int) -> list:
    device = torch.device("cpu")
    print(f"\n(a) SFRIK regulariser (1, 40, 40), forward+backward, float32 CPU, {threads} thread(s)")
    print("    naive = Gram + Gegenbauer recurrence under autograd (the released code)")
    print('    gram = fused, one n x n strip; blocked = fused, 512-row symmetric strips (what method="auto" runs)')
    print("    speedup = naive time / fused time (median); peak = live CPU bytes after each operator in fwd+bwd")
    print("    (the n x q gradient included); work = peak minus the n x q gradient every method returns;")
    print("    ratios are fused / naive; rss = VmHWM - VmRSS of a fresh subprocess (where measured)")
    header = (
        f"{'n':>5} {'q':>5} | {'naive s':>7} {'gram s':>7} {'block s':>7} {'x gram':>6} {'x blk':>6} | "
        f"{'naive MiB':>9} {'gram':>7} {'block':>7} {'r gram':>6} {'r blk':>6} | {'work r gram':>11} {'r blk':>6} | "
        f"{'rss naive':>9} {'gram':>7} {'block':>7} | {'rel.err':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for n, q in grid:
        z = _unit_rows(n, q, device).requires_grad_()
        fns = {
            "naive": _fwd_bwd(naive_sfrik, z),
            "gram": _fwd_bwd(fused_sfrik, z),
            "blocked": _fwd_bwd(lambda x: fused_sfrik(x, "blocked", 512), z),
        }
        values = {k: fn() for k, fn in fns.items()}
        times = time_interleaved(fns, repeats, device)
        peaks = {k: profiler_peak_bytes(fn) for k, fn in fns.items()}
        grad_bytes = n * q * 4
        work = {k: (None if v is None else v - grad_bytes) for k, v in peaks.items()}
        saved = {
            "naive": saved_bytes(lambda x=z: naive_sfrik(x)),
            "gram": saved_bytes(lambda x=z: fused_sfrik(x)),
            "blocked": saved_bytes(lambda x=z: fused_sfrik(x, "blocked", 512)),
        }
        rss: dict[str, int | None] = {"naive": None, "gram": None, "blocked": None}
        if (n, q) in rss_points:
            rss = {k: rss_extra_bytes(k, n, q, threads) for k in rss}
        with torch.no_grad():
            exact = float(naive_sfrik(z.detach().double()))
        errs = {k: abs(v - exact) / abs(exact) for k, v in values.items()}
        row = {
            "n": n,
            "q": q,
            "time_s": times,
            "speedup": {k: times["naive"] / times[k] for k in ("gram", "blocked")},
            "peak_bytes": peaks,
            "peak_ratio": {k: _ratio(peaks[k], peaks["naive"]) for k in ("gram", "blocked")},
            "workspace_bytes": work,
            "workspace_ratio": {k: _ratio(work[k], work["naive"]) for k in ("gram", "blocked")},
            "saved_bytes": saved,
            "rss_extra_bytes": rss,
            "rss_ratio": {k: _ratio(rss[k], rss["naive"]) for k in ("gram", "blocked")},
            "rel_err_vs_float64": errs,
            "plan": describe_plan("sfrik", q=q),
        }
        rows.append(row)
        pr, wr = row["peak_ratio"], row["workspace_ratio"]
        print(
            f"{n:5d} {q:5d} | {times['naive']:7.3f} {times['gram']:7.3f} {times['blocked']:7.3f} "
            f"{row['speedup']['gram']:5.2f}x {row['speedup']['blocked']:5.2f}x | "
            f"{_mib(peaks['naive']):>9} {_mib(peaks['gram']):>7} {_mib(peaks['blocked']):>7} "
            f"{_num(pr['gram']):>6} {_num(pr['blocked']):>6} | {_num(wr['gram']):>11} {_num(wr['blocked']):>6} | "
            f"{_mib(rss['naive']):>9} {_mib(rss['gram']):>7} {_mib(rss['blocked']):>7} | {max(errs.values()):7.1e}"
        )
    return rows


def _vicreg_bytes_estimate(q: int) -> int:
    return 8 * q * q * 4  # covariances, their gradients and the products of backward, two views (float32)


def _available_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return 1 << 34


def section_b(qs: list[int], n: int, repeats: int) -> list:
    device = torch.device("cpu")
    print(f"\n(b) SFRIKLoss vs VICRegLoss, two views, n = {n}, forward+backward, float32 CPU")
    header = (
        f"{'q':>6} | {'sfrik s':>8} {'vicreg s':>9} {'ratio':>7} | {'sfrik MiB':>9} {'vicreg MiB':>10} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for q in qs:
        z1 = _unit_rows(n, q, device, seed=1).requires_grad_()
        z2 = _unit_rows(n, q, device, seed=2).requires_grad_()
        sfrik, vicreg = SFRIKLoss(), VICRegLoss()

        fns = {"sfrik": _two_view_step(sfrik, z1, z2)}
        need = _vicreg_bytes_estimate(q)
        avail = _available_bytes()
        skipped = None
        if need > 0.6 * avail:
            skipped = f"VICReg needs ~{need / 2**30:.1f} GiB (q x q covariances), {avail / 2**30:.1f} GiB available"
        else:
            fns["vicreg"] = _two_view_step(vicreg, z1, z2)
        reps = repeats if q <= 8192 else 1
        times = time_interleaved(fns, reps, device)
        peaks = {k: profiler_peak_bytes(fn) for k, fn in fns.items()}
        row = {"n": n, "q": q, "time_s": times, "peak_bytes": peaks, "vicreg_skipped": skipped}
        rows.append(row)
        if skipped:
            print(
                f"{q:6d} | {times['sfrik']:8.3f} {'-':>9} {'-':>7} | {_fmt_mib(peaks['sfrik'])} {'-':>10} "
                f"{'-':>7}   skipped: {skipped}"
            )
        else:
            print(
                f"{q:6d} | {times['sfrik']:8.3f} {times['vicreg']:9.3f} {times['vicreg'] / times['sfrik']:6.1f}x | "
                f"{_fmt_mib(peaks['sfrik'])} {_fmt_mib(peaks['vicreg']):>10} "
                f"{(peaks['vicreg'] or 0) / max(peaks['sfrik'] or 1, 1):6.1f}x"
            )
    return rows


def _dist_worker(rank: int, world: int, port: int, n_total: int, q: int, repeats: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )
    ctx = D.init_from_env("cpu")
    try:
        n_local = n_total // world
        full = _unit_rows(n_total, q, torch.device("cpu"), seed=3)
        z = full[rank * n_local : (rank + 1) * n_local].clone().requires_grad_()
        variants = {
            "local_rows": lambda: kernel_regularizer(z, "sfrik", method="gram"),
            "replicated_full_gram_naive": lambda: naive_sfrik(D.all_gather_with_grad(z)),
            "replicated_full_gram_fused": lambda: _replicated_fused(D.all_gather_with_grad(z)),
        }
        runs = {k: _barrier_step(fn, z) for k, fn in variants.items()}
        values = {k: fn() for k, fn in runs.items()}
        grads = {}
        for k, fn in runs.items():
            fn()
            grads[k] = z.grad.clone()
        times = time_interleaved(runs, repeats, torch.device("cpu"))
        peaks = {k: profiler_peak_bytes(fn) for k, fn in runs.items()}
        # the local-rows value is a rank share: the mean over ranks is the global value
        share = D.all_reduce_mean(torch.tensor([values["local_rows"]], dtype=torch.float64))
        result = {
            "rank": rank,
            "time_s": times,
            "peak_bytes": peaks,
            "global_value_local_rows": float(share),
            "value_replicated": values["replicated_full_gram_naive"],
            "grad_max_abs_diff": float((grads["local_rows"] - grads["replicated_full_gram_naive"]).abs().max()),
            "grad_scale": float(grads["replicated_full_gram_naive"].abs().max()),
        }
        with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
            json.dump(result, fh)
    finally:
        D.shutdown(ctx)


def _replicated_fused(zz: torch.Tensor) -> torch.Tensor:
    return local_rows_regularizer(zz, zz.detach(), "sfrik")


def _barrier_step(fn: Callable[[], torch.Tensor], z: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        z.grad = None
        D.barrier()
        r = fn()
        r.backward()
        return float(r.detach())

    return run


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def section_c(n_total: int, q: int, repeats: int, world: int = 2) -> dict:
    print(
        f"\n(c) distributed regulariser, {world} gloo processes x 1 thread, N = {n_total} (n_local = "
        f"{n_total // world}), q = {q}, forward+backward per rank"
    )
    tmp = tempfile.mkdtemp(prefix="bench_losses_")
    try:
        torch.multiprocessing.spawn(
            _dist_worker, args=(world, _free_port(), n_total, q, repeats, tmp), nprocs=world, join=True
        )
        ranks = [json.load(open(os.path.join(tmp, f"rank{r}.json"))) for r in range(world)]
    except Exception as exc:  # pragma: no cover - environment dependent
        print(f"  skipped: {exc}")
        return {"skipped": str(exc)}
    header = f"{'variant':<28} | {'time/rank s':>11} {'peak/rank MiB':>13} | {'time ratio':>10} {'mem ratio':>9}"
    print(header)
    print("-" * len(header))
    base_t = max(r["time_s"]["local_rows"] for r in ranks)
    base_m = max(r["peak_bytes"]["local_rows"] or 0 for r in ranks)
    for k in ranks[0]["time_s"]:
        t = max(r["time_s"][k] for r in ranks)
        m = max(r["peak_bytes"][k] or 0 for r in ranks)
        print(f"{k:<28} | {t:11.3f} {m / MiB:13.1f} | {t / base_t:9.2f}x {m / max(base_m, 1):8.2f}x")
    gv = ranks[0]["global_value_local_rows"]
    rv = ranks[0]["value_replicated"]
    diff = max(r["grad_max_abs_diff"] / r["grad_scale"] for r in ranks)
    print(
        f"    mean of local-rows shares {gv:.7g} vs replicated {rv:.7g}; local-rows gradient (x W, before DDP "
        f"averaging) vs replicated: max rel. diff {diff:.1e}"
    )
    return {"n_total": n_total, "q": q, "world": world, "ranks": ranks}


def section_d(
    repeats: int, device: str = "cuda", grid: list[tuple[int, int]] | None = None, vicreg_q: list[int] | None = None
) -> dict:
    """GPU section; ``device="cpu"`` with small grids exercises the same code on the CPU (tests of the script)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("\n(d) GPU section skipped: torch.cuda.is_available() is False")
        return {"skipped": "no CUDA device"}
    grid = GPU_GRID if grid is None else grid
    vicreg_q = GPU_VICREG_Q if vicreg_q is None else vicreg_q
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    print(f"\n(d) GPU ({name}), bf16 autocast, forward+backward; memory = torch.cuda.max_memory_allocated - baseline")

    def cuda_peak(fn: Callable[[], Any]) -> int:
        if dev.type != "cuda":
            return profiler_peak_bytes(fn)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    def autocast(fn):
        def run():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                return fn()

        return run

    out: dict[str, Any] = {"device": name, "a": [], "b": []}
    print("    naive_bf16 = the released code under AMP (bf16 Gram and recurrence); naive_fp32 = the same without")
    print('    autocast; fused = kernel_regularizer(method="auto") called under autocast (float32 inside)')
    header = (
        f"{'n':>6} {'q':>6} | {'variant':<10} | {'ms':>9} {'x vs bf16':>9} {'x vs fp32':>9} | {'MiB':>9} "
        f"{'r vs fp32':>9} | {'rel.err':>9}"
    )
    print(header)
    print("-" * len(header))
    for n, q in grid:
        z = _unit_rows(n, q, dev).requires_grad_()
        fns = {
            "naive_bf16": autocast(_fwd_bwd(naive_sfrik, z)),
            "naive_fp32": _fwd_bwd(naive_sfrik, z),
            "fused": autocast(_fwd_bwd(lambda x: fused_sfrik(x, "auto"), z)),
        }
        values = {k: fn() for k, fn in fns.items()}
        times = time_interleaved(fns, repeats, dev)
        peaks = {k: cuda_peak(fn) for k, fn in fns.items()}
        with torch.no_grad():
            exact = float(naive_sfrik(z.detach().double()))
        errs = {k: abs(v - exact) / abs(exact) for k, v in values.items()}
        out["a"].append({"n": n, "q": q, "time_s": times, "peak_bytes": peaks, "rel_err_vs_float64": errs})
        for k in fns:
            print(
                f"{n:6d} {q:6d} | {k:<10} | {times[k] * 1e3:9.2f} {times['naive_bf16'] / times[k]:8.2f}x "
                f"{times['naive_fp32'] / times[k]:8.2f}x | {peaks[k] / MiB:9.1f} "
                f"{peaks[k] / peaks['naive_fp32']:9.3f} | {errs[k]:9.2e}"
            )
    n = 256
    print(f"    SFRIKLoss vs VICRegLoss, n = {n}")
    for q in vicreg_q:
        z1 = _unit_rows(n, q, dev, seed=1).requires_grad_()
        z2 = _unit_rows(n, q, dev, seed=2).requires_grad_()

        fns = {
            "sfrik": _two_view_step(SFRIKLoss(), z1, z2, autocast=dev.type),
            "vicreg": _two_view_step(VICRegLoss(), z1, z2, autocast=dev.type),
        }
        res: dict[str, Any] = {"q": q}
        try:
            res["time_s"] = time_interleaved(fns, repeats, dev)
            res["peak_bytes"] = {k: cuda_peak(fn) for k, fn in fns.items()}
            print(
                f"    q = {q:6d}: sfrik {res['time_s']['sfrik'] * 1e3:8.2f} ms {res['peak_bytes']['sfrik'] / MiB:8.1f} "
                f"MiB | vicreg {res['time_s']['vicreg'] * 1e3:8.2f} ms {res['peak_bytes']['vicreg'] / MiB:8.1f} MiB"
            )
        except torch.cuda.OutOfMemoryError as exc:
            res["error"] = f"out of memory: {exc}"
            print(f"    q = {q:6d}: out of memory")
            torch.cuda.empty_cache()
        out["b"].append(res)
    return out


# ------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small grids (plus the n = 2048, q = 8192 point)")
    parser.add_argument("--sections", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per variant (default 3 quick, 5 full)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: on a shared machine OpenMP barriers distort the ratios)",
    )
    parser.add_argument("--rss", action="store_true", help="RSS subprocess measurements on every point of (a)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "losses.json"))
    parser.add_argument("--_rss-child", nargs=3, metavar=("VARIANT", "N", "Q"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._rss_child:
        variant, n, q = args._rss_child
        _rss_child(variant, int(n), int(q))
        return 0
    if args.threads and args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    repeats = args.repeats or (3 if args.quick else 5)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "repeats": repeats,
        "memory_methods": {
            "peak_bytes": "torch.profiler events (profile_memory): peak running sum of self_cpu_memory_usage",
            "saved_bytes": "torch.autograd.graph.saved_tensors_hooks: bytes kept for backward",
            "rss_extra_bytes": "VmHWM - VmRSS in a fresh subprocess (MALLOC_MMAP_THRESHOLD_=65536, clear_refs)",
            "gpu": "torch.cuda.max_memory_allocated - memory_allocated before",
        },
        "time_method": "median wall time of fwd+bwd over repeats, variants interleaved, after one warm-up",
    }
    print(f"bench_losses ({meta['mode']}): torch {meta['torch']}, {threads} threads, load {meta['loadavg_start']}")
    results: dict[str, Any] = {"meta": meta}
    if "a" in sections:
        grid = QUICK_GRID if args.quick else FULL_GRID
        rss_points = set(grid) if args.rss else {MAIN_POINT}
        results["a"] = section_a(grid, repeats, rss_points, threads)
    if "b" in sections:
        results["b"] = section_b(VICREG_Q_QUICK if args.quick else VICREG_Q_FULL, 256, repeats)
    if "c" in sections:
        n_total, q = DIST_QUICK if args.quick else DIST_FULL
        results["c"] = section_c(n_total, q, repeats)
    if "d" in sections:
        results["d"] = section_d(repeats)
    meta["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
