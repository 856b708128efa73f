"""Two things every serving engine does to prompts: share their common prefix, and pack them.

Why: a prompt's prefill costs compute in proportion to its tokens (about 2.7 ms a token for
SmolLM2-135M on one thread of the course machine), and the lesson's 32 chat prompts are
1,423 tokens of which the first 24 of each are the same chat template and system prompt.
Prefilled alone, one at a time, they take about 5 s of a 12 s batching run whatever the
schedule, so the schedule's gain on the decode steps is diluted.

- **Prefix caching** (vLLM's automatic prefix caching, SGLang's RadixAttention): the keys and
  values of the shared prefix are computed once (`PrefixCache`) and copied into each new
  sequence's cache; only the prompt's own tokens are prefilled. That leaves 679 prompt tokens.
- **Packing** (Sarathi-Serve's "piggybacking", vLLM's chunked prefill, Agrawal et al.,
  OSDI '24): `packed_step` runs one step for sequences that bring different numbers of new
  tokens (a whole prompt suffix for a sequence just admitted, one token for a sequence
  decoding). Every weight product runs once on all the step's tokens, so the weights are read
  once per step, not once per prompt; attention runs per sequence on its own cache.

Both schedules of `tplab.serve.batching` use both, so the ratio between them still measures
the schedule alone. Exactness: the shared prefix is computed on its own tokens and a packed
product has more rows than one prompt's, so a float32 logit may differ from the one-at-a-time
reference in its last bits; `compare_outputs` reports any token that flips (never hidden).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from tplab.layers import attend_one
from tplab.layers.attention import attend
from tplab.models.llama import Llama

__all__ = ["shared_prefix", "PrefixCache", "packed_step"]


def shared_prefix(prompts: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """The longest run of tokens every prompt starts with, leaving each prompt at least one
    token of its own (its last position gives its first logits). () for fewer than 2 prompts."""
    prompts = [tuple(p) for p in prompts]
    if len(prompts) < 2:
        return ()
    n = min(len(p) for p in prompts) - 1
    k = 0
    while k < n and all(p[k] == prompts[0][k] for p in prompts):
        k += 1
    return prompts[0][:k]


class PrefixCache:
    """The keys and values of `prefix` at every layer, computed once by a prefill of it alone;
    `start(cache)` copies them into a new sequence's empty cache (`model.new_cache(1, n)`)."""

    @torch.inference_mode()
    def __init__(self, model: Llama, prefix: Sequence[int]):
        self.ids = tuple(prefix)
        self.layers = model.new_cache(1, max(1, len(self.ids)))
        if self.ids:
            model(torch.tensor([list(self.ids)]), self.layers)

    def __len__(self) -> int:
        return len(self.ids)

    def start(self, cache) -> None:
        n = len(self.ids)
        for mine, shared in zip(cache, self.layers):
            if mine.length:
                raise ValueError("start() fills an empty cache: this one already holds positions")
            mine.k[:, :, :n], mine.v[:, :, :n] = shared.k[:, :, :n], shared.v[:, :, :n]
            mine.length = n


@torch.inference_mode()
def packed_step(model: Llama, chunks: Sequence[Sequence[int]], caches: Sequence,
                ropes: Sequence) -> torch.Tensor:
    """One step for B sequences bringing `chunks[b]` new tokens each: logits [B, vocab] of
    each sequence's last new position.

    `caches[b]` holds sequence b's earlier positions (its new ones are appended) and `ropes[b]`
    is its `Rotary`. The tokens of all chunks go through every product as one [1, T, hidden]
    input; a one-token chunk attends as `generate` decodes (`attend_one`), a longer one as a
    prompt is prefilled (causal `attend` over its cache and itself). The head runs on the B
    last positions only.
    """
    sizes = [len(c) for c in chunks]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every sequence needs at least one new token, got chunk sizes {sizes}")
    x = model.embed(torch.tensor([[t for c in chunks for t in c]]))
    for i, block in enumerate(model.blocks):
        attn = block.attn
        h = block.attn_norm(x)
        y = F.linear(h, attn.fused[0]) if attn.fused is not None else torch.cat(
            [attn.q(h), attn.k(h), attn.v(h)], dim=-1)
        parts = [_attend(attn, part, cache[i], rope)
                 for part, cache, rope in zip(y.split(sizes, dim=1), caches, ropes)]
        x = x + attn.o(torch.cat(parts, dim=1))
        x = x + block.mlp(block.mlp_norm(x))
    last = torch.tensor(sizes).cumsum(0) - 1
    return model.head(model.norm(x[0, last, None]))[:, -1]  # [B, 1, hidden] as decode_step's


def _attend(attn, y, cache, rope):
    """One sequence's attention from its slice y [1, s, (hq + 2·hkv)·d] of the fused q|k|v."""
    if y.shape[1] == 1:
        return attend_one(y, attn.n_heads, attn.kv_of_head, attn.groups, rope, cache)
    s, d = y.shape[1], attn.head_dim
    q, k, v = y.split([attn.n_heads * d, attn.n_kv_heads * d, attn.n_kv_heads * d], dim=-1)
    heads = lambda t: t.view(1, s, -1, d).transpose(1, 2)  # noqa: E731
    out = attend(heads(q), heads(k), heads(v), attn.kv_of_head, rope, cache)
    return out.transpose(1, 2).reshape(1, s, -1)
