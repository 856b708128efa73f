"""Checks of exercise 04.3 (solutions/04_tensor_parallel_inference.ipynb): the KV cache's bytes,
and the batch at which a decode step turns compute-bound.

`check_kv_formula` and `check_crossover` try exact synthetic cases, fixed ones whose factors are
distinct primes (so that each plausible slip gives a different number, which the message names),
one whose head_dim is not hidden / n_heads (Gemma-7B's), crossings past 10^5 sequences, and
random ones drawn from a fixed seed (the same every run and in both check cells; held out because
they are not printed), against references computed exactly (integers, fractions). The learner's
functions run with the references switched off (`tplab.checks.forbid`), and must return an int
(bytes; B*) or math.inf, as the exercise asks.
`measured_cache` runs SmolLM2 with tplab's KV cache and returns the bytes the cache tensors hold;
`check_measured` compares the learner's formula with it at batch 1 and 2. `check_inequality`
tests the crossover's definition itself: compute time reaches memory time at B*, not at B* − 1.

The step model (jax-ml scaling-book, "All About Transformer Inference", with the whole step on one
roofline): one decode step of B sequences does 2·P·B FLOPs and reads P·w weight bytes plus B
caches of kv bytes, so it takes max(2·P·B / F, (P·w + B·kv) / BW).
"""
from __future__ import annotations

import math
import numbers
import random
from fractions import Fraction

import torch

from tplab import hardware
from tplab.checks.forbid import forbidden
from tplab.models.llama import Config

# the learner's cases (see the exercise): Llama-2-7B and -70B as gpt-fast configures them
LLAMA2_7B = Config(vocab_size=32000, hidden=4096, ffn=11008, n_layers=32, n_heads=32,
                   n_kv_heads=32, head_dim=128, context=4096)
LLAMA2_70B = Config(vocab_size=32000, hidden=8192, ffn=28672, n_layers=80, n_heads=64,
                    n_kv_heads=8, head_dim=128, context=4096)
PARAMS = {"Llama-2-7B": 6.74e9, "Llama-2-70B": 68.98e9}
H100_FLOPS, H100_BANDWIDTH = hardware.H100_BF16_FLOPS, hardware.H100_HBM_BYTES_PER_S
# Gemma-7B (Gemma Team 2024, arXiv:2403.08295, table 1): head_dim 256 is set apart from
# hidden / n_heads = 192
GEMMA_7B = Config(vocab_size=256000, hidden=3072, ffn=24576, n_layers=28, n_heads=16,
                  n_kv_heads=16, head_dim=256, context=8192)
SEED = 13   # the random cases: drawn from a fixed seed, so a grade does not change between runs

KV_FORMULA = "2 · n_layers · n_kv_heads · head_dim · bytes_per_value · context · batch"
CROSS_FORMULA = ("the smallest whole B with 2·P·B/F ≥ (P·w + B·kv)/BW: "
                 "ceil((P·w/BW) / (2·P/F − kv/BW)), math.inf when 2·P/F ≤ kv/BW")


def synthetic(n_layers, n_heads, n_kv_heads, head_dim, hidden=None):
    return Config(hidden=hidden or n_heads * head_dim, n_layers=n_layers, n_heads=n_heads,
                  n_kv_heads=n_kv_heads, head_dim=head_dim)


def kv_reference(config, bytes_per_value, context, batch):
    return (2 * config.n_layers * config.n_kv_heads * config.head_dim * bytes_per_value
            * context * batch)


