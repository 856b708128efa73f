"""NCCL on every visible GPU through tplab.launch, and scripts/gpu_smoke.sh.

Skipped without CUDA, except the smoke script's checks on CPU ranks (`gpu_smoke.py --cpu`) and
its refusal without a GPU.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# tplab before torch: it sets PYTORCH_NVML_BASED_CUDA_CHECK, so counting GPUs leaves CUDA
# uninitialised. The split keeps import sorting from moving torch above it.
import tplab

# isort: split
import torch

from tplab.models.generate import generate
from tplab.models.loading import load_llama
from tplab.models.tp_devices import compare_with_tp1, load_on_rank, rank_device, timed_greedy

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
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("gpu_smoke:")]
    assert [ln for ln in lines if ln.startswith(f"gpu_smoke: OK nccl world={GPUS} ")], r.stdout
    assert [ln for ln in lines if ln.startswith("gpu_smoke: decode SmolLM2-135M TP=1: ")], r.stdout
    tp2 = [ln for ln in lines if ln.startswith("gpu_smoke: decode SmolLM2-135M TP=2")]
    if GPUS >= 2:
        assert len(tp2) == 1 and re.fullmatch(
            r"gpu_smoke: decode SmolLM2-135M TP=2 NCCL bf16: \d+ tok/s, "
            r"tokens equal to TP=1 bf16: \d+/64", tp2[0]), r.stdout
    else:
        assert tp2 == [f"gpu_smoke: decode SmolLM2-135M TP=2: skipped, TP=2 needs 2 GPUs "
                       f"({GPUS} visible)"], r.stdout


def _bench_prompt() -> list[int]:
    """bench/decode.py's 128-token prompt (gpu_smoke.sh's): its greedy continuation is clear,
    the top two logits of its first 15 tokens 2.4 or more apart (bf16, measured on a CPU)."""
    spec = importlib.util.spec_from_file_location("bench_decode", REPO / "bench" / "decode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.prompt_ids()


def _where_and_fp32_tokens(ids):
    model = load_on_rank(dtype=torch.float32)  # on this rank's GPU
    return str(rank_device()), str(model.device), timed_greedy(model, ids, 8, warm_up=False)[0]


@needs_cuda
def test_default_model_decodes_on_each_ranks_gpu_in_fp32_as_on_the_cpu():
    """tplab.models.tp_devices on NCCL ranks: each rank's shard on its own GPU, and float32
    gives the CPU's greedy tokens (TF32 is off for matmuls by default; this prompt's top two
    logits are far apart)."""
    ids = _bench_prompt()
    cpu = list(generate(load_llama(), ids, 8, stop_at_eos=False))
    world = min(GPUS, 2)
    results = tplab.launch(_where_and_fp32_tokens, world, ids, timeout=300)
    assert [r[:2] for r in results] == [(f"cuda:{i}", f"cuda:{i}") for i in range(world)]
    for r in results:
        assert r[2] == cpu


@pytest.mark.skipif(GPUS < 2, reason="TP=2 on NCCL ranks needs 2 GPUs")
def test_tp2_nccl_bf16_decodes_the_tokens_of_tp1_bf16():
    """The issue's item: TP=2 on GPU ranks over NCCL in bf16. bf16 TP=2 logits differ from
    TP=1's by up to ~1 (measured on CPU ranks, tests/test_tp_devices.py); this prompt's first
    12 tokens win by 2.4 or more, so a token picked differently there would be a bug. 10 of 12
    leaves room for GPU kernels rounding otherwise than the CPU's."""
    r = compare_with_tp1(_bench_prompt(), 12, world=2, dtype=torch.bfloat16, timeout=300)
    assert (r["backend"], r["dtype"], r["n"]) == ("nccl", "bf16", 12)
    assert r["ms_per_token"] > 0 and r["tok_s"] > 0
    assert r["same"] >= 10, r


def test_gpu_smoke_checks_run_on_cpu_ranks():
    """Every function of scripts/gpu_smoke.py, on gloo ranks and the CPU: a typo there would
    otherwise first show on a lent GPU."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_smoke.py"), "--cpu"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("gpu_smoke:")]
    assert len(lines) == 3, r.stdout
    assert re.fullmatch(r"gpu_smoke: OK gloo world=2 gpus=\['cpu', 'cpu'\] "
                        r"all_reduce\(4 MiB fp32\)=[\d.]+ ms torch=\S+ cuda=\S+", lines[0])
    assert re.fullmatch(r"gpu_smoke: decode SmolLM2-135M TP=1: fp32 \d+ tok/s = \d+% of memory, "
                        r"bf16 \d+ tok/s = \d+% of memory \(memory read \d+ GB/s\)", lines[1])
    assert re.fullmatch(r"gpu_smoke: decode SmolLM2-135M TP=2 GLOO bf16: \d+ tok/s, "
                        r"tokens equal to TP=1 bf16: [0-4]/4", lines[2])


@pytest.mark.skipif(GPUS > 0, reason="checks the refusal on a machine without a GPU")
def test_gpu_smoke_script_refuses_clearly_without_a_gpu():
    env = dict(os.environ, SKIP_SETUP="1", PY=sys.executable)
    r = subprocess.run(["bash", str(REPO / "scripts" / "gpu_smoke.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "gpu_smoke: FAIL" in r.stderr and ("GPU" in r.stderr or "CUDA" in r.stderr), r.stderr
    assert "gpu_smoke.py --cpu" in r.stderr  # what can run here instead
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_smoke.py")], cwd=REPO,
                       capture_output=True, text=True, timeout=120)  # past the shell's check
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("gpu_smoke: FAIL torch ") and "CUDA" in r.stderr, r.stderr
