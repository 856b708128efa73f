"""ZeRO: data parallelism without every rank holding every byte of training state.

Plain data parallelism keeps, on each of the N ranks, the parameters, the gradients and the
optimizer's state of the whole model. With mixed-precision Adam that is 2Ψ bytes of fp16
parameters, 2Ψ of fp16 gradients and KΨ of optimizer state (fp32 master weights, momentum and
variance: K = 12) for Ψ parameters, all identical on every rank. ZeRO (Rajbhandari et al. 2020,
arXiv:1910.02054) shards them: stage 1 the optimizer state, stage 2 the gradients too, stage 3
the parameters too; each rank keeps 1/N of what it shards.

`zero_memory_bytes` is the paper's formula (its Figure 1 and Table 1).
"""
from __future__ import annotations

__all__ = ["zero_memory_bytes"]


def zero_memory_bytes(psi: float, n: int, stage: int, k: float = 12, bytes_param: float = 2,
                      bytes_grad: float = 2) -> float:
    """Bytes of model state (parameters, gradients, optimizer state) per rank under ZeRO.

    `psi` parameters, `n` data-parallel ranks, `stage` 0 (plain DP) to 3, `k` optimizer bytes per
    parameter (12 for mixed-precision Adam: fp32 copy, momentum, variance), `bytes_param` and
    `bytes_grad` per parameter (2: fp16/bf16). With the defaults (Rajbhandari et al. 2020):

        stage 0  (2 + 2 + K)Ψ          stage 2  2Ψ + (2 + K)Ψ/N
        stage 1  4Ψ + KΨ/N             stage 3  (2 + 2 + K)Ψ/N

    The paper's example, Ψ = 7.5e9 on N = 64: 120, 31.4, 16.6 and 1.9 GB (decimal, rounded).
    """
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3 (ZeRO's stages; 0 is plain data "
                         f"parallelism), got {stage!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (data-parallel ranks) must be an integer >= 1, got {n!r}")
    if psi < 0:
        raise ValueError(f"psi (number of parameters) must be >= 0, got {psi!r}")
    params, grads, optim = bytes_param * psi, bytes_grad * psi, k * psi
    if stage >= 1:
        optim /= n
    if stage >= 2:
        grads /= n
    if stage >= 3:
        params /= n
    return params + grads + optim
