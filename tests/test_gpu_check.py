"""benchmarks/gpu_check.py without CUDA: says so and exits 0."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only path")
def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0
    assert "no CUDA device" in r.stdout
    assert not out.exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_global_batchnorm_matches_batchnorm_on_cuda():
    from dotkernels_ssl.pretraining.models import GlobalBatchNorm

    torch.manual_seed(0)
    x = torch.randn(16, 3, 5, 5, device="cuda")
    ref, bn = torch.nn.BatchNorm2d(3).cuda(), GlobalBatchNorm(3).cuda()
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)
