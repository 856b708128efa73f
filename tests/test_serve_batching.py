"""Static and continuous batching (`tplab.serve.batching`): the schedule step by step, tokens
equal to one-at-a-time greedy generation, and flipped near ties reported, never hidden.

The mechanics run on a tiny random Llama built from `tplab.layers` (milliseconds a step); the
real model, SmolLM2-135M, appears in one test with a few short requests.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from tplab.checks.lesson06_batching import one_at_a_time, tiny_requests  # exercise 06.2's too
from tplab.layers import Attention, Block, Rotary, SwiGLU, TiedHead
from tplab.models.llama import Config, Llama
from tplab.serve.batching import (
    NEAR_TIE,
    BatchReport,
    compare_outputs,
    continuous_batching,
    decode_step,
    static_batching,
)
from tplab.serve.records import Record
from tplab.serve.workload import Request

NO_EOS = 10_000  # an end-of-turn id outside the tiny vocabulary: every request runs to its limit


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as a serving worker runs: on two busy cores, two threads of tiny
    products mostly wait for each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_llama(seed: int = 0, eos_id: int = NO_EOS) -> Llama:
    """A 2-layer Llama with random weights (vocab 64), fused for inference like `load_llama`."""
    c = Config(vocab_size=64, hidden=32, ffn=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8,
               context=256, eos_id=eos_id)
    torch.manual_seed(seed)
    embed = nn.Embedding(c.vocab_size, c.hidden)
    blocks = [Block(Attention(c.hidden, c.n_heads, c.n_kv_heads, c.head_dim),
                    SwiGLU(c.hidden, c.ffn), c.hidden, c.norm_eps) for _ in range(c.n_layers)]
    model = Llama(c, embed, blocks, TiedHead(embed.weight))
    with torch.no_grad():
        embed.weight.mul_(4.0)  # wider logits: random gaps far above float32 noise
    model.requires_grad_(False)
    for block in model.blocks:
        block.attn.fuse()
        block.mlp.fuse()
    return model.eval()


def check_invariants(report, requests, limit):
    ids = [r.id for r in requests]
    assert sorted(report.outputs) == sorted(ids), "every request served exactly once"
    assert all(len(step) <= limit for step in report.steps), "the batch limit was exceeded"
    for rid in ids:  # a request gets one token per step it is in, in consecutive steps
        where = [k for k, step in enumerate(report.steps) if rid in step]
        assert len(where) == len(report.outputs[rid]), rid
        assert where == list(range(where[0], where[0] + len(where))), (rid, where)
    for rec in report.records:
        assert rec.worker == 0 and rec.attempts == 1
        assert 0.0 == rec.submitted <= rec.started <= rec.finished <= report.makespan


# limits 3, 1, 5, 2, 4 at a batch of 2, traced by hand (no end-of-turn token can stop them)
LIMITS = [3, 1, 5, 2, 4]
CONTINUOUS_TRACE = [[0, 1], [0, 2], [0, 2], [2, 3], [2, 3], [2, 4], [4], [4], [4]]
STATIC_TRACE = [[0, 1], [0], [0], [2, 3], [2, 3], [2], [2], [2], [4], [4], [4], [4]]


@pytest.mark.parametrize("batcher, trace", [(continuous_batching, CONTINUOUS_TRACE),
                                            (static_batching, STATIC_TRACE)])
def test_schedule_matches_the_hand_trace_and_tokens_equal_generate(batcher, trace):
    model, requests = tiny_llama(), tiny_requests(LIMITS)
    report = batcher(model, requests, 2)
    assert isinstance(report, BatchReport) and report.workers == 2
    assert 0 < report.prefill_s and 0 < report.decode_s
    assert report.prefill_s + report.decode_s <= report.makespan
    assert report.policy == ("continuous" if batcher is continuous_batching else "static")
    assert report.steps == trace
    check_invariants(report, requests, 2)
    assert [len(report.outputs[r.id]) for r in requests] == LIMITS
    assert report.outputs == one_at_a_time(model, requests)
    assert compare_outputs(report, one_at_a_time(model, requests), model) == []
    saved = json.loads(report.to_json())
    assert saved["steps"] == trace and saved["prefill_s"] == report.prefill_s


def test_end_of_turn_retires_a_sequence_and_frees_its_slot():
    requests = tiny_requests([12] * 6, seed=3)
    free = one_at_a_time(tiny_llama(), requests)
    eos = free[0][4]  # request 0's fifth token becomes the end-of-turn token: it stops there
    model = tiny_llama(eos_id=eos)
    reference = one_at_a_time(model, requests)
    assert len(reference[0]) <= 5 and reference[0][-1] == eos
    for batcher in (continuous_batching, static_batching):
        report = batcher(model, requests, 3)
        check_invariants(report, requests, 3)
        assert report.outputs == reference, batcher.__name__
    steps = continuous_batching(model, requests, 3).steps
    # continuous: request 3 joins right after the step where request 0 said end-of-turn
    assert steps[len(reference[0])][-1] == 3
    assert all(len(s) == 3 for s in steps[:len(reference[0]) + 1])


def test_continuous_takes_fewer_steps_than_static_on_skewed_lengths():
    model, requests = tiny_llama(), tiny_requests([20, 1, 1, 1, 1, 1, 1, 1])
    static = static_batching(model, requests, 2)
    continuous = continuous_batching(model, requests, 2)
    assert len(static.steps) == 20 + 3  # the long one holds its batch; three short batches after
    assert len(continuous.steps) == 20  # the short ones pass through the second slot meanwhile
    assert static.outputs == continuous.outputs == one_at_a_time(model, requests)


def test_bad_arguments_are_refused_clearly():
    model, requests = tiny_llama(), tiny_requests([2, 2])
    with pytest.raises(ValueError, match="max_batch must be a whole number >= 1"):
        continuous_batching(model, requests, 0)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        static_batching(model, requests, 1.5)
    with pytest.raises(ValueError, match="no requests"):
        static_batching(model, [], 2)
    with pytest.raises(ValueError, match="id 0 appears twice"):
        continuous_batching(model, [requests[0], requests[0]], 2)
    with pytest.raises(ValueError, match="empty prompt"):
        continuous_batching(model, [Request(7, "", (), 3)], 2)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        continuous_batching(model, [dataclasses.replace(requests[0], max_new_tokens=0)], 2)
    with pytest.raises(ValueError, match="exceed the model's context"):
        continuous_batching(model, [dataclasses.replace(requests[0], max_new_tokens=300)], 2)


def near_tie_model():
    """A tiny model where token b's head row is token a's scaled by (1 - 1e-6): whenever a is the
    greedy pick, b is a hair behind (a near tie), and requests whose token 1 is a (decoded in a
    batched step) are known in advance."""
    model, requests = tiny_llama(seed=5), tiny_requests([4] * 8, seed=6)
    reference = one_at_a_time(model, requests)
    a = max(set(t[1] for t in reference.values()), key=[t[1] for t in reference.values()].count)
    used = {t for r in requests for t in r.prompt_ids} | {t for v in reference.values() for t in v}
    b = next(t for t in range(3, 64) if t not in used)
    with torch.no_grad():
        model.embed.weight[b] = model.embed.weight[a] * (1 - 1e-6)
    reference = one_at_a_time(model, requests)
    # where a batched step (every step: the 8 prompts are prefilled in one packed step) picks a
    flips = {i: t.index(a) for i, t in reference.items() if a in t}
    assert flips, "the setup needs a request that decodes token a"
    return model, requests, reference, a, b, flips


class Nudged(nn.Module):
    """The head, plus `bonus` on token b's logit in batched steps only (more than one sequence):
    a stand-in for batched float32 products that round differently from one-at-a-time ones."""

    def __init__(self, head, b: int, bonus: float):
        super().__init__()
        self.head, self.b, self.bonus = head, b, bonus

    def forward(self, x):
        logits = self.head(x)
        if x.shape[0] > 1:
            logits[..., self.b] += self.bonus
        return logits


def test_a_flipped_near_tie_is_found_with_its_step_and_gap():
    model, requests, reference, a, b, flips = near_tie_model()
    head = model.head
    model.head = Nudged(head, b, bonus=1e-2)  # larger than the a-b gap: the batch picks b
    report = continuous_batching(model, requests, len(requests))
    model.head = head
    found = compare_outputs(report, reference, model)
    assert {m.id: m.step for m in found} == flips, [str(m) for m in found]
    for m in found:
        assert (m.expected, m.got) == (a, b), str(m)
        r, done = requests[m.id], reference[m.id][:m.step]
        cache = model.new_cache(1, len(r.prompt_ids) + m.step)
        logits = model(torch.tensor([list(r.prompt_ids)]), cache)
        for t in done:
            logits = model(torch.tensor([[t]]), cache)
        assert m.gap == pytest.approx(float(logits[0, -1, a] - logits[0, -1, b]), abs=1e-6)
        assert 0 < m.gap < 1e-2 and m.near_tie, str(m)
        assert f"request {m.id}, step {m.step}" in str(m) and "a flipped near tie" in str(m)
        assert r.text in str(m)
    # every other request is untouched: a flip is reported where it happened and nowhere else
    assert all(report.outputs[i] == reference[i] for i in reference if i not in flips)


def test_a_large_flip_is_reported_as_a_bug_not_a_near_tie():
    model, requests, reference, a, b, flips = near_tie_model()
    head = model.head
    model.head = Nudged(head, b, bonus=1e4)  # b wins every batched step: far beyond noise
    report = continuous_batching(model, requests, len(requests))
    model.head = head
    found = compare_outputs(report, reference, model)
    assert {m.id for m in found} == set(reference)  # all 8 prefilled in one packed step
    assert all(m.step == 0 and m.got == b for m in found)
    # near ties exactly where the reference's first token is a (b a hair behind), bugs elsewhere
    ties = {m.id for m in found if m.near_tie}
    assert ties == {i for i, t in reference.items() if t[0] == a}
    bugs = [m for m in found if not m.near_tie]
    assert bugs and all(m.gap > 1.0 for m in bugs), [str(m) for m in bugs]
    assert "NOT a near tie: a bug" in str(bugs[0])


def test_missing_extra_and_truncated_outputs_are_never_near_ties():
    model, requests = tiny_llama(), tiny_requests([3, 3, 3])
    reference = one_at_a_time(model, requests)
    report = continuous_batching(model, requests, 3)
    report.records[0].tokens = report.records[0].tokens[:2]  # stopped early
    report.records[1] = Record(9, 0, 0.0, 0.0, 0.0, [5], 1)  # 1 missing, 9 unexpected
    found = {m.id: m for m in compare_outputs(report, reference, model)}
    assert sorted(found) == [0, 1, 9]
    assert (found[0].step, found[0].expected, found[0].got) == (2, reference[0][2], None)
    assert (found[1].expected, found[1].got) == (reference[1][0], None)
    assert (found[9].expected, found[9].got) == (None, 5)
    assert all(m.gap == float("inf") and not m.near_tie for m in found.values())


def test_smollm2_batched_tokens_equal_the_reference():
    """The real model: a few short requests, both schedules, against `reference_outputs`; and
    the batched step's logits within float32 noise of one-at-a-time decoding (NEAR_TIE's basis)."""
    from tplab.models.loading import load_llama
    from tplab.serve.workload import make_workload, reference_outputs

    model = load_llama()
    requests = [dataclasses.replace(r, max_new_tokens=min(r.max_new_tokens, 3))
                for r in make_workload(n=4, cap=48)]
    reference = reference_outputs(requests, model)
    for batcher in (continuous_batching, static_batching):
        report = batcher(model, requests, 3)
        check_invariants(report, requests, 3)
        found = compare_outputs(report, reference, model)
        assert all(m.near_tie for m in found), [str(m) for m in found]
        assert report.outputs == reference or found  # a difference is always reported
        assert report.tokens == sum(len(v) for v in reference.values()) or found
    # one decode step of three prompts at once vs each alone, from the same caches
    caches = []
    for r in requests[:3]:
        caches.append(model.new_cache(1, len(r.prompt_ids) + 2))
        model(torch.tensor([list(r.prompt_ids)]), caches[-1])
    ropes = [Rotary(model.config.head_dim, model.config.rope_base) for _ in range(3)]
    tokens = [reference[r.id][0] for r in requests[:3]]
    together = decode_step(model, tokens, caches, ropes)
    for i, cache in enumerate(caches):
        for layer in cache:
            layer.length -= 1  # back to the prompt: decode the same position alone
        alone = model(torch.tensor([[tokens[i]]]), cache)[0, -1]
        assert torch.allclose(together[i], alone, atol=NEAR_TIE / 10, rtol=0), \
            float((together[i] - alone).abs().max())
