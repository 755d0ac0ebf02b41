"""One-command GPU check: CUDA tests, the fused loss at n = 4096, q = 32768 in bf16, and training throughput.

``python benchmarks/gpu_check.py [--out FILE.json] [--train-seconds 120]`` on a CUDA machine:

1. runs the tests marked ``cuda`` (``pytest -m cuda``);
2. times the SFRIK regulariser at n = 4096, q = 32768 under bf16 autocast, fused
   (:func:`bench_losses.fused_sfrik`) against the naive Gram form (:func:`bench_losses.naive_sfrik`), forward and
   backward, with the peak GPU memory of each;
3. trains the ``fashion-mnist-cpu`` preset on the GPU (data resident on the device) for ``--train-seconds``
   and reports the images per second;

and writes one JSON (default ``benchmarks/results/gpu_check.json``) with the GPU model, in under 8 minutes.
Without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cuda_tests() -> dict:
    """``pytest -m cuda`` (the CUDA-marked tests): exit status and the summary line."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.strip()]
    return {"returncode": r.returncode, "summary": lines[-1] if lines else "", "seconds": time.perf_counter() - t0}


def loss_benchmark(n: int = 4096, q: int = 32768, repeats: int = 5) -> dict:
    """Forward + backward of the fused and the naive SFRIK regulariser under bf16 autocast: time and peak memory."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_losses import fused_sfrik, naive_sfrik

    device = torch.device("cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(n, q, device=device, generator=gen), dim=1)
    out = {"n": n, "q": q, "autocast": "bf16"}
    for name, fn in (("fused", fused_sfrik), ("naive", naive_sfrik)):
        times = []
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        for _ in range(repeats + 1):
            z = base.clone().requires_grad_(True)
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                value = fn(z)
            value.float().backward()
            torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
        out[name] = {
            "seconds": sorted(times[1:])[len(times[1:]) // 2],  # median after one warm-up
            "peak_extra_mib": (torch.cuda.max_memory_allocated(device) - start) / 2**20,
            "value": float(value),
        }
    return out


def training_throughput(seconds: float) -> dict:
    """Train the fashion-mnist-cpu preset on the GPU (resident data) for about ``seconds``: images per second."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "dotkernels_ssl.pretrain",
            "--preset",
            "fashion-mnist-cpu",
            "--device",
            "cuda",
            "--epochs",
            "100",
            "--eval-every",
            "0",
            "--no-final-eval",
            "--no-tensorboard",
            "--quiet",
            "--data.resident",
            "true",
            "--out",
            str(Path(tmp) / "run"),
        ]
        t0 = time.perf_counter()
        try:
            subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds)
        except subprocess.TimeoutExpired:
            pass
        wall = time.perf_counter() - t0
        path = Path(tmp) / "run" / "metrics_step.csv"
        rows = path.read_text().splitlines()[1:] if path.is_file() else []
    header_batch = 256
    return {
        "preset": "fashion-mnist-cpu",
        "wall_seconds": wall,
        "steps": len(rows),
        "images": len(rows) * header_batch,
        "images_per_s_wall": len(rows) * header_batch / wall if rows else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    parser.add_argument("--train-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to check")
        return 0
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_tests": cuda_tests(),
        "loss_benchmark": loss_benchmark(),
        "training": training_throughput(args.train_seconds),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
