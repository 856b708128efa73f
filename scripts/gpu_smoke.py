"""The Python side of scripts/gpu_smoke.sh: three checks of a CUDA machine, one line each.

    .venv/bin/python scripts/gpu_smoke.py        # on a CUDA machine (gpu_smoke.sh: set-up first)
    .venv/bin/python scripts/gpu_smoke.py --cpu  # the same code on CPU ranks (gloo) and the CPU

Why a file of its own, with --cpu: the GPU checks run only where a GPU is lent, seldom and for
minutes, and a typo found there wastes the loan. With --cpu every function here runs in the
test suite (tests/test_gpu.py) on any laptop: only the device and the backend change.

1. all-reduce: one rank per GPU (NCCL) through tplab.launch, a known sum and its time;
2. decode speed at TP=1 (tplab.models.fast_decode, bench/decode.py's timers): tokens/s and the
   share of the device's measured read bandwidth (weights read per token x tokens/s);
3. decode at TP=2 on two ranks in bf16 against TP=1 (tplab.models.tp_devices.smoke_line).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import tplab  # first: sets PYTORCH_NVML_BASED_CUDA_CHECK so the parent never initialises CUDA

# isort: split
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from decode import NEW_TOKENS, device_read_gbs, prompt_ids, sync, time_fast  # noqa: E402

from tplab.models.fast_decode import FastDecoder  # noqa: E402
from tplab.models.loading import load_llama  # noqa: E402
from tplab.models.tp_devices import rank_device, smoke_line  # noqa: E402

NUMEL = 1 << 20  # 4 MiB of fp32
ITERS = 20
GPU_CONFIGS = (("fp32", {}), ("bf16 compiled", {"dtype": torch.bfloat16, "compile": True}))
CPU_CONFIGS = (("fp32", {}), ("bf16", {"dtype": torch.bfloat16}))  # compiling takes a minute


def cuda_problem() -> str | None:
    """Why this torch cannot run the GPU checks, or None."""
    if torch.version.cuda is None:
        return (f"torch {torch.__version__} in {sys.prefix} is not a CUDA build. Keep a CUDA "
                "torch: `rm -rf .venv && python3 -m venv .venv && .venv/bin/pip install torch` "
                "(a CUDA wheel from https://pytorch.org/get-started/locally/), then run this "
                "again; `make` keeps it.")
    if torch.cuda.device_count() < 1:
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}); "
                "check the driver with nvidia-smi.")
    return None


def all_reduce_worker() -> dict:
    """On each rank: all-reduce rank+1 (the sum must be n(n+1)/2), then time 4 MiB."""
    import torch.distributed as dist

    rank, n = dist.get_rank(), dist.get_world_size()
    dev = rank_device()  # cuda:LOCAL_RANK under NCCL, the CPU under gloo
    x = torch.ones(NUMEL, device=dev) * (rank + 1)
    dist.all_reduce(x)
    expected = n * (n + 1) / 2
    ok = bool(torch.all(x == expected).item())
    y = torch.ones(NUMEL, device=dev)
    for _ in range(3):
        dist.all_reduce(y)
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(ITERS):
        dist.all_reduce(y)
    sync(dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {"ok": ok, "got": x[0].item(), "expected": expected, "gpu": name,
            "ms": (time.perf_counter() - t0) * 1e3 / ITERS, "backend": dist.get_backend()}


def all_reduce_line(world: int, backend: str) -> str:
    results = tplab.launch(all_reduce_worker, world, backend=backend, timeout=180)
    bad = [(r, res["got"], res["expected"]) for r, res in enumerate(results) if not res["ok"]]
    if bad:
        raise AssertionError(f"all_reduce gave wrong sums (rank, got, expected): {bad}")
    ms = max(res["ms"] for res in results)
    return (f"gpu_smoke: OK {results[0]['backend']} world={world} "
            f"gpus={[res['gpu'] for res in results]} all_reduce(4 MiB fp32)={ms:.3f} ms "
            f"torch={torch.__version__} cuda={torch.version.cuda}")


def decode_line(device: torch.device, configs, repeats: int = 3) -> str:
    """TP=1 decode speed of each (label, FastDecoder options), against a sum's read bandwidth
    (bench/decode.py's own timers, so the figures mean what its rows mean)."""
    model, ids = load_llama(), prompt_ids()
    memory = "HBM" if device.type == "cuda" else "memory"
    read = device_read_gbs(device)
    parts = []
    for label, options in configs:
        decoder = FastDecoder(model, device=device, **options)
        seconds = decoder.warm_up()  # compiles, if asked (a warning and eager if it cannot)
        compiled = "" if seconds is None else f" (compile {seconds:.0f} s)"
        if options.get("compile") and not decoder.compiled_ok:
            compiled = " (compile failed: eager)"
        time_fast(decoder, ids)  # warm-up
        tok_s = NEW_TOKENS / min(time_fast(decoder, ids)[1] for _ in range(repeats))
        share = decoder.weight_bytes() * tok_s / 1e9 / read
        parts.append(f"{label} {tok_s:.0f} tok/s = {share:.0%} of {memory}{compiled}")
    if device.type == "cuda":
        torch.cuda.empty_cache()  # GPU 0 serves a TP=2 rank next
    return (f"gpu_smoke: decode SmolLM2-135M TP=1: {', '.join(parts)} "
            f"({memory} read {read:.0f} GB/s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true",
                        help="run every check on CPU ranks (gloo) and the CPU: tests the script")
    args = parser.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"gpu_smoke: FAIL {msg}", file=sys.stderr)
        return 1

    if args.cpu:
        world, backend, device, configs, repeats = 2, "gloo", torch.device("cpu"), CPU_CONFIGS, 1
        gpus, tp2 = 0, {"new_tokens": 4, "backend": "gloo", "timeout": 240}
    else:
        problem = cuda_problem()
        if problem:
            return fail(problem)
        gpus = torch.cuda.device_count()
        world = int(os.environ.get("WORLD") or gpus)
        if not 1 <= world <= gpus:
            return fail(f"WORLD={world} but {gpus} GPU(s) are visible.")
        backend, device, configs, repeats = "nccl", torch.device("cuda", 0), GPU_CONFIGS, 3
        tp2 = {"new_tokens": NEW_TOKENS}
    steps = (("all-reduce", lambda: all_reduce_line(world, backend)),
             ("TP=1 decoding", lambda: decode_line(device, configs, repeats)),
             ("TP=2 decoding", lambda: smoke_line(gpus, prompt_ids(), **tp2)))
    for what, step in steps:
        try:
            print(step(), flush=True)
        except tplab.WorkerError as e:
            return fail(f"{what}: a rank failed:\n{e}")
        except Exception as e:  # noqa: BLE001 - say which check failed, then stop
            return fail(f"{what}: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
