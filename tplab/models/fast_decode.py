"""Decoding near the memory roofline: a fixed-shape decode step over a static KV cache, its big
products split over threads, optionally compiled and optionally in bf16 (as gpt-fast does).

Why: a decoded token reads every weight once (538 MB in float32 for SmolLM2-135M), so its
time is bounded below by bytes / memory bandwidth. `tplab.models.generate` reaches a third
of that on a 2-core CPU: one core runs each GEMV (`tplab.layers.row_split` says why and
gives the fix), the cache grows a position per token (no fixed shape to compile) and
Python dispatches ~15 small operations per layer. `FastDecoder` is the same model:

* its weights, copied out of a dense `Llama` (TP=1) into the layout and dtype asked for,
  each product's output features cut into one block per thread (`row_split`);
* compiled on a CPU, every product of the step written as the reduction it is,
  `(x * W).sum(-1)`: inductor then generates the GEMV itself, a loop over output features
  shared by every core (OpenMP) with the dot products vectorised, and reads the weights about
  twice as fast as MKL's one-core GEMV (lesson 04 measures both);
* a `StaticKVCache` per layer: the step `decode(token, pos)` has the same shapes every
  token, so `torch.compile` can compile it once (CPU: inductor's C++; CUDA: CUDA graphs,
  mode "reduce-overhead"), the split products staying opaque custom ops;
* dtype float32 (the default: the tokens of transformers) or bfloat16 (half the bytes;
  labelled, measured for agreement, never chosen silently).

The prefill (the prompt at once) runs the same code eagerly; only the one-token step is
compiled. `fast_generate` is `tplab.models.generate.generate` on top of it.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from tplab.layers import Attention, TiedHead
from tplab.layers.row_split import run_blocks, split_linear, split_weight
from tplab.layers.static_cache import StaticKVCache, causal_mask, context_length
from tplab.models.generate import TokenPicker
from tplab.models.llama import Llama


def reduction_gemv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x Wᵀ for W [out, in] as a multiply and a sum, accumulated in float32: under
    torch.compile, inductor fuses it into one loop that never materialises the product."""
    return (x.unsqueeze(-2).float() * w.float()).sum(-1).to(x.dtype)


class _Split(nn.Module):
    """One product's weight as output blocks (buffers, so a compiled step sees fixed tensors)."""

    generated = False  # compiled one-token products: inductor's GEMV (FastDecoder sets it)

    def __init__(self, weight: torch.Tensor, parts: int, layout: str, dtype, device,
                 min_bytes: int = 0):
        super().__init__()
        weight = weight.detach().to(device, dtype)
        if weight.numel() * weight.element_size() < min_bytes:
            parts = 1  # too small: handing a block to another thread costs more than it saves
        blocks = split_weight(weight, parts, layout)
        for i, b in enumerate(blocks):
            self.register_buffer(f"b{i}", b, persistent=False)
        self.n, self.cols = len(blocks), layout == "cols"

    def forward(self, x):
        blocks = [getattr(self, f"b{i}") for i in range(self.n)]
        if self.n == 1 and not (self.generated and torch.compiler.is_compiling()):
            return x @ blocks[0] if self.cols else F.linear(x, blocks[0])
        if torch.compiler.is_compiling():
            if self.generated and x.shape[-2] == 1 and not self.cols:
                return torch.cat([reduction_gemv(x, b) for b in blocks], dim=-1)
            return split_linear(x, blocks, self.cols)
        return run_blocks(x, blocks, self.cols)


class _Layer(nn.Module):
    def __init__(self, block, parts, layout, dtype, device, min_bytes):
        super().__init__()
        attn, mlp = block.attn, block.mlp
        if type(attn) is not Attention or attn.fused is None or mlp.fused is None:
            raise ValueError("FastDecoder takes a dense model fused for inference (load_llama; "
                             "not a tensor-parallel rank)")
        args = parts, layout, dtype, device, min_bytes
        self.qkv, self.o = _Split(attn.fused[0], *args), _Split(attn.o.weight, *args)
        self.gate_up, self.down = _Split(mlp.fused[0], *args), _Split(mlp.down.weight, *args)
        self.attn_norm = nn.Parameter(block.attn_norm.weight.detach().to(device, dtype), False)
        self.mlp_norm = nn.Parameter(block.mlp_norm.weight.detach().to(device, dtype), False)
        self.heads, self.kv_heads = attn.n_heads, attn.n_kv_heads
        self.ffn = mlp.fused[1][0]


