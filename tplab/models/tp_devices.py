"""Tensor-parallel decoding on each rank's own device: GPU ranks over NCCL in bf16, or CPU ranks.

Why a function for it: the course model is loaded on the CPU in float32 (`loading.py`), and a
GPU rank needs three more things that are easy to get wrong: its own GPU (`cuda:LOCAL_RANK`,
the one `tplab.launch` gave it, never cuda:0 for everyone), the dtype GPUs decode in (bf16:
half the bytes a token reads), and timing that waits for the GPU (the token picker's `int()`
does, every token). `decode_on_rank` is that, and nothing else: load this rank's shard, move
it, generate greedily, time the decode steps. It runs unchanged on CPU ranks (gloo, float32 or
bf16), which is how it is tested without a GPU (tests/test_tp_devices.py), and in a plain
process as the one-process reference. Its two halves, `load_on_rank` and `timed_greedy`, serve
a rank that decodes several prompts with one load. `compare_with_tp1` runs it at TP=n and at
TP=1 and counts the tokens that agree: scripts/gpu_smoke.sh prints its `smoke_line`.

bf16 at TP=2 is not bit-identical to bf16 at TP=1: each row-parallel product is two partial
sums rounded to bf16 and then added (one all-reduce), not one sum rounded once, 60 times a
token, and the residual stream is bf16 too. The logits differ by up to ~1 (measured on CPU
ranks: as much as bf16 differs from float32), so a near-tie between two tokens can go the
other way, and greedy decoding then continues from a different token (tests/test_tp_devices.py
measures how often). float32 at TP=2 gives TP=1's tokens exactly (tests/test_models.py).
"""
from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist

from tplab.models.generate import generate
from tplab.models.llama import Llama
from tplab.models.loading import load_llama, load_llama_tp
from tplab.ranks import launch
from tplab.ranks.launcher import pick_backend

DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def rank_device(group=None) -> torch.device:
    """This rank's GPU when its group talks NCCL (`cuda:LOCAL_RANK`), else the CPU; in a plain
    process, GPU 0 if there is one."""
    if dist.is_initialized():
        if dist.get_backend(group) == "nccl":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


def load_on_rank(device=None, dtype: torch.dtype | None = None, group=None) -> Llama:
    """This rank's shard of `group` (in a plain process, the whole model) on `device` in `dtype`.

    device: default `rank_device(group)`; dtype: default bf16 on a GPU, float32 on a CPU.
    Loaded on the CPU in float32, then moved: `Llama` follows its weights (`tplab.models.llama`).
    """
    device = torch.device(device) if device is not None else rank_device(group)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    distributed = dist.is_initialized()
    if distributed and dist.get_backend(group) == "nccl" and device.type != "cuda":
        raise ValueError(f"NCCL ranks reduce GPU tensors: device {device} cannot work here")
    model = load_llama_tp(group) if distributed else load_llama()
    return model.to(device, dtype)


def timed_greedy(model: Llama, prompt_ids: list[int], new_tokens: int, group=None,
                 warm_up: bool = True) -> tuple[list[int], float]:
    """Greedy tokens for `prompt_ids` (all `new_tokens`, EOS or not) and the decode time per
    token in ms, the prefill apart (NaN for one token: the prefill's, no decode step).
    warm_up: first generate two tokens untimed (a GPU's first kernels load and tune)."""
    if warm_up:
        list(generate(model, prompt_ids, 2, stop_at_eos=False, group=group))
    tokens, times = [], []
    for token in generate(model, prompt_ids, new_tokens, stop_at_eos=False, group=group):
        times.append(time.perf_counter())  # the picker waited for the GPU: the token is here
        tokens.append(token)
    if len(times) < 2:
        return tokens, float("nan")
    return tokens, (times[-1] - times[0]) / (len(times) - 1) * 1e3


def decode_on_rank(prompt_ids: list[int], new_tokens: int, device=None,
                   dtype: torch.dtype | None = None, group=None,
                   warm_up: bool = True) -> tuple[list[int], float]:
    """The entry point, for `tplab.launch(decode_on_rank, n, prompt_ids, new_tokens, ...)`:
    `load_on_rank` then `timed_greedy`. Returns (tokens, ms per decoded token)."""
    model = load_on_rank(device, dtype, group)
    return timed_greedy(model, prompt_ids, new_tokens, group, warm_up)


def compare_with_tp1(prompt_ids: list[int], new_tokens: int, world: int = 2,
                     dtype: torch.dtype | None = None, backend: str | None = None,
                     timeout: float = 300.0) -> dict:
    """From the parent process: `decode_on_rank` on `world` ranks, then on one rank (the same
    backend and dtype), and how many of the greedy tokens agree position by position.

    The ranks of one launch pick each token together (one distributed argmax), so they agree
    with each other by construction; that is checked too. Returns tokens, tp1_tokens,
    ms_per_token (the slowest rank's), tok_s, same (positions equal), n, backend, dtype."""
    backend = pick_backend(world, backend)
    runs = [launch(decode_on_rank, n, prompt_ids, new_tokens, None, dtype, backend=backend,
                   timeout=timeout) for n in (world, 1)]
    tokens, tp1 = runs[0][0][0], runs[1][0][0]
    if any(r[0] != tokens for r in runs[0]):
        raise AssertionError(f"the {world} ranks picked different tokens: {runs[0]}")
    ms = max(r[1] for r in runs[0])
    dtype = dtype or (torch.bfloat16 if backend == "nccl" else torch.float32)
    return {"tokens": tokens, "tp1_tokens": tp1, "ms_per_token": ms, "tok_s": 1e3 / ms,
            "same": sum(a == b for a, b in zip(tokens, tp1)), "n": len(tokens),
            "backend": backend, "dtype": DTYPE_NAMES.get(dtype, str(dtype))}


def smoke_line(gpus: int, prompt_ids: list[int], new_tokens: int = 32,
               dtype: torch.dtype = torch.bfloat16, backend: str | None = None,
               timeout: float = 300.0) -> str:
    """scripts/gpu_smoke.sh's TP=2 line: tokens/s of TP=2 decoding, and its tokens against
    TP=1's; a line saying it was skipped with fewer than 2 GPUs. `backend="gloo"` runs the
    same on CPU ranks (what the tests do)."""
    head = "gpu_smoke: decode SmolLM2-135M TP=2"
    if backend != "gloo" and gpus < 2:
        return f"{head}: skipped, TP=2 needs 2 GPUs ({gpus} visible)"
    r = compare_with_tp1(prompt_ids, new_tokens, 2, dtype, backend, timeout)
    return (f"{head} {r['backend'].upper()} {r['dtype']}: {r['tok_s']:.0f} tok/s, "
            f"tokens equal to TP=1 {r['dtype']}: {r['same']}/{r['n']}")
