"""Checks of exercises 04 (solutions/04_tensor_parallel_inference.ipynb): a real attention block's
slices, and a per-token latency predicted from measured figures.

04.1: `check_slices` runs the learner's `attention_slices` with tplab's sharding plan made to
raise (`plan_forbidden`: the plan is the answer; a plan reloaded meanwhile fails too), compares
each slice with the dense model's weights and names the block it holds instead; `check_shapes`
does the same on stand-in files (`ShapeFile`) of models with other head counts (4 KV groups on 3
ranks: 2 + 1 + 1, group sizes 1 to 4, a head_dim set apart from hidden / n_heads): SmolLM2's 3
groups on 1 to 3 ranks cannot tell the plan's rule from head counts typed in or from
ceil(groups / t) per rank. `logits_with_my_slices` runs the slices in a model on launched ranks.
04.2: `check_formula` tries synthetic points chosen so that each plausible slip (a unit, a term)
gives a different number, and names it, plus three drawn when it runs, with its own reference
(`reference_ms`) made to raise while the learner's function runs; `measure_one_rank` gives the
bandwidth and the time per token a prediction is compared with.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import random
import sys

import torch
import torch.distributed as dist

from tplab import comm
from tplab.checks.forbid import forbidden, guard
from tplab.models.generate import TokenPicker
from tplab.models.gguf_file import GGUF_NAMES
from tplab.models.llama import Config
from tplab.models.loading import load_llama_tp, parameter_bytes, vocab_start
from tplab.timing import measure, read_bandwidth_gbs, time_calls
from tplab.tp import ParallelAttention, shard_sizes
from tplab.tp.plan import attention_shards, head_plan, shard_plan

FILE_TENSOR = {name: GGUF_NAMES[f"attn.{name}"] for name in "qkvo"}
THE_PLAN = (head_plan, attention_shards, shard_plan)  # the checks' own references: the answer


PLAN_FORBIDDEN = ("attention_slices called tplab's sharding plan (head_plan, attention_shards "
                  "or shard_plan), which is the answer: work the head ranges out from f.config "
                  "and shard_range (whole KV groups, the extra group to the first ranks)")


@contextlib.contextmanager
def plan_forbidden(namespace: dict):
    """While the learner's function runs, the plan's functions raise under every name that holds
    them: in `namespace` (the notebook's globals) and in every loaded tplab module (tplab.tp,
    tplab.tp.plan, and those that import them: tplab.tp.blocks, tplab.models.loading,
    tplab.viz.decode, ...); see `tplab.checks.forbid`. tplab.tp.plan does not call `guard`, so
    a plan reloaded (or imported afresh) inside the function is found afterwards instead: the
    module is put back as it was and the check fails with the same message."""
    module = sys.modules[head_plan.__module__]
    saved = dict(vars(module))
    with forbidden(namespace, {answer: PLAN_FORBIDDEN for answer in THE_PLAN}):
        yield
    now = sys.modules.get(module.__name__)
    if now is not module or any(vars(module).get(a.__name__) is not a for a in THE_PLAN):
        sys.modules[module.__name__] = module
        vars(module).clear()
        vars(module).update(saved)
        raise AssertionError(PLAN_FORBIDDEN)


def block_of(piece, full, dim, head_dim):
    # [start, end) of `piece` along dim 0 (rows) or 1 (columns) of `full`, at a head boundary;
    # None if it is no such block
    fits = piece.dim() == 2 and piece.shape[1 - dim] == full.shape[1 - dim]
    n = piece.shape[dim] if fits else 0
    for start in range(0, full.shape[dim] - n + 1, head_dim) if n else ():
        if torch.equal(full.narrow(dim, start, n), piece.float()):
            return start, start + n
    return None


def heads(start, end, head_dim):
    if end - start > head_dim:
        return f"heads {start // head_dim}–{end // head_dim - 1}"
    return f"head {start // head_dim}"


def _compare(got, full: dict, shard, where: str) -> None:
    # raise AssertionError naming the first of q, k, v, o that is not the plan's block of
    # `full` (the whole weights by name), what it holds instead, and why
    t, d = len(shard.q_sizes), shard.head_dim
    assert isinstance(got, (tuple, list)) and len(got) == 4, (
        f"{where}: return (q, k, v, o), got {type(got).__name__} {got!r:.80}")
    (q0, q1), (kv0, kv1) = shard.q_heads, shard.kv_heads
    owns = (f"over {t} rank{'s' if t > 1 else ''}, this rank holds KV "
            f"{heads(kv0 * d, kv1 * d, d)} and their query {heads(q0 * d, q1 * d, d)} (whole KV "
            f"groups, the extra group to the first ranks)")
    for name, mine in zip("qkvo", got):
        piece = shard.slices[name]  # the plan's block: the answer
        want, dim = piece.of(full[name]), 0 if piece.rows is not None else 1
        h0, h1 = piece.rows if dim == 0 else piece.cols
        side = "columns" if dim else "rows"
        expected = f"{side} {h0}..{h1} of the file's {FILE_TENSOR[name]} ({heads(h0, h1, d)})"
        assert isinstance(mine, torch.Tensor), (
            f"{where}: {name} should be a tensor, got {type(mine).__name__}")
        assert tuple(mine.shape) == tuple(want.shape), (
            f"{where}: {name} should have shape {tuple(want.shape)}, {expected}, came "
            f"{tuple(mine.shape)}: {owns}")
        if not torch.equal(mine.float(), want):
            found = block_of(mine, full[name], dim, d)
            row_parallel = " (o is row-parallel: its columns, not its rows)" if name == "o" else ""
            came = (f"{side} {found[0]}..{found[1]} ({heads(*found, d)})" if found else
                    f"no block of {side} of it{row_parallel}")
            raise AssertionError(f"{where}: {name} should be {expected}, came {came}: {owns}")


def check_slices(attention_slices, f, dense, layer, t, rank, namespace):
    # raise AssertionError naming the first of q, k, v, o that is not this rank's block, what it
    # holds instead, and why
    c = f.config
    with plan_forbidden(namespace):
        got = attention_slices(f, layer, t, rank)
    shard = attention_shards(c.n_heads, c.n_kv_heads, c.head_dim, t)[rank]
    a = dense.blocks[layer].attn
    full = {name: getattr(a, name).weight for name in "qkvo"}
    _compare(got, full, shard, f"t={t}, rank {rank}, layer {layer}")


class ShapeFile:
    """A stand-in for the model file of an attention with other head counts: `config` and
    `tensor(name, rows=, cols=)` as `GGUFModelFile` has them, over seeded random weights (q, k,
    v and o of every layer), so that the check knows every block. A range outside a tensor
    raises (the file would cut it short silently: a shape the message could not explain)."""

    def __init__(self, n_heads, n_kv_heads, head_dim, hidden=None, n_layers=3, seed=0):
        self.config = Config(hidden=hidden or n_heads * head_dim, n_layers=n_layers,
                             n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim)
        self.seed = seed

    def weights(self, layer: int) -> dict:
        c, g = self.config, torch.Generator().manual_seed(1000 * self.seed + layer)
        q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
        shapes = {"q": (q, c.hidden), "k": (kv, c.hidden), "v": (kv, c.hidden), "o": (c.hidden, q)}
        return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}

    def tensor(self, name: str, rows=None, cols=None) -> torch.Tensor:
        by_file = {f"blk.{i}.{FILE_TENSOR[k]}.weight": (i, k)
                   for i in range(self.config.n_layers) for k in "qkvo"}
        assert name in by_file, (f"f.tensor({name!r}): no such tensor here; the attention's are "
                                 f"named like 'blk.0.attn_q.weight', 'blk.0.attn_output.weight'")
        layer, short = by_file[name]
        whole = self.weights(layer)[short]
        for dim, span in enumerate((rows, cols)):
            n = whole.shape[dim]
            ok = span is None or (len(span) == 2 and 0 <= span[0] <= span[1] <= n)
            assert ok, (f"f.tensor({name!r}, {('rows', 'cols')[dim]}={span!r}) is outside the "
                        f"tensor's {n} {('rows', 'columns')[dim]} (shape {tuple(whole.shape)}): "
                        f"work the ranges out from f.config, not from SmolLM2's numbers")
        (r0, r1), (c0, c1) = rows or (0, whole.shape[0]), cols or (0, whole.shape[1])
        return whole[r0:r1, c0:c1].clone()


# (n_heads, n_kv_heads, head_dim, hidden or None: n_heads·head_dim, degrees): other models
SHAPES = [
    (8, 4, 16, None, (1, 2, 3, 4)),   # 4 groups on 3 ranks: 2 + 1 + 1 (not ceil(4/3) = 2 each)
    (20, 5, 8, None, (2, 3, 4, 5)),   # 4 query heads per group; 5 groups on 4 ranks: 2 + 1 + 1 + 1
    (12, 6, 8, None, (4, 5)),         # 6 groups on 4 ranks: 2 + 2 + 1 + 1
    (6, 6, 8, None, (4,)),            # multi-head attention: one query head per KV head
    (4, 2, 24, 80, (1, 2)),           # head_dim 24 set apart from hidden / n_heads = 20
]
SHAPE_LAYERS, SHAPE_SEED = (0, 2), 4   # SHAPE_SEED: the drawn models, the same every run


def drawn_shapes(n=3, seed=SHAPE_SEED):
    rng = random.Random(seed)
    kvs = [rng.randint(2, 8) for _ in range(n)]
    return [(kv * rng.randint(1, 4), kv, rng.choice((4, 8, 12)), None,
             tuple(sorted(rng.sample(range(1, kv + 1), 2)))) for kv in kvs]


def check_shapes(attention_slices, namespace):
    # every rank of SHAPES and a few drawn models, layers SHAPE_LAYERS, against the plan
    for k, (n_heads, n_kv, d, hidden, degrees) in enumerate(SHAPES + drawn_shapes()):
        f = ShapeFile(n_heads, n_kv, d, hidden, seed=k)
        model = (f"a model of {n_heads} query heads and {n_kv} KV heads of {d} (hidden "
                 f"{f.config.hidden}; f a stand-in with f.config and f.tensor)")
        for t in degrees:
            plan = attention_shards(n_heads, n_kv, d, t)
            for layer in SHAPE_LAYERS:
                for rank in range(t):
                    with plan_forbidden(namespace):
                        got = attention_slices(f, layer, t, rank)
                    _compare(got, f.weights(layer), plan[rank],
                             f"{model}, t={t}, rank {rank}, layer {layer}")


def logits_with_my_slices(attention_slices, f, layers, ids):
    # on every rank: its shard of the model with the learner's attention slices in `layers`; the
    # prompt's next-token logits, gathered from the ranks' vocabulary ranges
    t, rank, c = dist.get_world_size(), dist.get_rank(), f.config
    model = load_llama_tp()
    shard = attention_shards(c.n_heads, c.n_kv_heads, c.head_dim, t)[rank]
    for layer in layers:
        slices = attention_slices(f, layer, t, rank)
        weights = {name: w.detach().float().contiguous() for name, w in zip("qkvo", slices)}
        model.blocks[layer].attn = ParallelAttention.from_shards(weights, shard)
    local = model(torch.tensor([ids]))[0, -1]
    return comm.all_gather(local, shard_sizes(c.vocab_size, t))


FORMULA_CASES = [  # bytes per token, GB/s, all-reduces per token, µs per all-reduce
    (2_000_000_000, 1.0, 0, 0.0),                # the bytes term alone: 2e9 B at 1 GB/s take 2 s
    (0, 1.0, 250, 4.0),                          # the latency term alone: 250 of 4 µs take 1 ms
    (538_060_032, 11.0, 0, 0.0),                 # SmolLM2-135M, fp32, one CPU rank
    (286_539_264, 11.0, 63, 12.0),               # its rank 0 at TP 2, fast all-reduce
    (13_476_839_424, 3350.0, 65, 20.0),          # Llama-2-7B in bf16 on one H100, as if split
    (1_684_604_928, 3350.0, 65, 8.0),            # ... and one eighth of it on each of 8 H100s
]
FORMULA = "ms = bytes / (GB/s × 1e9) × 1e3 + all-reduces × µs / 1e3"
SLIPS = {  # what plausible wrong formulas give, to name the slip in the message
    "bandwidth in GiB/s (2**30 bytes per second), not GB/s (10**9)":
        lambda b, bw, n, us: b / (bw * 2**30) * 1e3 + n * us / 1e3,
    "the bytes term in seconds, not milliseconds":
        lambda b, bw, n, us: b / (bw * 1e9) + n * us / 1e3,
    "the bytes term in microseconds (or the bandwidth in MB/s), not milliseconds":
        lambda b, bw, n, us: b / (bw * 1e6) * 1e3 + n * us / 1e3,
    "latency taken as milliseconds (µs not divided by 1000)":
        lambda b, bw, n, us: b / (bw * 1e9) * 1e3 + n * us,
    "latency converted to seconds, not milliseconds":
        lambda b, bw, n, us: b / (bw * 1e9) * 1e3 + n * us / 1e6,
    "each all-reduce's latency counted once per rank":
        lambda b, bw, n, us: b / (bw * 1e9) * 1e3 + 2 * n * us / 1e3,
    "one all-reduce's latency, not all of them":
        lambda b, bw, n, us: b / (bw * 1e9) * 1e3 + us / 1e3,
    "the larger of the two terms, not their sum":
        lambda b, bw, n, us: max(b / (bw * 1e9) * 1e3, n * us / 1e3),
}


def reference_ms(b, bw, n, us):
    guard("tplab.checks.lesson04.reference_ms")   # raises while a check hides it, also reloaded
    return b / (bw * 1e9) * 1e3 + n * us / 1e3


REFERENCE_FORBIDDEN = ("predict_ms_per_token called the check's own reference "
                       "(tplab.checks.lesson04.reference_ms), which is the answer: write the "
                       "formula from the two terms yourself")


def drawn_formula_cases(n=3):
    # points drawn when the check runs (from a seed nobody sees): a table of the fixed ones
    # does not pass
    rng = random.Random(os.urandom(8))
    return [(rng.randint(10**6, 3 * 10**10), round(rng.uniform(1.0, 5000.0), 1),
             rng.randint(0, 200), round(rng.uniform(0.5, 50.0), 2)) for _ in range(n)]


def check_formula(predict_ms_per_token, namespace=None):
    # raise AssertionError at the first synthetic point where predict_ms_per_token is not the
    # formula, naming the slip; the reference raises while the learner's function runs
    # (namespace: the notebook's globals, by default the function's own)
    cases = FORMULA_CASES + drawn_formula_cases()
    wants = [reference_ms(*case) for case in cases]
    if namespace is None:
        namespace = getattr(predict_ms_per_token, "__globals__", {})
    with forbidden(namespace, {reference_ms: REFERENCE_FORBIDDEN}):
        found = [predict_ms_per_token(*case) for case in cases]
    for case, want, got in zip(cases, wants, found):
        assert isinstance(got, numbers.Real) and not isinstance(got, bool), (
            f"predict_ms_per_token{case} should return a number of milliseconds, {want:.6g}, came "
            f"{type(got).__name__} {got!r:.60}")
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
            slip = next((name for name, wrong in SLIPS.items()
                         if math.isclose(got, wrong(*case), rel_tol=1e-6)), None)
            raise AssertionError(f"predict_ms_per_token{case} should be {want:.6g} ms, "
                                 f"came {got:.6g}"
                                 + (f": that is what {slip} gives" if slip else "")
                                 + f". The formula: {FORMULA}")


def weight_read_gbs():
    # the bytes per second a matrix-vector product reads from a weight matrix (what decoding
    # spends its time on): 256 MiB, the fastest of 10
    return read_bandwidth_gbs(256, 10, product=True)


def decode_ms(model, ids, n_tokens=12):
    # the time of the fastest of n_tokens decoding steps (the least disturbed by other
    # processes), after the prefill
    pick = TokenPicker(model.config.vocab_size, vocab_start(model))
    cache = model.new_cache(1, len(ids) + n_tokens)
    logits = [model(torch.tensor([ids]), cache)]

    def step():
        logits[0] = model(torch.tensor([[pick(logits[0][0, -1])]]), cache)

    return min(time_calls(step, n_tokens, warmup=0)) * 1e3


def measure_one_rank(dense, ids):
    # (GB/s read, ms per token) on one core: one rank
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return weight_read_gbs(), decode_ms(dense, ids)
    finally:
        torch.set_num_threads(threads)


def two_ranks(ids):
    # on each of 2 ranks: its parameter bytes, and per all-reduce route (ms per decoded token,
    # µs per all-reduce of one hidden state, the median of 200)
    model = load_llama_tp()
    mine = parameter_bytes(model)
    out = {}
    for route in ("fast", "gloo"):
        if route == "gloo":
            comm.use_torch_route()
        x = torch.zeros(model.config.hidden)
        latency = measure(lambda: comm.all_reduce(x), 200, warmup=0).scaled(1e6)  # µs
        dist.barrier()
        out[route] = (decode_ms(model, ids), latency.median)
    return mine, out
