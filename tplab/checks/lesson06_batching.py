"""Checks of exercise 06.2 (solutions/06_task_parallelism.ipynb): one step of continuous
(iteration-level) batching — admit, decode, retire — written by the learner, driven here step
by step on a tiny random Llama until every request is served.

`run_steps` calls the learner's step until the queue and the batch are empty and records, per
step, which sequences got a token, what the model's head was asked to compute (rows, positions:
a prefill is [1, prompt length], a batched decode [B, 1]), and what was returned as finished.
`check_continuous` requires the tokens of `tplab.models.generate.generate` one request at a
time, the step-by-step batch composition of `tplab.serve.batching.continuous_batching` (which
is switched off while the learner's step runs), the limit never exceeded, a finished sequence
returned in the step that finished it, never left in the batch, and one decode over every
running sequence per step (the weights read once for the batch), not one model call per
sequence: all in one check, since right tokens by the unbatched route are no answer.
"""
from __future__ import annotations

from collections import deque

import torch
from torch import nn

from tplab.checks.forbid import forbidden
from tplab.layers import Attention, Block, SwiGLU, TiedHead
from tplab.layers.rotary import Rotary
from tplab.models.generate import generate
from tplab.models.llama import Config, Llama
from tplab.serve import batching
from tplab.serve.workload import Request

__all__ = ["Sequence", "tiny_llama", "tiny_requests", "CASES", "make_case", "run_steps",
           "check_continuous", "NO_EOS"]

NO_EOS = 10_000  # an end-of-turn id outside the tiny vocabulary: every request runs to its limit
# (limits, batch limit, end-of-turn: None, or (request r, k) to make r's token k the end-of-turn
# id). (0, 4): a decoded token ends request 0's turn; (2, 0): request 2's first token, the one its
# prefill makes, is end-of-turn (request 4 starts with it too): both leave at their admission
CASES = [([3, 1, 5, 2, 4], 2, None), ([2, 6, 1, 1, 3, 4, 2], 3, None),
         ([7, 7, 7, 7, 7], 3, (0, 4)), ([4, 2, 3], 1, None), ([4, 3, 5, 2, 3], 2, (2, 0))]
MAX_STEPS = 200
_NOT_YOURS = ("continuous_step called tplab.serve.batching.{}, which runs the whole schedule the "
              "check compares with: write the step yourself (decode_step is allowed)")


class Sequence:
    """One request being generated: its own KV cache (`cache`, room for the prompt and every new
    token), its own rotary position (`rope`, for `decode_step`), and its new `tokens`."""

    def __init__(self, model: Llama, request: Request):
        c = model.config
        self.request, self.tokens = request, []
        self.cache = model.new_cache(1, len(request.prompt_ids) + request.max_new_tokens)
        self.rope = Rotary(c.head_dim, c.rope_base)

    def __repr__(self) -> str:
        return f"Sequence(request {self.request.id}, {len(self.tokens)} tokens)"


def tiny_llama(seed: int = 0, eos_id: int = NO_EOS) -> Llama:
    """A 2-layer Llama with random weights (vocab 64, an untied head), fused for inference like
    `load_llama`: milliseconds a step, varied tokens, no float32 near ties."""
    c = Config(vocab_size=64, hidden=32, ffn=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8,
               context=256, eos_id=eos_id)
    torch.manual_seed(seed)
    embed = nn.Embedding(c.vocab_size, c.hidden)
    blocks = [Block(Attention(c.hidden, c.n_heads, c.n_kv_heads, c.head_dim),
                    SwiGLU(c.hidden, c.ffn), c.hidden, c.norm_eps) for _ in range(c.n_layers)]
    # a head of its own (a tied one makes a random model repeat its input token for ever),
    # scaled: the random logits' gaps stay far above float32 noise
    model = Llama(c, embed, blocks, TiedHead(nn.Parameter(torch.randn(c.vocab_size, c.hidden) * 2)))
    model.requires_grad_(False)
    for block in model.blocks:
        block.attn.fuse()
        block.mlp.fuse()
    return model.eval()


