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
GB rounded before comparing at a GPU 1 MB short, a target equal to a row's time, the `batches`
argument or the `hw` ignored, B // dp for ceil(B/dp), ties to more replicas), a few drawn with
a fixed seed, and three drawn when the check runs (so a table of answers does not pass). Its
message names the rule the learner's choice breaks, never the expected choice.
"""
from __future__ import annotations

import dataclasses
import os
import random

from tplab.checks.forbid import forbidden
from tplab.cost import A100_330W, H100, LLAMA2_70B, best, decode_memory, decode_time, plan_decode
from tplab.cost.machines import Hardware

__all__ = ["BATCHES", "SMALL", "UNEVEN", "ODD", "H100_1", "H100_4", "KEYS", "VARIANTS",
           "reference_choice", "grade_time_variants", "describe", "check_choices"]

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


def _need(target_ms: float, context: int, world: int = 8, hw: Hardware = H100,
          batches=BATCHES) -> int:
    """Bytes per GPU of the planner's answer, the planner's own sum to the byte."""
    row = reference_choice(target_ms, context, world, hw, batches)
    return decode_memory(LLAMA2_70B, row["tp"], row["pp"], -(-row["batch"] // row["dp"]),
                         context)["total"]


def _gpu(memory_bytes: int, why: str, base: Hardware = H100) -> Hardware:
    return dataclasses.replace(base, name=f"{base.name[:9]} {why}", memory_bytes=memory_bytes)


SMALL = (1, 2, 4, 8, 16, 32, 64)            # the batches below the 80-GB answer's 256
UNEVEN = (3, 6, 12, 24, 48, 96, 192)        # not powers of two: ceil(B/dp) ≠ B // dp
H100_1 = dataclasses.replace(H100, name="H100-80GB, 1 per server (PCIe cards)",
                             gpus_per_server=1)
# a GPU whose memory equals, to the byte, what batch 64 needs: one batch below the 80-GB answer
_EXACT = _need(60, 4096, batches=SMALL)
# 1 MB less than batch 64 needs: the same number of GB to one decimal, yet it does not fit
_JUST_SHORT = _EXACT - 1_000_000
ODD = (3, 9, 27, 81)                        # odd: replicas of dp = 2 decode 41 and 40 of 81


def _between_ceil_and_floor() -> float:
    """A target that tp = 4, dp = 2 meets with 81 // 2 = 40 sequences per replica and misses
    with ceil(81 / 2) = 41: rounding the split down passes it."""
    ms = [decode_time(LLAMA2_70B, 4, H100_4, b, 4096)["ms_per_token"] for b in (40, 41)]
    return round(sum(ms) / 2, 4)


def _exact_target() -> float:
    """The time per token of the headline case's answer: a target met with nothing to spare."""
    return reference_choice(25, 4096)["ms_per_token"]


def _drawn(rng: random.Random, n: int) -> list[tuple]:
    return [(rng.choice([9, 12, 18, 22, 28, 35, 45, 70, 120]),
             rng.choice([1024, 2048, 8192, 16384]), rng.choice([4, 8, 16]),
             rng.choice([H100, H100_4, H100_1, A100_330W]),
             rng.choice([BATCHES, SMALL, UNEVEN, (5, 10, 20, 40, 80, 160)])) for _ in range(n)]


# (target_ms, context, world, hw, batches): the slip each one catches
VARIANTS = ([(25, 4096, 8, H100, BATCHES),    # the headline: batch limited by the target
             (60, 4096, 8, H100, BATCHES),    # batch limited by the KV cache
             (15, 32768, 8, H100, BATCHES),   # long context
             (20, 4096, 8, H100_4, BATCHES),  # servers of 4: TP 8 would cross servers
             (12, 2048, 16, H100, BATCHES),   # two servers of 8: TP 16 would cross them
             (10, 4096, 8, H100_4, BATCHES),  # nothing meets the target: None
             (40, 4096, 2, H100, BATCHES),    # 2 GPUs: the weights leave room for 16 sequences
             (30, 4096, 2, H100, BATCHES),    # 2 GPUs, too slow for the target: None
             (60, 4096, 8, _gpu(_EXACT, "exactly what batch 64 needs"), BATCHES),  # ≤ fits
             (60, 4096, 8, _gpu(_JUST_SHORT, "1 MB short of batch 64"), BATCHES),  # bytes, not GB
             (_exact_target(), 4096, 8, H100, BATCHES),    # a time equal to the target meets it
             (60, 4096, 8, H100, SMALL),      # the batches passed in, not BATCHES
             (20, 4096, 8, A100_330W, BATCHES),   # another GPU's time (A100 bandwidth)
             (200, 4096, 8, H100_1, BATCHES),     # no NVLink: tp = 1, the stages split memory
             (200, 4096, 8, H100_4, (1,)),        # a real tie: (4, 2, 1) = (4, 1, 2): fewer dp
             (40, 4096, 8, H100_4, UNEVEN),       # dp = 2 on 3·2^k: ceil(B/dp), not B // dp
             (60, 16384, 8, H100_4, UNEVEN),      # long context on servers of 4
             (_between_ceil_and_floor(), 4096, 8, H100_4, ODD)]   # ceil(B/dp), not B // dp
            + _drawn(random.Random(7), 3))