class FastDecoder(nn.Module):
    """A dense Llama's weights, a static KV cache and a fixed-shape decode step.

    threads: blocks per product (default: torch's threads on a CPU, 1 on a GPU), for products
    of at least `split_min_bytes` of weights (smaller ones gain less than a hand-off costs);
    layout: "cols" (Wᵀ stored, fastest for float32 on CPUs here) or "rows" (nn.Linear's: each
    block bit-identical to F.linear; the default for bf16, whose [in, out] GEMV is slow here,
    on GPUs, and when compiling on a CPU); dtype: torch.float32 or torch.bfloat16; compile:
    compile the decode step (a warning and eager decoding if torch.compile is unavailable or
    fails; on a CPU the step's products become inductor's GEMVs over torch's threads,
    whatever `threads` says: its blocks then serve the eager prefill and a fallback);
    max_len: cache positions (grown, and the step recompiled, if a generation needs more).
    """

    def __init__(self, model: Llama, *, threads: int | None = None, layout: str | None = None,
                 dtype: torch.dtype = torch.float32, compile: bool = False,
                 device=None, max_len: int = 256, split_min_bytes: int = 4 << 20):
        super().__init__()
        if not isinstance(model.embed, nn.Embedding) or not isinstance(model.head, TiedHead):
            raise ValueError("FastDecoder takes a whole model (embedding and head), not a stage")
        device = torch.device(device or model.embed.weight.device)
        cpu = device.type == "cpu"
        threads = threads or (torch.get_num_threads() if cpu else 1)
        generated = compile and cpu
        layout = layout or ("cols" if cpu and dtype == torch.float32 and not generated else "rows")
        self.config, self.dtype, self.device = model.config, dtype, device
        self.threads, self.layout = threads, layout
        args = threads, layout, dtype, device, split_min_bytes
        self.layers = nn.ModuleList(_Layer(b, *args) for b in model.blocks)
        self.head = _Split(model.head.weight, *args)
        for split in self.modules():
            if isinstance(split, _Split):
                split.generated = generated
        # the step's torch threads: all of them for inductor's kernels, else one (see decode)
        self.step_threads = torch.get_num_threads() if generated else 1
        self.embed = nn.Parameter(model.embed.weight.detach().to(device, dtype), False)
        self.norm = nn.Parameter(model.norm.weight.detach().to(device, dtype), False)
        self.inv_freq = model.rope.inv_freq
        self.compile, self.compile_s, self.compiled_ok = compile, None, False
        self._step = None
        self.caches = nn.ModuleList()
        self.reserve(max_len)
        self._token = torch.zeros(1, 1, dtype=torch.long, device=device)
        self._pos = torch.zeros(1, dtype=torch.long, device=device)

    def weight_bytes(self) -> int:
        """Bytes of weights a decoded token reads: every product and norm (the embedding table
        is only indexed, one row a token)."""
        return sum(t.numel() * t.element_size() for name, t in self.named_parameters()
                   if name != "embed") + sum(
            t.numel() * t.element_size() for m in self.modules() if isinstance(m, _Split)
            for t in m.buffers())

    def reserve(self, needed: int) -> None:
        """Make the caches hold `needed` positions (rounded up; a no-op if they already do)."""
        if self.caches and self.caches[0].max_len >= needed:
            return
        c, n = self.config, context_length(needed)
        self.caches = nn.ModuleList(StaticKVCache(1, layer.kv_heads, n, c.head_dim, self.dtype,
                                                  self.device) for layer in self.layers)
        angles = torch.outer(torch.arange(n, dtype=torch.float32), self.inv_freq)
        cos, sin = angles.cos(), angles.sin()
        self.cos = torch.cat([cos, cos], -1).to(self.device, self.dtype)
        self.signed_sin = torch.cat([-sin, sin], -1).to(self.device, self.dtype)
        self._step = None  # new shapes: compile again

    def forward(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Logits [1, s, vocab] (float32) for tokens ids [1, s] at positions pos [s]."""
        c = self.config
        b, s = ids.shape
        d = c.head_dim
        x = F.embedding(ids, self.embed)
        cos, sin = self.cos[pos], self.signed_sin[pos]  # [s, d]
        mask = causal_mask(pos, self.caches[0].max_len)

        def rope(t):  # t [b, heads, s, d]: t·cos + rotate_half(t)·sin
            return torch.addcmul(t * cos, t.roll(d // 2, dims=-1), sin)

        for layer, cache in zip(self.layers, self.caches):
            h = F.rms_norm(x, (c.hidden,), layer.attn_norm, c.norm_eps)
            qkv = layer.qkv(h).view(b, s, -1, d).transpose(1, 2)
            q, k, v = qkv.split([layer.heads, layer.kv_heads, layer.kv_heads], dim=1)
            cache.write(pos, rope(k), v)
            out = cache.attend(rope(q), mask)
            x = x + layer.o(out.transpose(1, 2).reshape(b, s, -1))
            gate, up = layer.gate_up(F.rms_norm(x, (c.hidden,), layer.mlp_norm, c.norm_eps)).split(
                layer.ffn, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self.head(F.rms_norm(x, (c.hidden,), self.norm, c.norm_eps)).float()

    @torch.no_grad()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """The prompt in one eager forward, from position 0: logits [1, len(ids), vocab]."""
        self.reserve(len(ids))
        t = torch.tensor([ids], device=self.device)
        return self(t, torch.arange(len(ids), device=self.device))

    @torch.no_grad()
    def decode(self, token: int, pos: int) -> torch.Tensor:
        """Logits [1, 1, vocab] for `token` at position `pos`: the fixed-shape step.

        Eager, its small operations run on one torch thread: waking a second OpenMP thread for
        an attention over 256 positions costs more than the work (measured: 74 vs 27 µs, and
        worse while another process holds the other core); the pool's threads share out the
        big products instead. Compiled on a CPU, the step keeps torch's threads: inductor's
        fused kernels share every product and operation over them."""
        self._token.fill_(token)
        self._pos.fill_(pos)
        before = torch.get_num_threads()
        torch.set_num_threads(self.step_threads)
        try:
            if self._step is None:
                self._step = self._make_step()
            return self._step(self._token, self._pos)
        finally:
            torch.set_num_threads(before)

    def warm_up(self) -> float | None:
        """Compile the step now (a dummy token at position 0, overwritten by the next prefill);
        returns the seconds compiling took (None if not compiling)."""
        self.decode(0, 0)
        return self.compile_s

    def _make_step(self):
        if not self.compile:
            return self
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        try:
            # every decoder of another dtype, size or thread count is one more compiled entry of
            # the same code, FastDecoder.forward: past dynamo's default 8, compiling would fail
            # (the setting's name before torch 2.7: cache_size_limit)
            dynamo = torch._dynamo.config
            limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
            setattr(dynamo, limit, max(getattr(dynamo, limit), 64))
            compiled = torch.compile(self, mode=mode, fullgraph=True, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - any failure means: decode eagerly
            return self._fall_back(exc)

        def first_call(ids, pos):
            started = time.perf_counter()
            try:
                out = compiled(ids, pos)
                out = compiled(ids, pos)  # CUDA graphs record on a later call than the first
            except Exception as exc:  # noqa: BLE001
                self._step = self._fall_back(exc)
                return self(ids, pos)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_s, self.compiled_ok = time.perf_counter() - started, True
            self._step = compiled
            return out
        return first_call

    def _fall_back(self, exc: Exception):
        warnings.warn(f"torch.compile of the decode step failed ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}); decoding eagerly",
                      RuntimeWarning, stacklevel=3)
        self.compile, self.step_threads = False, 1
        self.compiled_ok, self.compile_s = False, None  # a later recompile can fail too
        return self


def fast_generate(decoder: FastDecoder, prompt_ids: list[int], max_new_tokens: int,
                  temperature: float = 0.0, seed: int = 0,
                  stop_at_eos: bool = True) -> Iterator[int]:
    """`tplab.models.generate.generate` on a FastDecoder: yield new token ids one by one."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    c = decoder.config
    pick = TokenPicker(c.vocab_size, 0, temperature, seed)
    decoder.reserve(len(prompt_ids) + max_new_tokens)
    logits = decoder.prefill(prompt_ids)
    for step in range(max_new_tokens):
        token = pick(logits[0, -1])
        yield token
        if step == max_new_tokens - 1 or (stop_at_eos and token == c.eos_id):
            return
        logits = decoder.decode(token, len(prompt_ids) + step)


def run_prompts(prompts_ids, max_new, temperature, seed, compile, bf16, model_file, show=None):
    """`tplab generate --fast`: the prompts one after another through a FastDecoder built from
    `model_file`; `show(i, token, done)` sees each token. Returns the decoder, the timings
    (as `tplab.pp.llm.pipelined_generate`'s), a line saying what ran, and the build seconds."""
    from tplab.models.loading import load_llama
    started = time.perf_counter()
    decoder = FastDecoder(load_llama(model_file), compile=compile,
                          dtype=torch.bfloat16 if bf16 else torch.float32)
    build_s = time.perf_counter() - started
    compile_s = decoder.warm_up() if compile else None
    start, tokens, times = time.perf_counter(), [], []
    for i, ids in enumerate(prompts_ids):
        tokens.append([]), times.append([])
        for token in fast_generate(decoder, ids, max_new, temperature, seed):
            tokens[i].append(token)
            times[i].append(time.perf_counter() - start)
            if show is not None:
                show(i, token, len(tokens[i]) == max_new or token == decoder.config.eos_id)
    served = {"tokens": tokens, "first_token_s": [t[0] for t in times],
              "latency_s": [t[-1] for t in times], "elapsed_s": max(t[-1] for t in times)}
    n = decoder.step_threads if decoder.compiled_ok else decoder.threads
    generated = decoder.compiled_ok and decoder.device.type == "cpu" and decoder.layout == "rows"
    how = "inductor's GEMVs over" if generated else "big products split over"
    mode = (f"[fast decoder: static KV cache, {how} {n} thread{'s' * (n > 1)}, "
            f"{'bf16' if bf16 else 'fp32'}")
    if compile:
        mode += (f"; step compiled in {compile_s:.1f} s (before the prompt)" if decoder.compiled_ok
                 else "; compile failed: eager")
    return decoder, served, mode + "]", build_s
