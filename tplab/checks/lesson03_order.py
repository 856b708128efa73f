"""Check of exercise 03.3 (solutions/03_tensor_parallel_layers.ipynb): the MLP Y = φ(XA)B split
the other way round, A by rows and B by columns, against the dense MLP and against the traffic
it must cost.

`run_row_first` runs on every launched rank with the learner's `row_first_mlp`: it builds the
dense X, A, B from a fixed seed, hands the rank its slices (X's and A's by input features, B's by
output columns, `shard_range` of the hidden size: uneven on 3 ranks), traces what the learner
communicates, and runs column-then-row beside it for the comparison. `run_row_first_cases` does
it for both of `CASES`' shapes in one launch, and `check_row_first` applies every check: the
exercise's one check cell (3 points) runs them on 1, 2 and 3 ranks, so an answer that works only
for one shape or one world size earns nothing. The `check_*` functions raise an AssertionError
that says what is wrong and what to do.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from tplab import comm
from tplab.tp import shard_range, shard_sizes

GATHERS = ("all_gather", "all_gather_into_tensor")


def dense_mlp(seed=0, m=6, hidden=10, ffn=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, hidden, generator=g)
    a = torch.randn(hidden, ffn, generator=g) / hidden ** 0.5
    b = torch.randn(ffn, hidden, generator=g) / ffn ** 0.5
    return x, a, b


def run_row_first(row_first_mlp, m=6, hidden=10, ffn=24, seed=0):
    # on every rank: the learner's row-then-column MLP on this rank's slices, the dense one, and
    # column-then-row (A by columns, B by rows, one all-reduce) for the picture
    rank, t = dist.get_rank(), dist.get_world_size()
    x, a, b = dense_mlp(seed, m, hidden, ffn)
    ref = F.gelu(x @ a) @ b
    lo, hi = shard_range(hidden, t, rank)
    with comm.trace() as traced:
        y = row_first_mlp(x[:, lo:hi].clone(), a[lo:hi].clone(), b[:, lo:hi].clone(), hidden)
    f0, f1 = shard_range(ffn, t, rank)
    with comm.trace() as column_first:
        partial = F.gelu(x @ a[:, f0:f1]) @ b[f0:f1]
        dist.all_reduce(partial)
    # what φ before the sum would give: Σ_r φ(X_r A_r) B
    phi_first = sum(F.gelu(x[:, i:j] @ a[i:j]) for i, j in
                    (shard_range(hidden, t, r) for r in range(t))) @ b
    return {"y": y.detach() if isinstance(y, torch.Tensor) else y, "ref": ref, "lo": lo, "hi": hi,
            "phi_first": phi_first, "column_first_ok": bool(torch.allclose(partial, ref,
                                                                             atol=1e-6)),
            "calls": [(c.op, c.nbytes) for c in traced.calls],
            "column_first": [(c.op, c.nbytes) for c in column_first.calls],
            "m": m, "hidden": hidden, "ffn": ffn}


def _close(a, b):
    return float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())


def _where(t, rank, out):
    ranks = f"{t} rank{'s' if t > 1 else ''}"
    return f"{ranks}, rank {rank} (input features {out['lo']}..{out['hi'] - 1})"


def check_row_first_numbers(t, rank, out):
    # the whole output on every rank, equal to the dense MLP's
    y, ref, where = out["y"], out["ref"], _where(t, rank, out)
    m, h = ref.shape
    assert isinstance(y, torch.Tensor), (
        f"{where}: row_first_mlp should return a tensor, came {type(y).__name__}")
    if tuple(y.shape) == (m, out["hi"] - out["lo"]) and out["hi"] - out["lo"] != h:
        raise AssertionError(
            f"{where}: row_first_mlp returned shape {tuple(y.shape)}, this rank's output columns "
            f"only; every rank should return the whole [m, hidden] = {(m, h)} output. All-gather "
            f"the ranks' column blocks along the last dimension (uneven widths: "
            f"shard_sizes(hidden, t))")
    assert tuple(y.shape) == (m, h), (
        f"{where}: row_first_mlp should return the whole output, shape {(m, h)}, came "
        f"{tuple(y.shape)}")
    assert torch.isfinite(y).all(), f"{where}: your output holds inf or nan"
    if _close(y, ref):
        return
    if t > 1 and _close(y, out["phi_first"]):
        raise AssertionError(
            f"{where}: your output is Σ_r φ(X_r A_r)·B, φ applied to each rank's partial product "
            f"before the sum; φ is not linear, so φ(XA) ≠ Σ_r φ(X_r A_r). All-reduce X_r A_r "
            f"first, then apply φ to the whole XA")
    bad = (y - ref).abs().amax(dim=0) > 1e-5 * float(ref.abs().max())
    if bool(bad.all()):
        raise AssertionError(
            f"{where}: every output column differs from the dense MLP's (column 0 should be "
            f"{ref[:, 0].tolist()[:3]}…, came {y[:, 0].tolist()[:3]}…), so it is not where the "
            f"blocks meet: check φ (F.gelu, the exact one, on the whole XA) and the all-reduce "
            f"(a sum of the partial products X_r A_r, not their mean)")
    j = int(bad.nonzero()[0])
    owner = next(r for r in range(t) if shard_range(h, t, r)[0] <= j < shard_range(h, t, r)[1])
    lo, hi = shard_range(h, t, owner)
    inner = bad[lo + 1:hi - 1]
    edge = (" (only the edge columns of its block are wrong: an off-by-one where blocks meet?)"
            if hi - lo > 2 and not bool(inner.any()) else "")
    raise AssertionError(
        f"{where}: output column {j}, computed by rank {owner} (columns {lo}..{hi - 1}){edge}, "
        f"should be {ref[:, j].tolist()[:3]}…, came {y[:, j].tolist()[:3]}…. Each rank computes "
        f"φ(XA)·B_r for its own columns; put rank r's block at columns shard_range(hidden, t, r)")


CASES = [dict(m=6, hidden=10, ffn=24, seed=0),  # hidden 10: 5+5 on 2 ranks, 4+3+3 on 3
         dict(m=5, hidden=7, ffn=20, seed=1)]   # hidden 7: 4+3 on 2 ranks, 3+2+2 on 3


def run_row_first_cases(row_first_mlp, cases=CASES):
    # on every rank: `run_row_first` for each shape, in one launch
    return [run_row_first(row_first_mlp, **case) for case in cases]


def check_row_first(t, rank, out):
    """All of exercise 03.3 for one rank and shape: the numbers, then (t > 1) the traffic."""
    check_row_first_numbers(t, rank, out)   # right traffic with wrong numbers earns nothing
    check_row_first_ops(t, rank, out)
    if t > 1:
        check_row_first_traffic(t, rank, out)


def check_row_first_ops(t, rank, out):
    # communication by all-reduce and all-gather only (anything else is not this scheme)
    other = [(op, n) for op, n in out["calls"] if op != "all_reduce" and op not in GATHERS]
    assert not other, (
        f"{_where(t, rank, out)}: communicate by one all-reduce and one all-gather only, the "
        f"trace shows {other} (op, bytes)")


def check_row_first_traffic(t, rank, out):
    # exactly one all-reduce of m·ffn fp32 numbers, then one all-gather of the m×h_r columns
    m, h, ffn, where = out["m"], out["hidden"], out["ffn"], _where(t, rank, out)
    reduce_bytes = m * ffn * 4
    mine, widest = m * (out["hi"] - out["lo"]) * 4, m * max(shard_sizes(h, t)) * 4
    calls = out["calls"]
    reduces = [n for op, n in calls if op == "all_reduce"]
    gathers = [n for op, n in calls if op in GATHERS]
    if any(n == reduce_bytes for n in gathers):
        raise AssertionError(
            f"{where}: you all-gather the m×ffn partial products ({reduce_bytes} bytes): XA is "
            f"their *sum*, so all-reduce them (one call of {reduce_bytes} bytes); gathering moves "
            f"t times the bytes to every rank and leaves the adding to you. The trace: {calls}")
    assert reduces == [reduce_bytes], (
        f"{where}: expected exactly one all-reduce, of the m×ffn partial product X_r A_r "
        f"(m·ffn·4 = {reduce_bytes} bytes), the trace shows {calls} (op, bytes)"
        + (". The output's columns are not partial sums: each rank has its own block, so "
           "all-gather it (moving (t-1)/t of the output) instead of all-reducing a zero-padded "
           "[m, hidden] tensor (2(t-1)/t of it)" if len(reduces) > 1 else ""))
    assert len(gathers) == 1 and gathers[0] in (mine, widest), (
        f"{where}: expected exactly one all-gather of this rank's m×h_r output block "
        f"({mine} bytes, or {widest} padded to the widest block), the trace shows {calls}")
    assert [op for op, _ in calls][0] == "all_reduce", (
        f"{where}: the all-reduce comes first (φ needs the whole XA), then the all-gather of the "
        f"output; the trace shows {calls}")
