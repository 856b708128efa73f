"""Prefix caching and packed steps (`tplab.serve.packing`): what both batching schedules use to
prefill. A packed step must give each sequence the logits it would get alone, whatever mix of
prompt suffixes and single decode tokens shares it, and a copied prefix the same cache as one
computed inside the prompt."""
from __future__ import annotations

import pytest
import torch

from tplab.checks.lesson06_batching import tiny_llama, tiny_requests
from tplab.layers import Rotary
from tplab.serve.packing import PrefixCache, packed_step, shared_prefix


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix([(1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 9)]) == (1, 2)
    assert shared_prefix([(1, 2, 3), (1, 2, 3, 4)]) == (1, 2)  # (1, 2, 3) keeps its 3
    assert shared_prefix([(1, 2, 3), (4, 2, 3)]) == ()
    assert shared_prefix([(1, 2, 3)]) == ()  # nothing is shared by one prompt
    assert shared_prefix([]) == ()


def alone(model, prompt, tokens):
    """Logits after `prompt` then `tokens`, one position at a time: the reference path."""
    cache = model.new_cache(1, len(prompt) + len(tokens) + 1)
    logits = model(torch.tensor([list(prompt)]), cache)
    for t in tokens:
        logits = model(torch.tensor([[t]]), cache)
    return logits[0, -1]


@pytest.mark.parametrize("fused", [False, True])
def test_a_packed_step_mixes_prefills_and_decodes_exactly(fused):
    torch.manual_seed(0)
    model = tiny_llama(seed=3)
    if fused:
        for block in model.blocks:
            block.attn.fuse()
    prefix = (5, 9, 11, 2)
    prompts = [prefix + (7, 1, 30), prefix + (12,), prefix + (40, 41), prefix + (3, 3, 3, 3)]
    assert shared_prefix(prompts) == prefix
    shared = PrefixCache(model, prefix)
    c = model.config
    caches = [model.new_cache(1, 16) for _ in prompts]
    ropes = [Rotary(c.head_dim, c.rope_base) for _ in prompts]
    for cache in caches:
        shared.start(cache)
        assert all(layer.length == len(prefix) for layer in cache)
    # step 1: sequences 0 and 1 prefill their suffixes; step 2: they decode one token while 2
    # and 3 join with their whole suffixes
    first = packed_step(model, [p[4:] for p in prompts[:2]], caches[:2], ropes[:2])
    picks = [int(row.argmax()) for row in first]
    second = packed_step(model, [[picks[0]], [picks[1]], prompts[2][4:], prompts[3][4:]],
                         caches, ropes)
    for i in range(2):
        torch.testing.assert_close(first[i], alone(model, prompts[i], []), atol=1e-4, rtol=0)
        torch.testing.assert_close(second[i], alone(model, prompts[i], [picks[i]]), atol=1e-4,
                                   rtol=0)
    for i in (2, 3):
        torch.testing.assert_close(second[i], alone(model, prompts[i], []), atol=1e-4, rtol=0)
    assert [layer.length for layer in caches[0]][0] == len(prompts[0]) + 1


def test_bad_chunks_and_reused_caches_are_refused():
    model = tiny_llama()
    shared = PrefixCache(model, (1, 2))
    cache = model.new_cache(1, 8)
    shared.start(cache)
    with pytest.raises(ValueError, match="empty cache"):
        shared.start(cache)
    with pytest.raises(ValueError, match="at least one new token"):
        packed_step(model, [[3], []], [cache, model.new_cache(1, 8)], [None, None])


def test_the_schedules_prefill_each_prompt_past_the_shared_prefix_once():
    """Both schedules on requests sharing a prefix: the same tokens as one at a time."""
    from tplab.checks.lesson06_batching import one_at_a_time
    from tplab.serve.batching import continuous_batching, static_batching
    from tplab.serve.workload import Request

    model = tiny_llama(seed=2)
    base = tiny_requests([3, 1, 4, 2, 5], seed=4)
    requests = [Request(r.id, r.text, (8, 8, 6) + r.prompt_ids, r.max_new_tokens) for r in base]
    reference = one_at_a_time(model, requests)
    for batcher in (static_batching, continuous_batching):
        assert batcher(model, requests, 2).outputs == reference
