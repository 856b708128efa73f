"""Decoding's big products on every core: a GEMV's output features split over a pool of threads.

Why: decoding one token multiplies a single row by every weight matrix (a GEMV), and torch
runs a GEMV on one core whatever `torch.set_num_threads` says — on a 2-core AMD EPYC the LM
head's 113 MB read at ~15 GB/s with 1 thread and with 2. One core cannot keep the memory
busy; two can (a `x.sum()` over 256 MiB reads ~45 GB/s on 2 threads). So the output
features are cut into one block per thread, each block a product of its own: torch releases
the GIL inside an operation, so Python threads of one process run the blocks at the same
time. The pool is persistent (starting a thread per product costs more than the product)
and its workers run torch with one intra-op thread each; the calling thread computes the
first block itself.

Each output feature is the same dot product whichever block it lands in, so the result is
bit-identical to one product over all the rows (tests/test_row_split.py checks it).

Two weight layouts: "rows" keeps nn.Linear's [out, in] (y = x Wᵀ, a dot product per output),
"cols" stores Wᵀ, [in, out] (y = x Wᵀ read column-block by column-block, an axpy per input):
the same products in another summation order, ~1.7x faster for one thread here (MKL streams
[in, out] better). "rows" blocks are views of the weight; "cols" blocks are contiguous copies.

The product is a torch custom op (`tplab::split_linear`), opaque to `torch.compile`, so a
compiled decode step keeps its threads (tplab.models.fast_decode).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

ALIGN = 16  # block edges on multiples of 16 features (64 bytes of float32: whole cache lines)


def block_edges(n: int, parts: int) -> list[int]:
    """Edges of `parts` nearly equal blocks of n features, inner edges multiples of ALIGN."""
    inner = [min(n, round(n * i / parts / ALIGN) * ALIGN) for i in range(1, parts)]
    return [0, *inner, n]


def split_weight(weight: torch.Tensor, parts: int, layout: str = "rows") -> list[torch.Tensor]:
    """nn.Linear's weight [out, in] cut into `parts` blocks of output features, in `layout`."""
    if layout not in ("rows", "cols"):
        raise ValueError(f"layout must be 'rows' or 'cols', got {layout!r}")
    edges = block_edges(weight.shape[0], parts)
    blocks = [weight[a:b] for a, b in zip(edges, edges[1:]) if b > a]
    if layout == "cols":
        blocks = [b.t().contiguous() for b in blocks]
    return blocks


def _product(x: torch.Tensor, block: torch.Tensor, cols: bool) -> torch.Tensor:
    """One block's outputs x Wᵀ, the block stored [out, in] ("rows") or [in, out] ("cols")."""
    return x @ block if cols else F.linear(x, block)


class _Pool:
    """Threads kept for the life of the process, each running torch on one intra-op thread."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor = ThreadPoolExecutor(workers, "tplab-rows", torch.set_num_threads, (1,))


_pool: _Pool | None = None
_lock = threading.Lock()


def pool(workers: int) -> _Pool:
    """The process's pool, (re)made with `workers` threads if it has another size."""
    global _pool
    with _lock:
        if _pool is None or _pool.workers != workers:
            if _pool is not None:
                _pool.executor.shutdown(wait=True)
            _pool = _Pool(workers)
        return _pool


def run_blocks(x: torch.Tensor, blocks: list[torch.Tensor], cols: bool = False) -> torch.Tensor:
    """x Wᵀ with W given as output blocks: the first here, the others on the pool, concatenated.

    Several rows (a prefill) are compute-bound and torch's own threads serve them: the blocks
    then run one after another here."""
    if len(blocks) == 1:
        return _product(x, blocks[0], cols)
    if x.numel() != x.shape[-1] or x.device.type != "cpu":
        return torch.cat([_product(x, b, cols) for b in blocks], dim=-1)
    futures = [pool(len(blocks) - 1).executor.submit(_product, x, b, cols) for b in blocks[1:]]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # this thread's block on one core, the pool has the others
    try:
        first = _product(x, blocks[0], cols)
    finally:
        torch.set_num_threads(before)
    return torch.cat([first, *(f.result() for f in futures)], dim=-1)


@torch.library.custom_op("tplab::split_linear", mutates_args=())
def split_linear(x: torch.Tensor, blocks: list[torch.Tensor], cols: bool) -> torch.Tensor:
    """run_blocks as an operation torch.compile calls without looking inside."""
    return run_blocks(x, blocks, cols)


@split_linear.register_fake
def _(x, blocks, cols):
    out = sum(b.shape[-1] if cols else b.shape[0] for b in blocks)
    return x.new_empty(*x.shape[:-1], out)
