"""Serving throughput of SmolLM2 through a pipeline, measured: does PP pay on this machine?

A pipeline does not make one prompt faster (its tokens are a chain through every stage);
it lets pp prompts be decoded at once, one per stage. So the figure is tokens per second
over a batch of prompts that all arrive at t = 0, and each prompt's latency (from then to
its last token) beside it. PP = 1 runs the prompts one after another on one rank, the
pipelined run keeps them all in flight (`tplab.pp.llm.pipelined_generate`).

Fair comparisons: every prompt generates exactly `max_new` tokens (no stopping at the
end-of-turn token), the same prompts at every layout, one untimed warm-up run, then the
median of `repeats` runs in the same launch (the load is not timed). Threads are per rank:
PP = 2 with 1 thread each and PP = 1 with 2 threads use the same two cores.

The stages are split by="reads" by default (bytes of weights a decoded token reads: the head
counts, the embedding lookup does not), the split a server wants: by parameter bytes the
last stage holds 15 layers and the head, about 60 % of a token's work, and the pipeline runs
at its pace. Measured on 2 shared cores (4 prompts x 32 tokens, medians of 5 rounds): PP=1
19.9 tok/s on 1 thread, 18.1 on 2; PP=2 25.7 split by params, 29.3 by reads. Two cores also
share the memory bandwidth every decode step streams its weights through: two independent
one-thread decoders side by side each ran at ~75-80 % of one alone, so ~1.5x is near this
machine's ceiling for any use of its second core.
"""
from __future__ import annotations

import os

from tplab.timing import median, percentile

__all__ = ["serving_benchmark", "SERVING_PROMPTS"]

SERVING_PROMPTS = ["What is the capital of France?", "Explain tensor parallelism in one sentence.",
                   "Write a haiku about GPUs.", "I have 12 apples and eat 3. How many are left?",
                   "List three uses of a hash map.", "Why is the sky blue?",
                   "Name a prime number larger than 50.", "What does a compiler do?"]


def serving_prompts(n: int) -> list[list[int]]:
    """n chat-templated prompts (the list again, numbered, if n is larger than it)."""
    from tplab.models.tokenizer import SmolTokenizer

    tok = SmolTokenizer()
    texts = [SERVING_PROMPTS[i % len(SERVING_PROMPTS)]
             + (f" ({i // len(SERVING_PROMPTS) + 1})" if i >= len(SERVING_PROMPTS) else "")
             for i in range(n)]
    return [tok.encode(tok.chat(t)) for t in texts]


def _serve(prompts, max_new, pp, tp, by, repeats):
    import torch

    from tplab.pp.llm import load_stage, pipelined_generate

    me = load_stage(pp, tp, by)
    pipelined_generate(prompts, 2, pp, tp, rank=me, stop_at_eos=False)  # warm-up, untimed
    runs = [pipelined_generate(prompts, max_new, pp, tp, rank=me, stop_at_eos=False)
            for _ in range(repeats)]
    return {"layers": [me.layers.start, me.layers.stop], "runs": runs,
            "threads": torch.get_num_threads()}


def serving_benchmark(pp: int, n_prompts: int, max_new: int, threads: int, tp: int = 1,
                      by: str = "reads", repeats: int = 3, timeout: float = 600) -> dict:
    """Serve n_prompts prompts (all in flight) of max_new tokens each on pp x tp ranks with
    `threads` torch threads per rank; the medians over `repeats` runs:
    {"pp", "tp", "threads", "by", "stages", "prompts", "tokens", "tokens_per_s",
     "latency_p50_s", "latency_max_s", "repeats"}."""
    import tplab

    # as `tplab generate` does: waiting OpenMP threads sleep instead of spinning — set for the
    # ranks only (they take this process's environment), never left in the caller's
    passive = threads > 1 and "OMP_WAIT_POLICY" not in os.environ
    if passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        results = tplab.launch(_serve, pp * tp, serving_prompts(n_prompts), max_new, pp, tp, by,
                               repeats, backend="gloo", timeout=timeout, threads=threads)
    finally:
        if passive:
            del os.environ["OMP_WAIT_POLICY"]
    runs = next(r["runs"] for r in reversed(results))  # the last stage's rank
    stages = [results[s * tp]["layers"] for s in range(pp)]
    return {"pp": pp, "tp": tp, "threads": results[0]["threads"], "by": by, "stages": stages,
            "prompts": n_prompts, "tokens": sum(len(t) for t in runs[0]["tokens"]),
            "tokens_per_s": median([r["tokens_per_s"] for r in runs]),
            "latency_p50_s": median([percentile(r["latency_s"], 0.5) for r in runs]),
            "latency_max_s": median([max(r["latency_s"]) for r in runs]),
            "repeats": repeats}