def tiny_requests(limits, seed: int = 1) -> list[Request]:
    """Requests 0.. with random prompts of 1-8 tokens and the given `max_new_tokens`."""
    g = torch.Generator().manual_seed(seed)
    return [Request(i, f"tiny prompt {i}",
                    tuple(torch.randint(3, 64, (int(torch.randint(1, 9, (1,), generator=g)),),
                                        generator=g).tolist()), n)
            for i, n in enumerate(limits)]


def one_at_a_time(model, requests) -> dict:
    return {r.id: list(generate(model, list(r.prompt_ids), r.max_new_tokens)) for r in requests}


def make_case(limits, max_batch, eos_at=None):
    """(model, requests, max_batch, reference tokens, reference steps) for one case; `eos_at`
    (r, k) makes request r's token k (one-at-a-time) the end-of-turn id: r must leave there."""
    requests = tiny_requests(limits)
    model = tiny_llama()
    if eos_at is not None:
        r, k = eos_at
        model = tiny_llama(eos_id=one_at_a_time(model, requests[r:r + 1])[r][k])
    tokens = one_at_a_time(model, requests)
    steps = [sorted(s) for s in batching.continuous_batching(model, requests, max_batch).steps]
    return model, requests, max_batch, tokens, steps


def run_steps(step, model, requests, max_batch) -> dict:
    """Drive the learner's step until every request is served; per step the ids that got a
    token, the head's input shapes, and the ids returned finished. AssertionError on a broken
    invariant (a lost or duplicated sequence, two tokens in a step, a finished one kept)."""
    waiting, running = deque(requests), []
    eos, shapes = model.config.eos_id, []
    hook = model.head.register_forward_hook(lambda m, args, out: shapes.append(
        tuple(args[0].shape[:2])))
    steps, heads, finished, outputs, where = [], [], [], {}, {}
    try:
        while waiting or running:
            assert len(steps) < MAX_STEPS, (
                f"after {MAX_STEPS} steps requests are still waiting or running: does your step "
                f"admit waiting requests and return the finished ones?")
            k, before = len(steps), {id(s): len(s.tokens) for s in running}
            old, shapes[:] = list(running), []
            done = step(model, waiting, running, max_batch)
            assert isinstance(done, (list, tuple)), (
                f"step {k}: continuous_step returned {type(done).__name__}; return the list of "
                f"sequences that finished in this step ([] if none)")
            batch = list(running) + list(done)
            assert all(isinstance(s, Sequence) for s in batch), (
                f"step {k}: running and the returned list must hold Sequence objects "
                f"(Sequence(model, request)), found {[type(s).__name__ for s in batch]}")
            lost = [s.request.id for s in old if all(s is not b for b in batch)]
            assert not lost, (f"step {k}: request(s) {lost} were running before the step and "
                              f"are neither running nor returned finished after it")
            grew = []
            for s in batch:
                added = len(s.tokens) - before.get(id(s), 0)
                assert added in (0, 1), (
                    f"step {k}: request {s.request.id} got {added} tokens in one step; each "
                    f"sequence in the batch gets exactly one (a newly admitted one: its prefill's "
                    f"token, no decode on top)")
                if added:
                    grew.append(s.request.id)
            idle = [s.request.id for s in batch if id(s) in before and len(s.tokens) ==
                    before[id(s)]]
            assert not idle, (f"step {k}: request(s) {idle} were running but got no token: every "
                              f"running sequence is decoded at every step")
            assert len(grew) <= max_batch, (
                f"step {k}: {len(grew)} sequences got a token, {sorted(grew)}, but at most "
                f"max_batch = {max_batch} may be in the batch: admit while running + admitted "
                f"< max_batch")
            for s in running:
                assert not _done(s, eos), (
                    f"step {k}: request {s.request.id} is finished ({len(s.tokens)} of "
                    f"{s.request.max_new_tokens} tokens"
                    + (", the last the end-of-turn token" if s.tokens and s.tokens[-1] == eos
                       else "")
                    + (" made by its prefill: check the admitted ones too"
                       if len(s.tokens) == 1 and s.tokens[-1] == eos else "")
                    + ") but still in running: a finished sequence leaves in the step that "
                      "finished it, returned in the list, so its slot is free for the next step")
            for s in done:
                rid = s.request.id
                assert _done(s, eos), (
                    f"step {k}: request {rid} was returned finished with {len(s.tokens)} of "
                    f"{s.request.max_new_tokens} tokens and no end-of-turn token: it still had "
                    f"tokens to generate")
                assert rid not in outputs, (f"step {k}: request {rid} was returned finished "
                                            f"twice (first at step {where[rid]})")
                outputs[rid], where[rid] = list(s.tokens), k
            steps.append(sorted(grew))
            heads.append(list(shapes))
            finished.append(sorted(s.request.id for s in done))
    finally:
        hook.remove()
    return {"steps": steps, "heads": heads, "finished": finished, "outputs": outputs}


