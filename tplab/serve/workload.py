"""Lesson 06's requests: written prompts, heavy-tailed answer lengths, and their reference outputs.

Why heavy-tailed: in real serving most answers are short and a few are very long. That tail
is what makes scheduling matter: a static split that happens to give one worker two long
requests keeps it busy long after the others are idle, and a long request at the head of a
FIFO queue makes every short one behind it wait. Lengths are drawn from a lognormal with a
seeded `random.Random`, so a seed is the same workload on every machine.

The reference is greedy generation one request at a time (`tplab.models.generate.generate`,
stopping at the end-of-turn token): whatever a pool or a batcher does, its tokens must equal these.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tplab.serve.prompts import PROMPTS

__all__ = ["Request", "make_workload", "reference_outputs", "draw_lengths"]

# lognormal lengths: median MEDIAN tokens, log-spread SIGMA (1 request in 10 is > 5x the median)
MEDIAN, SIGMA = 6.0, 1.3


@dataclass(frozen=True)
class Request:
    """One request: its prompt (text and chat-templated ids) and how many tokens it may get."""
    id: int
    text: str
    prompt_ids: tuple[int, ...]
    max_new_tokens: int


def draw_lengths(n: int, seed: int = 0, cap: int = 48, *, median: float = MEDIAN,
                 sigma: float = SIGMA) -> list[int]:
    """n heavy-tailed `max_new_tokens`: lognormal (median 6, sigma 1.3), rounded, clipped to
    [1, cap]; the same for the same seed everywhere (`random.Random(seed)`).

    `median` and `sigma` (keywords; defaults MEDIAN and SIGMA, the lesson's workload) set the
    lognormal's median in tokens and its log-spread, for heavier or lighter tails than the
    lesson's (`bench/serve.py` explores them); the same seed draws the same normal deviates
    whatever they are, so only the lengths' scale and spread change."""
    if cap < 1:
        raise ValueError(f"cap must be >= 1 token, got {cap}")
    if median <= 0 or sigma < 0:
        raise ValueError(f"median must be > 0 tokens and sigma >= 0, got {median}, {sigma}")
    rng = random.Random(seed)
    return [min(cap, max(1, round(rng.lognormvariate(math.log(median), sigma))))
            for _ in range(n)]


def make_workload(n: int = 32, seed: int = 0, cap: int = 48, *, median: float = MEDIAN,
                  sigma: float = SIGMA) -> list[Request]:
    """n requests with ids 0..n-1: prompt i is PROMPTS[i mod len(PROMPTS)] (numbered "(2)", ...
    when the list comes round again), chat-templated as `tplab.pp.serving` prepares prompts;
    max_new_tokens from `draw_lengths(n, seed, cap, median=median, sigma=sigma)` (the keyword
    options default to the lesson's lognormal, median 6 and sigma 1.3)."""
    from tplab.models.tokenizer import SmolTokenizer

    if n < 1:
        raise ValueError(f"a workload needs at least one request, got n={n}")
    tok = SmolTokenizer()
    requests = []
    for i, limit in enumerate(draw_lengths(n, seed, cap, median=median, sigma=sigma)):
        text = PROMPTS[i % len(PROMPTS)]
        if i >= len(PROMPTS):
            text += f" ({i // len(PROMPTS) + 1})"
        requests.append(Request(i, text, tuple(tok.encode(tok.chat(text))), limit))
    return requests


def reference_outputs(requests, model=None) -> dict[int, list[int]]:
    """{request id: greedy tokens}, one request at a time on this process, stopping at the
    end-of-turn token. `model`: a loaded SmolLM2 (`load_llama()`), loaded here if None."""
    from tplab.models.generate import generate
    from tplab.models.loading import load_llama

    model = model if model is not None else load_llama()
    return {r.id: list(generate(model, list(r.prompt_ids), r.max_new_tokens, stop_at_eos=True))
            for r in requests}
