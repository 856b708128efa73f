"""What a serving worker runs for one request: an Engine.

Why an interface this small: the pool (`tplab.serve.pool`) only schedules; what a request costs
is the engine's business. An Engine is created in the parent and sent to each worker before
`load()` (so it must pickle while empty: no model inside yet); `load()` runs once inside the
worker, building that worker's own replica, and `run(request)` returns the generated token ids.

`ModelEngine` is the real thing: SmolLM2-135M in float32, greedy, stopping at the end-of-turn
token, exactly `tplab.models.generate.generate` (the reference). `SleepEngine` is its stand-in
for the mechanics (scheduling, a killed worker, a stuck one): it sleeps in proportion to the
request's size and returns `[request.id] * max_new_tokens`, so outputs are known in advance and
a test takes milliseconds, not a model load.
"""
from __future__ import annotations

import time

__all__ = ["Engine", "ModelEngine", "SleepEngine"]


class Engine:
    """One replica's work: `load()` once in the worker, then `run(request)` per request."""

    threads = 1  # torch threads the worker needs (1 lets the pool fork, see tplab.ranks.start)

    def load(self) -> None:
        """Build what `run` needs (in the worker, once)."""

    def run(self, request) -> list[int]:
        """The generated token ids for `request`."""
        raise NotImplementedError


class ModelEngine(Engine):
    """SmolLM2-135M (float32), greedy, stop at the end-of-turn token; `threads` torch threads."""

    def __init__(self, threads: int = 1, path=None):
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads, self.path, self.model = threads, path, None

    def load(self) -> None:
        import torch

        from tplab.models.loading import load_llama

        torch.set_num_threads(self.threads)
        self.model = load_llama(self.path)

    def run(self, request) -> list[int]:
        from tplab.models.generate import generate

        if self.model is None:
            raise RuntimeError("ModelEngine.run before load(): the pool calls load() in the worker")
        return list(generate(self.model, list(request.prompt_ids), request.max_new_tokens,
                             stop_at_eos=True))

    def __getstate__(self):
        return {**self.__dict__, "model": None}  # a replica is built in its worker, never sent


class SleepEngine(Engine):
    """The mechanics' stand-in: sleeps per_token_s per new token (+ per_prompt_token_s per prompt
    token) and returns `[request.id] * request.max_new_tokens`."""

    def __init__(self, per_token_s: float, per_prompt_token_s: float = 0.0):
        if per_token_s < 0 or per_prompt_token_s < 0:
            raise ValueError("sleep times must be >= 0 seconds")
        self.per_token_s, self.per_prompt_token_s = per_token_s, per_prompt_token_s

    def seconds(self, request) -> float:
        """How long `run(request)` sleeps."""
        return (self.per_token_s * request.max_new_tokens
                + self.per_prompt_token_s * len(request.prompt_ids))

    def run(self, request) -> list[int]:
        time.sleep(self.seconds(request))
        return [request.id] * request.max_new_tokens