def _done(s, eos) -> bool:
    return bool(s.tokens) and (len(s.tokens) >= s.request.max_new_tokens or s.tokens[-1] == eos)


def _runs(step, namespace):
    cases = [make_case(*case) for case in CASES]   # the reference, before it is switched off
    answers = {fn: _NOT_YOURS.format(fn.__name__) for fn in
               (batching.continuous_batching, batching.static_batching)}
    runs = []
    with forbidden(namespace, answers):
        for model, requests, max_batch, _, _ in cases:
            runs.append(run_steps(step, model, requests, max_batch))
    return cases, runs


def check_continuous(step, namespace) -> list:
    """On every case: tokens equal one-at-a-time generation, the batch at every step equals
    continuous batching's, and each step makes one prefill call per admitted sequence and one
    decode over all the running ones (B rows at once); the runs, for a picture."""
    cases, runs = _check_continuous(step, namespace)
    for (_, requests, max_batch, _, _), run in zip(cases, runs):
        _check_batched(run, requests, max_batch)
    return runs


def _check_continuous(step, namespace):
    cases, runs = _runs(step, namespace)
    for (model, requests, max_batch, tokens, want), run in zip(cases, runs):
        eos = model.config.eos_id
        ends = [f"request {rid}'s token {toks.index(eos) + 1}" for rid, toks in tokens.items()
                if eos in toks]
        what = (f"limits {[r.max_new_tokens for r in requests]}, max_batch {max_batch}"
                + (f", end-of-turn id {eos} ({', '.join(ends)}; token 1 is the prefill's: a "
                   f"request can end its turn at admission)" if ends else ""))
        missing = sorted(set(tokens) - set(run["outputs"]))
        assert not missing, f"{what}: request(s) {missing} were never returned finished"
        for rid, want_tokens in tokens.items():
            assert run["outputs"][rid] == want_tokens, (
                f"{what}: request {rid}'s tokens are {run['outputs'][rid]}, one-at-a-time greedy "
                f"generation gives {want_tokens}: prefill the prompt into the sequence's own "
                f"cache, then decode its last token at each step, picking the argmax")
        got = run["steps"]
        if got != want:
            k = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
            raise AssertionError(
                f"{what}: at step {k} the batch was {got[k] if k < len(got) else 'gone'}, "
                f"continuous batching's is {want[k] if k < len(want) else 'done'}: "
                + _why(got, want, k, max_batch)
                + f"\n  expected steps: {want}\n  yours:          {got}")
    return cases, runs


def _why(got, want, k, max_batch) -> str:
    if k < len(got) and k < len(want) and len(got[k]) < len(want[k]):
        return ("a slot was left empty while requests waited: admit waiting requests into every "
                "free slot at every step (not only when the batch is empty)")
    return ("at each step: admit waiting requests (in order) into free slots and prefill them, "
            "decode every sequence that was already running, then retire the finished ones")


def _check_batched(run, requests, max_batch) -> None:
    """Each step: one head call [1, prompt length] per admitted request and one [B, 1] for the
    B sequences that were running (decode_step's batch), nothing else."""
    seen = set()
    for k, (ids, heads) in enumerate(zip(run["steps"], run["heads"])):
        new = [i for i in ids if i not in seen]
        old = len(ids) - len(new)
        seen.update(ids)
        want = sorted([(1, len(requests[i].prompt_ids)) for i in new] + ([(old, 1)] if old else []))
        assert sorted(heads) == want, (
            f"max_batch {max_batch}, step {k}: the model's head computed {heads} "
            f"([rows, positions] per call), expected one prefill [1, prompt length] per "
            f"admitted request and, for the {old} running sequence(s), one decode of "
            f"[{old}, 1]: decode_step(model, last tokens, caches, ropes) runs them as one "
            f"batch, so every weight is read once per step instead of once per sequence")