KV_CASES = [  # (config, bytes per value, context, batch): every factor a distinct prime
    (synthetic(3, 35, 5, 7), 2, 11, 13),
    (synthetic(17, 57, 19, 23), 1, 29, 3),
    (synthetic(5, 33, 3, 11), 4, 7, 2),
    (synthetic(7, 15, 5, 37, hidden=15 * 41), 2, 13, 3),   # head_dim 37, hidden / n_heads 41
    (LLAMA2_70B, 2, 4096, 32),
    (GEMMA_7B, 2, 8192, 1),
]
KV_SLIPS = {  # what plausible wrong formulas give, to name the slip in the message
    "keys only (the 2 is keys and values)":
        lambda c, b, n, s: kv_reference(c, b, n, s) // 2,
    "the query heads (n_heads) where only the KV heads are cached (under grouped-query attention "
    "each KV head serves n_heads / n_kv_heads query heads)":
        lambda c, b, n, s: 2 * c.n_layers * c.n_heads * c.head_dim * b * n * s,
    "the hidden size where n_kv_heads · head_dim belongs (multi-head attention's cache)":
        lambda c, b, n, s: 2 * c.n_layers * c.hidden * b * n * s,
    "4 bytes per value whatever bytes_per_value says (bf16 is 2)":
        lambda c, b, n, s: kv_reference(c, 4, n, s),
    "one sequence (each sequence of the batch keeps its own cache)":
        lambda c, b, n, s: kv_reference(c, b, n, 1),
    "one layer (each layer keeps its own keys and values)":
        lambda c, b, n, s: kv_reference(c, b, n, s) // c.n_layers,
    "hidden // n_heads where config.head_dim belongs (equal in Llama, not in models that set "
    "head_dim apart, like Gemma-7B: hidden 3072, 16 heads of 256)":
        lambda c, b, n, s: 2 * c.n_layers * c.n_kv_heads * (c.hidden // c.n_heads) * b * n * s,
}


def random_kv_cases(n=6):
    rng = random.Random(SEED)
    cases = []
    for _ in range(n):
        kv = rng.randint(1, 16)
        cfg = synthetic(rng.randint(1, 96), kv * rng.randint(2, 8), kv, rng.choice((64, 80, 128)))
        cases.append((cfg, rng.choice((1, 2, 4)), rng.randint(1, 1 << 17), rng.randint(1, 512)))
    return cases


def _name(config):
    return (f"Config(n_layers={config.n_layers}, n_heads={config.n_heads}, "
            f"n_kv_heads={config.n_kv_heads}, head_dim={config.head_dim}, "
            f"hidden={config.hidden})")


def _whole(got) -> bool:
    return isinstance(got, numbers.Integral) and not isinstance(got, bool)


def _bytes_type(call, got, want):
    assert _whole(got), (
        f"{call} should return a whole number of bytes, the int {want}, came "
        f"{type(got).__name__} {got!r:.60}: every factor is an int, so multiply them (a '/' or a "
        f"float factor makes a float)")


def _batch_type(call, got, want):
    assert _whole(got) or (isinstance(got, float) and got == math.inf), (
        f"{call} should return a whole number of sequences, an int ({want}), or math.inf, came "
        f"{type(got).__name__} {got!r:.60}: math.ceil returns an int, numpy's ceil a float")


def _guarded(fn, namespace):
    # fn, run with the check's references switched off in `namespace` and in tplab's modules
    def call(*args):
        with forbidden(namespace, ANSWERS):
            return fn(*args)
    return call


def check_kv_formula(kv_cache_bytes, namespace, cases=None):
    # raise AssertionError at the first case where kv_cache_bytes is not the formula, naming a slip
    kv_cache_bytes = _guarded(kv_cache_bytes, namespace)
    for config, b, n, s in cases or KV_CASES + random_kv_cases():
        want, got = kv_reference(config, b, n, s), kv_cache_bytes(config, b, n, s)
        call = f"kv_cache_bytes({_name(config)}, bytes_per_value={b}, context={n}, batch={s})"
        if isinstance(got, numbers.Real) and got == want:
            _bytes_type(call, got, want)
        assert isinstance(got, numbers.Real) and not isinstance(got, bool), (
            f"{call} should return a number of bytes, {want}, came {type(got).__name__} "
            f"{got!r:.60}")
        if got != want:
            slip = next((name for name, wrong in KV_SLIPS.items() if got == wrong(config, b, n, s)),
                        None)
            raise AssertionError(f"{call} should be {want:,} bytes, came {got:,}"
                                 + (f": that is the number for {slip}" if slip else "")
                                 + f". The formula: {KV_FORMULA}")


def crossover_reference(params, w, kv, flops, bandwidth):
    # exact: every float is a fraction, so the ceiling is the true one
    p, w, kv, f, bw = (Fraction(x) for x in (params, w, kv, flops, bandwidth))
    room = 2 * p / f - kv / bw                  # seconds of compute per sequence beyond its KV read
    return math.inf if room <= 0 else math.ceil((p * w / bw) / room)


ANSWERS = {fn: (f"your function called tplab.checks.lesson04_kv.{fn.__name__}, the check's own "
                f"answer: write the formula from config's fields yourself")
           for fn in (kv_reference, crossover_reference)}


def _kv7b(context):
    return kv_reference(LLAMA2_7B, 2, context, 1)


CROSS_CASES = [  # (P, bytes per weight, KV bytes per sequence, FLOP/s, bytes/s)
    (6.74e9, 2, 0, H100_FLOPS, H100_BANDWIDTH),              # weights only: F/BW = 295.2 -> 296
    (6.74e9, 2, _kv7b(4096), H100_FLOPS, H100_BANDWIDTH),    # MHA at 4k: never
    (6.74e9, 2, _kv7b(64), H100_FLOPS, H100_BANDWIDTH),      # MHA at 64 tokens: 1114
    (68.98e9, 2, kv_reference(LLAMA2_70B, 2, 512, 1), H100_FLOPS, H100_BANDWIDTH),   # 461
    (4, 1, 1, 4, 1),          # an exact crossing: 2·4·4/4 = (4 + 4)/1 at B = 4, so 4
    (4, 1, 2, 4, 1),          # compute per sequence exactly equals its KV read: never
    (4, 1, 3, 4, 1),          # KV read beyond it: never (not a negative batch)
    (1e9, 1, 1e6, 2e14, 1e12),                              # int8 weights: 100/(1 − 0.1) -> 112
    # KV reads 0.999 and 0.9999 of the compute per sequence: crossings far past any search cap
    (6.74e9, 2, _kv7b(87), H100_FLOPS, H100_BANDWIDTH),      # MHA at 87 tokens: 285552
    (68.98e9, 2, kv_reference(LLAMA2_70B, 2, 1426, 1), H100_FLOPS, H100_BANDWIDTH),  # 3976931
    (3e9, 1, 5999007, 1e15, 1e12),                          # 3021149
]
CROSS_SLIPS = {
    "the weights alone, no KV term (batching amortises the weights, never the KV cache: the "
    "KV reads grow with B as fast as the compute)":
        lambda p, w, kv, f, bw: math.ceil((p * w / bw) / (2 * p / f)),
    "the floor (at the floor compute has not yet reached memory)":
        lambda p, w, kv, f, bw: math.floor((p * w / bw) / (2 * p / f - kv / bw)),
    "the floor + 1 (at an exact crossing the crossing batch itself counts)":
        lambda p, w, kv, f, bw: math.floor((p * w / bw) / (2 * p / f - kv / bw)) + 1,
    "rounding to the nearest whole batch":
        lambda p, w, kv, f, bw: round((p * w / bw) / (2 * p / f - kv / bw)),
    "one FLOP per weight (it is 2: a multiply and an add)":
        lambda p, w, kv, f, bw: math.ceil((p * w / bw) / (p / f - kv / bw)),
}


def random_cross_cases(n=8):
    rng, cases = random.Random(SEED), []
    while len(cases) < n:
        p, w = rng.uniform(1e8, 5e11), rng.choice((0.5, 1, 2, 4))
        f, bw = rng.uniform(1e13, 2e15), rng.uniform(5e11, 8e12)
        # KV reads per sequence as a share of its compute time: half finite, half never, none
        # so close to the edge that float rounding could move the ceiling
        share = rng.choice((rng.uniform(0, 0.99), rng.uniform(1.01, 2.5)))
        kv = share * 2 * p * bw / f
        x = (p * w / bw) / (2 * p / f - kv / bw) if share < 1 else math.inf
        if x == math.inf or abs(x - round(x)) > 1e-6:
            cases.append((p, w, kv, f, bw))
    return cases


def _slip(case, got):
    for name, wrong in CROSS_SLIPS.items():
        try:
            if got == wrong(*case):
                return name
        except (ZeroDivisionError, ValueError, OverflowError):
            pass
    return None


def check_crossover(compute_bound_batch, namespace, cases=None):
    # raise AssertionError at the first case where compute_bound_batch is not B*, naming the slip
    compute_bound_batch = _guarded(compute_bound_batch, namespace)
    for case in cases or CROSS_CASES + random_cross_cases():
        want = crossover_reference(*case)
        p, w, kv, f, bw = case
        call = (f"compute_bound_batch(params={p:g}, weight_bytes_per_param={w:g}, "
                f"kv_bytes_per_seq={kv:g}, flops={f:g}, bandwidth={bw:g})")
        try:
            got = compute_bound_batch(*case)
        except ZeroDivisionError as exc:
            raise AssertionError(f"{call} raised ZeroDivisionError ({exc}): where 2·P/F ≤ kv/BW "
                                 f"no batch is compute-bound; return math.inf") from None
        assert isinstance(got, numbers.Real) and not isinstance(got, bool), (
            f"{call} should return a whole number of sequences or math.inf, {want}, came "
            f"{type(got).__name__} {got!r:.60}")
        if got == want:
            _batch_type(call, got, want)
        if got != want:
            slip = _slip(case, got)
            raise AssertionError(f"{call} should be {want}, came {got!r}"
                                 + (f": that is the number for {slip}" if slip else "")
                                 + f". B* is {CROSS_FORMULA}")


def check_inequality(compute_bound_batch, params, w, kv, flops, bandwidth):
    # B* from its definition: at B* compute time reaches memory time, at B* − 1 it does not
    got = compute_bound_batch(params, w, kv, flops, bandwidth)
    _batch_type(f"compute_bound_batch({params:g}, {w:g}, {kv:g}, {flops:g}, {bandwidth:g})", got,
                crossover_reference(params, w, kv, flops, bandwidth))
    p, w_, kv_, f, bw = (Fraction(x) for x in (params, w, kv, flops, bandwidth))
    compute = lambda b: 2 * p * b / f               # noqa: E731
    memory = lambda b: (p * w_ + b * kv_) / bw      # noqa: E731
    if got == math.inf:
        assert 2 * p / f <= kv_ / bw, (
            f"P={params:g}, kv={kv:g}: math.inf, but a step of 10**9 sequences is compute-bound "
            f"({float(compute(10**9)):.3g} s of compute ≥ {float(memory(10**9)):.3g} s of reads)")
        return got
    assert compute(got) >= memory(got), (
        f"P={params:g}, kv={kv:g}: at B = {got} a step computes for {float(compute(got)):.6g} s "
        f"but reads for {float(memory(got)):.6g} s: still memory-bound")
    assert got <= 1 or compute(got - 1) < memory(got - 1), (
        f"P={params:g}, kv={kv:g}: B = {got - 1} is already compute-bound, so B* is not {got}")
    return got


def measured_cache(model, ids, n_new, batch):
    # run `model` with tplab's KV cache on `ids` repeated `batch` times, then n_new greedy tokens;
    # the cache is allocated for exactly those positions. Returns (context, bytes its tensors hold)
    # (one thread: two contend badly on a busy machine, and a step this small gains nothing)
    context, threads = len(ids) + n_new, torch.get_num_threads()
    cache = model.new_cache(batch, context)
    torch.set_num_threads(1)
    try:
        logits = model(torch.tensor([ids] * batch), cache)
        for _ in range(n_new):
            logits = model(logits[:, -1].argmax(-1, keepdim=True), cache)
    finally:
        torch.set_num_threads(threads)
    assert all(layer.length == context for layer in cache)
    return context, sum(layer.k.nbytes + layer.v.nbytes for layer in cache)


def check_measured(kv_cache_bytes, model, ids, namespace, n_new=4, batches=(1, 2)):
    # the learner's bytes against the cache SmolLM2 holds after decoding, at each batch
    kv_cache_bytes, out = _guarded(kv_cache_bytes, namespace), []
    for batch in batches:
        context, held = measured_cache(model, ids, n_new, batch)
        got = kv_cache_bytes(model.config, 4, context, batch)   # tplab's cache is float32
        assert got == held, (
            f"SmolLM2 (30 layers, 9 query heads, 3 KV heads of 64) after {context} tokens at "
            f"batch {batch}: its float32 KV cache tensors hold {held:,} bytes, your "
            f"kv_cache_bytes(model.config, 4, {context}, {batch}) gives {got!r}. "
            f"The formula: {KV_FORMULA}")
        _bytes_type(f"kv_cache_bytes(model.config, 4, {context}, {batch})", got, held)
        out.append((batch, context, held))
    return out


LLAMA_CASES = (("Llama-2-7B", LLAMA2_7B, 0), ("Llama-2-7B", LLAMA2_7B, 4096),
               ("Llama-2-70B", LLAMA2_70B, 512), ("Llama-2-70B", LLAMA2_70B, 4096))


def check_cases(kv_cache_bytes, compute_bound_batch, namespace):
    # the exercise's four cases in bf16 on H100 figures: B* from its definition, with the
    # learner's KV bytes per sequence; [(model, context, KV bytes per sequence, B*)]
    kv_cache_bytes = _guarded(kv_cache_bytes, namespace)
    compute_bound_batch = _guarded(compute_bound_batch, namespace)
    out = []
    for name, config, context in LLAMA_CASES:
        kv = kv_cache_bytes(config, 2, context, 1)
        b = check_inequality(compute_bound_batch, PARAMS[name], 2, kv, H100_FLOPS, H100_BANDWIDTH)
        out.append((name, context, kv, b))
    return out
