"""Generation: prefill the prompt, then decode one token at a time from the KV cache.

Choosing the next token never needs the whole vocabulary on one rank. Greedy decoding is
an argmax, and the argmax of a split vector is the best of the ranks' local argmaxes:
one all-reduce (max) of the best value, one of the winning index (ties go to the smallest
id, as torch.argmax does). Sampling uses the Gumbel-max trick — argmax(logits/T + g)
with g ~ Gumbel(0, 1) drawn for the whole vocabulary from a seeded generator on every
rank — so it is the same distributed argmax, and the same seed gives the same tokens at
any tensor-parallel degree.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist

from tplab import comm
from tplab.models.llama import Llama
from tplab.models.loading import vocab_start


class TokenPicker:
    def __init__(self, vocab_size: int, start: int = 0, temperature: float = 0.0, seed: int = 0,
                 group=None):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        self.vocab_size, self.start, self.temperature = vocab_size, start, temperature
        self.group = group
        self.generator = torch.Generator().manual_seed(seed)
        self.distributed = dist.is_initialized() and dist.get_world_size(group) > 1

    def __call__(self, local_logits: torch.Tensor) -> int:
        scores = local_logits.float()
        if self.temperature > 0:
            uniform = torch.rand(self.vocab_size, generator=self.generator).clamp_(1e-20, 1.0)
            gumbel = -torch.log(-torch.log(uniform))
            noise = gumbel[self.start:self.start + scores.shape[-1]]  # drawn on the CPU: on any
            scores = scores / self.temperature + noise.to(scores.device)  # device, same tokens
        best, index = scores.max(dim=-1)
        if not self.distributed:
            return int(index) + self.start
        top = best.reshape(1).clone()
        comm.all_reduce(top, self.group, op="max")
        mine = self.start + int(index) if bool(best == top[0]) else self.vocab_size
        # max of -id = the smallest id among ties; on the logits' device (NCCL reduces GPU tensors)
        winner = torch.tensor([-mine], dtype=torch.int64, device=top.device)
        comm.all_reduce(winner, self.group, op="max")
        return -int(winner[0])


def generate(model: Llama, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0, stop_at_eos: bool = True, group=None) -> Iterator[int]:
    """Yield new token ids one by one (stream them as they come)."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    c = model.config
    pick = TokenPicker(c.vocab_size, vocab_start(model), temperature, seed, group)
    cache = model.new_cache(1, len(prompt_ids) + max_new_tokens)
    device = model.device  # the ids go where the weights are (a GPU rank's own GPU)
    logits = model(torch.tensor([prompt_ids], device=device), cache)  # prefill: the whole prompt
    for step in range(max_new_tokens):
        token = pick(logits[0, -1])
        yield token
        if step == max_new_tokens - 1 or (stop_at_eos and token == c.eos_id):
            return  # no forward for a token nobody will read
        logits = model(torch.tensor([[token]], device=device), cache)  # decode: one position
