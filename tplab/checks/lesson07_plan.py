"""Checks of exercise 07.3 (solutions/07_putting_it_together.ipynb): deploy Llama-2-70B for
decoding under a latency target: which (tp, pp, dp) and how many sequences at once.

The question, as a serving team meets it: a latency target per generated token (time per
output token, TPOT) and a context length are given; choose the layout of the GPUs and the
batch (sequences decoded together) that serve the most tokens per second while every GPU's
weights and KV cache fit in its memory, the target is met, and tensor parallelism stays inside
one server (its all-reduces, two per layer per token, need NVLink). A fixed batch would make
the target a yes/no question (for one batch the fastest layout is also the one with the most
tokens/s); choosing the batch is where the trade-off lives: a bigger batch gives more
tokens/s per step, a longer step, and a KV cache that grows until it does not fit.

The reference is `tplab.cost.plan_decode` (the lesson's planner: `decode_memory` and
`decode_time` per row, `fits` meaning total ≤ the GPU's memory), filtered and ranked by
`reference_choice`; both, and `tplab.cost.best`, are switched off while the learner's function
runs. `check_choices` compares the learner's answer exactly on VARIANTS: cases chosen where
each plausible slip changes the answer (the KV cache left out of memory, the target ignored,
memory ignored, TP across servers, < for ≤ at a GPU whose memory equals a row's need exactly,
a target equal to a row's time) and a few drawn with a seed.
"""
from __future__ import annotations

import dataclasses
import random

from tplab.checks.forbid import forbidden
from tplab.cost import H100, LLAMA2_70B, best, decode_memory, plan_decode
from tplab.cost.machines import Hardware

__all__ = ["BATCHES", "H100_4", "KEYS", "VARIANTS", "reference_choice", "describe",
           "check_choices"]

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)   # sequences decoded together, to choose from
KEYS = ("tp", "pp", "dp", "batch")
# servers of 4 H100s (e.g. 4-GPU HGX boards): NVLink inside 4, InfiniBand between
H100_4 = dataclasses.replace(H100, name="H100-80GB, 4 per server", gpus_per_server=4)
_NOT_YOURS = ("choose_deployment called tplab.{}, the planner the check compares with: "
              "enumerate and filter the layouts yourself (decode_memory and decode_time are "
              "yours to use)")


def _rows(context: int, world: int, hw: Hardware, batches=BATCHES) -> list[dict]:
    return [row for batch in batches for row in plan_decode(batch, context, world, hw)]


def reference_choice(target_ms: float, context: int, world: int = 8, hw: Hardware = H100,
                     batches=BATCHES) -> dict | None:
    """The planner's choice: among rows that fit, meet the target (ms ≤ target) and keep tp
    within a server, the most tokens/s; ties to the fewer replicas. None when none qualifies."""
    ok = [r for r in _rows(context, world, hw, batches)
          if r["fits"] and r["ms_per_token"] <= target_ms and r["tp"] <= hw.gpus_per_server]
    if not ok:
        return None
    top = max(ok, key=lambda r: (r["tokens_per_s"], -r["dp"]))
    return dict(top)


