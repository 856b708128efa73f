"""NCCL on every visible GPU through tplab.launch, and scripts/gpu_smoke.sh.

Skipped without CUDA.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# tplab before torch: it sets PYTORCH_NVML_BASED_CUDA_CHECK, so counting GPUs leaves CUDA
# uninitialised. The split keeps import sorting from moving torch above it.
import tplab

# isort: split
import torch

REPO = Path(__file__).resolve().parents[1]
GPUS = torch.cuda.device_count() if torch.version.cuda else 0
needs_cuda = pytest.mark.skipif(GPUS < 1, reason="needs a CUDA build of torch and at least one GPU")


def _all_reduce_ones():
    import torch.distributed as dist

    rank = dist.get_rank()
    dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    x = torch.ones(1 << 16, device=dev) * (rank + 1)
    dist.all_reduce(x)
    torch.cuda.synchronize(dev)
    return {"sum": x[0].item(), "all_equal": bool(torch.all(x == x[0]).item()),
            "backend": dist.get_backend(), "device": torch.cuda.current_device()}


@needs_cuda
@pytest.mark.parametrize("world", sorted({1, GPUS}))
def test_nccl_all_reduce_one_gpu_per_rank(world):
    assert not torch.cuda.is_initialized(), "CUDA must stay uninitialised in the parent"
    results = tplab.launch(_all_reduce_ones, world, timeout=180)
    assert [r["backend"] for r in results] == ["nccl"] * world  # chosen automatically
    assert [r["device"] for r in results] == list(range(world))  # one GPU per rank
    for r in results:
        assert r["all_equal"] and r["sum"] == world * (world + 1) / 2


@needs_cuda
def test_gpu_smoke_script():
    env = dict(os.environ, SKIP_SETUP="1", PY=sys.executable)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_smoke.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("gpu_smoke:")]
    assert line and line[-1].startswith(f"gpu_smoke: OK nccl world={GPUS} "), r.stdout


@pytest.mark.skipif(GPUS > 0, reason="checks the refusal on a machine without a GPU")
def test_gpu_smoke_script_refuses_clearly_without_a_gpu():
    env = dict(os.environ, SKIP_SETUP="1", PY=sys.executable)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_smoke.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "gpu_smoke: FAIL" in r.stderr and ("GPU" in r.stderr or "CUDA" in r.stderr), r.stderr
