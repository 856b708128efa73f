"""The shapes the cost model prices: a Llama-architecture decoder as a handful of integers.

Why its own type: memory and time are sums over the same few numbers (layers, hidden size,
heads, KV heads, FFN size, vocabulary), and both Llama-2-70B (the planning target) and
SmolLM2-135M (the model this machine runs) are instances of one shape. Parameter counts follow
the architecture exactly (Touvron et al. 2023, arXiv:2307.09288): per layer q and o are h×h,
k and v are h×(kv·d), the SwiGLU MLP is three h×ffn matrices, two RMSNorm vectors of h; then
the embedding (vocab×h), a final norm, and an output head unless it is tied to the embedding.
"""
from __future__ import annotations

import dataclasses
import math

__all__ = ["ModelShape", "LLAMA2_70B", "LLAMA2_7B", "SMOLLM2_135M"]


@dataclasses.dataclass(frozen=True)
class ModelShape:
    name: str
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    ffn: int
    vocab: int
    tied: bool = False

    def __post_init__(self):
        if self.hidden % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"{self.name}: heads must divide hidden and KV heads must divide "
                             f"heads, got hidden={self.hidden}, heads={self.n_heads}, "
                             f"kv={self.n_kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.n_heads

    def attention_params(self) -> int:
        """q, o: h×h each; k, v: h×(kv·d) each (grouped-query attention, Ainslie et al. 2023)."""
        return 2 * self.hidden * self.hidden + 2 * self.hidden * self.n_kv_heads * self.head_dim

    def mlp_params(self) -> int:
        """SwiGLU: gate, up (h×ffn) and down (ffn×h) (Shazeer 2020, arXiv:2002.05202)."""
        return 3 * self.hidden * self.ffn

    def layer_params(self) -> int:
        return self.attention_params() + self.mlp_params() + 2 * self.hidden

    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    def params(self) -> int:
        """Every parameter: layers, embedding, final norm, head (0 when tied)."""
        head = 0 if self.tied else self.embedding_params()
        return self.n_layers * self.layer_params() + self.embedding_params() + self.hidden + head

    def rank_attention_share(self, tp: int) -> float:
        """The largest share of one layer's attention weights a TP rank holds: heads are split
        by KV group, ceil(kv/tp) groups on the fullest rank (tplab.tp.plan's rule, vLLM's);
        when tp > kv each rank holds 1/tp of the query heads and one KV head, replicated."""
        if tp <= self.n_kv_heads:
            return math.ceil(self.n_kv_heads / tp) / self.n_kv_heads
        q_o = 2 * self.hidden * self.hidden / tp
        k_v = 2 * self.hidden * self.head_dim
        return (q_o + k_v) / self.attention_params()

    def kv_bytes_per_token(self, bytes_per: float = 2) -> float:
        """Keys and values of one token in every layer: 2·L·kv·d·bytes (0.33 MB for 70B bf16)."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * bytes_per

    def flops_per_token(self, seq: int, training: bool = True) -> float:
        """Model FLOPs per token: 6Ψ (2Ψ forward, 4Ψ backward: Kaplan et al. 2020) plus the
        attention scores and their product with values, 12·L·h·s forward+backward without a
        causal mask, as Narayanan et al. 2021 (arXiv:2104.04473) and NeMo's 'model TFLOP/s'
        count them; 2Ψ + 4·L·h·s for a forward alone."""
        matmul = self.params() - (self.embedding_params() if not self.tied else 0)
        if training:
            return 6 * matmul + 12 * self.n_layers * self.hidden * seq
        return 2 * matmul + 4 * self.n_layers * self.hidden * seq


# Touvron et al. 2023; gpt-fast's config: 80 layers, 64 heads, 8 KV heads, 8192, 28672, 32000
LLAMA2_70B = ModelShape("Llama-2-70B", 80, 8192, 64, 8, 28672, 32000)
# the same paper's 7B (32 layers, 32 heads, no GQA, FFN 11008): gpt-fast's 1-GPU calibration case
LLAMA2_7B = ModelShape("Llama-2-7B", 32, 4096, 32, 32, 11008, 32000)


def _smollm2() -> ModelShape:
    from tplab.models.llama import Config  # the course model's own config: one source of truth
    c = Config()
    return ModelShape("SmolLM2-135M", c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.ffn,
                      c.vocab_size, tied=True)


SMOLLM2_135M = _smollm2()