def _exact_memory_hw() -> Hardware:
    """A GPU whose memory is exactly what the headline memory-bound case's answer needs."""
    row = reference_choice(60, 4096)
    need = decode_memory(LLAMA2_70B, row["tp"], row["pp"], -(-row["batch"] // row["dp"]),
                         4096)["total"]                  # the planner's own sum, to the byte
    return dataclasses.replace(H100, name=f"H100 with exactly {need / 1e9:.4f} GB",
                               memory_bytes=need)


def _exact_target() -> float:
    """The time per token of the headline case's answer: a target met with nothing to spare."""
    return reference_choice(25, 4096)["ms_per_token"]


def _drawn(seed: int = 7, n: int = 4) -> list[tuple]:
    rng = random.Random(seed)
    return [(rng.choice([9, 12, 18, 22, 28, 35, 45, 70]), rng.choice([1024, 2048, 8192, 16384]),
             rng.choice([4, 8, 16]), rng.choice([H100, H100_4])) for _ in range(n)]


# (target_ms, context, world, hw): the slip each one catches
VARIANTS = ([(25, 4096, 8, H100),             # the headline: batch limited by the target
             (60, 4096, 8, H100),             # batch limited by the KV cache
             (15, 32768, 8, H100),            # long context
             (20, 4096, 8, H100_4),           # servers of 4: TP 8 would cross servers
             (12, 2048, 16, H100),            # two servers of 8: TP 16 would cross them
             (10, 4096, 8, H100_4),           # nothing meets the target: None
             (40, 4096, 2, H100),             # 2 GPUs: the weights leave room for 16 sequences
             (30, 4096, 2, H100),             # 2 GPUs, too slow for the target: None
             (60, 4096, 8, _exact_memory_hw()),   # memory equal to the need fits
             (_exact_target(), 4096, 8, H100)]    # a time equal to the target meets it
            + _drawn())


def describe(variant) -> str:
    target, context, world, hw = variant
    return (f"choose_deployment(target_ms={target:g}, context={context}, world={world}, "
            f"hw=<{hw.name}: {hw.memory_bytes / 1e9:g} GB, {hw.gpus_per_server} per server>)")


def _as_choice(got, where):
    if got is None:
        return None
    assert isinstance(got, dict) and all(k in got for k in KEYS), (
        f"{where} returned {got!r:.160}; return a dict with the keys {KEYS} (more keys are "
        f"fine), or None when no layout qualifies")
    for k in KEYS:
        assert isinstance(got[k], int) and not isinstance(got[k], bool), (
            f"{where}[{k!r}] is {got[k]!r}; give a whole number")
    return {k: got[k] for k in KEYS}


def _slip(got, variant) -> str:
    """Which qualifying rule the learner's choice breaks, if it is a row of the plan."""
    target, context, world, hw = variant
    if got is None:
        return "a layout qualifies, so None is not the answer"
    rows = [r for r in _rows(context, world, hw, [got["batch"]])
            if (r["tp"], r["pp"], r["dp"]) == (got["tp"], got["pp"], got["dp"])]
    if not rows:
        return (f"(tp, pp, dp) = ({got['tp']}, {got['pp']}, {got['dp']}) with batch "
                f"{got['batch']} is not a layout of {world} GPUs from the choices")
    row = rows[0]
    if row["weights_GB"] * 1e9 <= hw.memory_bytes < row["memory_GB"] * 1e9:
        return (f"it does not fit: weights {row['weights_GB']:.1f} GB + KV cache "
                f"{row['kv_cache_GB']:.1f} GB = {row['memory_GB']:.1f} GB per GPU > "
                f"{hw.memory_bytes / 1e9:g} GB (the KV cache counts)")
    if not row["fits"]:
        return f"it does not fit: {row['memory_GB']:.1f} GB per GPU"
    if row["ms_per_token"] > target:
        return f"it misses the target: {row['ms_per_token']:.3f} ms per token > {target:g} ms"
    if row["tp"] > hw.gpus_per_server:
        return (f"tp={row['tp']} spans servers of {hw.gpus_per_server} GPUs: tensor "
                f"parallelism stays inside a server")
    return (f"it qualifies ({row['memory_GB']:.4f} GB, {row['ms_per_token']:.4f} ms), but "
            f"gives {row['tokens_per_s']:.1f} tokens/s: another qualifying layout gives more "
            f"(fits means ≤ the memory, meets means ≤ the target: equal counts)")


def check_choices(fn, namespace, variants=None) -> list:
    """`fn(target_ms, context, world, hw)` equals `reference_choice` on every variant (the
    planner switched off while fn runs). Returns [(variant, reference row or None)]."""
    variants = VARIANTS if variants is None else variants
    answers = {f: _NOT_YOURS.format(f"cost.{f.__name__}") for f in (plan_decode, best)}
    answers[reference_choice] = _NOT_YOURS.format("checks.lesson07_plan.reference_choice")
    with forbidden(namespace, answers):
        found = [fn(target, context, world, hw) for target, context, world, hw in variants]
    out = []
    for variant, got in zip(variants, found):
        where = describe(variant)
        mine, want = _as_choice(got, where), reference_choice(*variant)
        expected = None if want is None else {k: want[k] for k in KEYS}
        if mine != expected:
            why = _slip(mine, variant)
            raise AssertionError(f"{where}: expected {expected}, yours {mine}: {why}")
        out.append((variant, want))
    return out