def grade_time_variants(n: int = 3) -> list[tuple]:
    """A few more cases drawn when the check runs, from a seed nobody sees: a table of the
    fixed cases' answers does not pass."""
    return _drawn(random.Random(os.urandom(8)), n)


def describe(variant) -> str:
    target, context, world, hw, batches = variant
    return (f"choose_deployment(target_ms={target:g}, context={context}, world={world}, "
            f"hw=<{hw.name}: {hw.memory_bytes:.0f} B, {hw.gpus_per_server} per server>"
            + ("" if batches == BATCHES else f", batches={batches}") + ")")


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
    """Which rule the learner's choice breaks, without giving the answer away."""
    target, context, world, hw, batches = variant
    if got is None:
        return "a layout qualifies, so None is not the answer"
    if got["batch"] not in batches:
        return f"batch {got['batch']} is not one of the batches passed in, {batches}"
    rows = [r for r in _rows(context, world, hw, [got["batch"]])
            if (r["tp"], r["pp"], r["dp"]) == (got["tp"], got["pp"], got["dp"])]
    if not rows:
        return (f"(tp, pp, dp) = ({got['tp']}, {got['pp']}, {got['dp']}) is not a layout of "
                f"{world} GPUs with tp ≤ {hw.gpus_per_server} (its GPUs per server): tensor "
                f"parallelism stays inside a server")
    row = rows[0]
    need = decode_memory(LLAMA2_70B, row["tp"], row["pp"], -(-row["batch"] // row["dp"]),
                         context)
    if need["weights"] <= hw.memory_bytes < need["total"]:
        return (f"it does not fit: weights + KV cache of its ceil(B/dp) sequences = "
                f"{need['total']:.0f} B per GPU > {hw.memory_bytes:.0f} B, this GPU's memory "
                f"(compare bytes, not rounded GB; the KV cache counts)")
    if not row["fits"]:
        return f"it does not fit: {need['total']:.0f} B per GPU > {hw.memory_bytes:.0f} B"
    if row["ms_per_token"] > target:
        return (f"it misses the target: {row['ms_per_token']:.4f} ms per token > {target:g} ms "
                f"(time it on the hw passed in, with ceil(B/dp) sequences per replica)")
    return ("it qualifies, but ranks below another qualifying layout: tokens/s counts all B "
            "sequences; ties go to fewer dp (fits means ≤ the memory, meets means ≤ the target: "
            "equal counts)")


def check_choices(fn, namespace, variants=None) -> list:
    """`fn(target_ms, context, world, hw, batches)` equals `reference_choice` on every variant
    (the planner switched off while fn runs): VARIANTS and a few drawn now unless `variants`
    is given. Returns [(variant, reference row or None)]."""
    variants = VARIANTS + grade_time_variants() if variants is None else variants
    answers = {f: _NOT_YOURS.format(f"cost.{f.__name__}") for f in (plan_decode, best)}
    answers[reference_choice] = _NOT_YOURS.format("checks.lesson07_plan.reference_choice")
    with forbidden(namespace, answers):
        found = [fn(*variant) for variant in variants]
    out = []
    for variant, got in zip(variants, found):
        where = describe(variant)
        mine, want = _as_choice(got, where), reference_choice(*variant)
        expected = None if want is None else {k: want[k] for k in KEYS}
        if mine != expected:
            why = ("no layout qualifies: return None" if expected is None and
                   _slip(mine, variant).startswith("it qualifies") else _slip(mine, variant))
            raise AssertionError(f"{where}: yours {mine} is not the planner's choice: {why}")
        out.append((variant, want))
    return out
