"""Tensor-parallel layers against their dense originals: outputs, gradients, and the traffic."""
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import tplab
from tplab import comm
from tplab.layers import Attention, SwiGLU
from tplab.tp import (
    ColumnParallelLinear,
    ParallelAttention,
    ParallelSwiGLU,
    RowParallelLinear,
    Slice,
    VocabParallelEmbedding,
    head_plan,
    shard_plan,
    shard_range,
    shard_sizes,
    tensor_shapes,
    vocab_parallel_cross_entropy,
)

WORLD_SIZES = [1, 2, 3, 4]
B, S = 2, 5


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def leaf(shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def run_both(dense, parallel, x_shape, seed=1):
    """Forward and backward the same input through both; return outputs and input grads."""
    x, xp = leaf(x_shape, seed), leaf(x_shape, seed)
    y = dense(x)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1))
    y.backward(grad)
    with comm.trace() as forward:
        yp = parallel(xp)
    with comm.trace() as backward:
        yp.backward(grad)
    return {"out": rel(yp, y), "input grad": rel(xp.grad, x.grad)}, forward, backward


def linear_pair():
    rank, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    first, second = nn.Linear(7, 10), nn.Linear(10, 5)
    col, row = ColumnParallelLinear.from_dense(first), RowParallelLinear.from_dense(second)
    errors, _, _ = run_both(lambda x: second(torch.relu(first(x))),
                            lambda x: row(torch.relu(col(x))), (B, S, 7))
    r0, r1 = shard_range(10, n, rank)
    errors["column weight grad"] = rel(col.weight.grad, first.weight.grad[r0:r1])
    errors["column bias grad"] = rel(col.bias.grad, first.bias.grad[r0:r1])
    errors["row weight grad"] = rel(row.weight.grad, second.weight.grad[:, r0:r1])
    errors["row bias grad"] = rel(row.bias.grad, second.bias.grad)
    bitwise = (torch.equal(col.full_weight(), first.weight.detach())
               and torch.equal(row.full_weight(), second.weight.detach()))
    # the other two modes: a gathered column output, a row layer splitting its own input
    gathered = ColumnParallelLinear.from_dense(first, gather_output=True)
    splitting = RowParallelLinear.from_dense(second, input_is_parallel=False)
    more, _, _ = run_both(lambda x: second(first(x)), lambda x: splitting(gathered(x)), (B, S, 7),
                          seed=5)
    errors.update({f"gathered/split {k}": v for k, v in more.items()})
    return errors, bitwise


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_column_then_row_equals_dense(world_size):
    for errors, bitwise in tplab.launch(linear_pair, world_size):
        assert bitwise, "shard -> gather of the weights must give the dense weights bit for bit"
        assert max(errors.values()) < 1e-5, errors


def mlp():
    rank, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    dense = SwiGLU(12, 10)
    par = ParallelSwiGLU.from_dense(dense)
    errors, fwd, bwd = run_both(dense, par, (B, S, 12))
    r0, r1 = shard_range(10, n, rank)
    errors["gate grad"] = rel(par.gate.weight.grad, dense.gate.weight.grad[r0:r1])
    errors["up grad"] = rel(par.up.weight.grad, dense.up.weight.grad[r0:r1])
    errors["down grad"] = rel(par.down.weight.grad, dense.down.weight.grad[:, r0:r1])
    return errors, fwd.summary(), bwd.summary()


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_parallel_mlp_equals_dense_with_one_all_reduce_each_way(world_size):
    for errors, fwd, bwd in tplab.launch(mlp, world_size):
        assert max(errors.values()) < 1e-5, errors
        one = {"all_reduce": {"calls": 1, "bytes": B * S * 12 * 4}}  # b·s·h float32
        assert fwd == one and bwd == one, (fwd, bwd)


def attention(n_heads, n_kv, hidden):
    rank, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    dense = Attention(hidden, n_heads, n_kv, head_dim=4, bias=True)
    par = ParallelAttention.from_dense(dense)
    errors, fwd, bwd = run_both(dense, par, (B, S, hidden))
    plan, d = head_plan(n_heads, n_kv, n)[rank], 4
    (q0, q1), (kv0, kv1) = plan["q"], plan["kv"]
    errors["q grad"] = rel(par.q.weight.grad, dense.q.weight.grad[q0 * d:q1 * d])
    errors["o grad"] = rel(par.o.weight.grad, dense.o.weight.grad[:, q0 * d:q1 * d])
    for name in ("k", "v"):  # replicated KV heads get partial gradients: their sum is the dense one
        full = torch.zeros_like(getattr(dense, name).weight)
        full[kv0 * d:kv1 * d] = getattr(par, name).weight.grad
        dist.all_reduce(full)
        errors[f"{name} grad"] = rel(full, getattr(dense, name).weight.grad)
    return errors, fwd.summary(), bwd.summary()


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("heads", [(6, 2, 16), (9, 3, 20)])  # 9 heads: uneven for 2 and 4 ranks
def test_parallel_attention_equals_dense_gqa_split_or_replicated(world_size, heads):
    for errors, fwd, bwd in tplab.launch(attention, world_size, *heads):
        assert max(errors.values()) < 1e-5, errors
        one = {"all_reduce": {"calls": 1, "bytes": B * S * heads[2] * 4}}
        assert fwd == one and bwd == one, (fwd, bwd)


def vocab(v):
    rank, n = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    dense = nn.Embedding(v, 6)
    par = VocabParallelEmbedding.from_dense(dense)
    ids = torch.randint(0, v, (B, S), generator=torch.Generator().manual_seed(3))
    out, outp = dense(ids), par(ids)
    grad = torch.randn(out.shape)
    out.backward(grad)
    outp.backward(grad)
    lo, hi = shard_range(v, n, rank)
    embedding_exact = (torch.equal(out, outp)
                       and torch.equal(par.weight.grad, dense.weight.grad[lo:hi]))
    logits = leaf((B, S, v), 7)
    loss = F.cross_entropy(logits.reshape(-1, v), ids.reshape(-1), reduction="none").reshape(B, S)
    loss.backward(torch.ones_like(loss) / loss.numel())
    local = logits.detach()[..., lo:hi].clone().requires_grad_()
    with comm.trace() as t:
        lossp = vocab_parallel_cross_entropy(local, ids, vocab_start=lo)
    lossp.mean().backward()
    default_start = vocab_parallel_cross_entropy(local.detach(), ids)  # finds its start itself
    errors = {"loss": rel(lossp, loss), "logit grad": rel(local.grad, logits.grad[..., lo:hi]),
              "default start": rel(default_start, loss)}
    return embedding_exact, errors, t.summary()


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_vocab_parallel_embedding_exact_and_cross_entropy_without_gathering(world_size):
    for exact, errors, traffic in tplab.launch(vocab, world_size, 23):
        assert exact, "the vocab-parallel embedding and its gradient must equal the dense ones"
        assert max(errors.values()) < 1e-5, errors
        # max, target, sum-exp
        assert traffic == {"all_reduce": {"calls": 3, "bytes": 3 * B * S * 4}}, traffic


def test_shard_sizes_and_head_plans():
    assert shard_sizes(10, 4) == [3, 3, 2, 2] and sum(shard_sizes(49152, 9)) == 49152
    assert head_plan(9, 3, 2) == [{"q": (0, 6), "kv": (0, 2)}, {"q": (6, 9), "kv": (2, 3)}]
    assert head_plan(9, 3, 4)[2] == {"q": (5, 7), "kv": (1, 3)}  # spans two KV groups: both kept
    assert [p["kv"] for p in head_plan(9, 3, 9)] == [(0, 1)] * 3 + [(1, 2)] * 3 + [(2, 3)] * 3
    with pytest.raises(ValueError, match="from 1 to 9"):
        head_plan(9, 3, 10)
    with pytest.raises(ValueError, match=">= 1"):
        shard_sizes(10, 0)


def _decode_attention(n_heads, n_kv_heads):
    """Prefill 3 positions then decode 2, with fused frozen weights and an input that wants a
    gradient: the decoding shortcut against the dense module, output and input gradient."""
    from tplab.layers import LayerCache, Rotary
    torch.manual_seed(0)
    dense = Attention(4 * n_heads, n_heads, n_kv_heads, 4).requires_grad_(False)
    parallel = ParallelAttention.from_dense(dense, None).requires_grad_(False)
    dense.fuse()
    parallel.fuse()
    rope = Rotary(4, 10000.0)
    caches = [LayerCache(1, dense.n_kv_heads, 8, 4), LayerCache(1, parallel.n_kv_heads, 8, 4)]
    worst = 0.0
    for s in (3, 1, 1):
        x = leaf((1, s, 4 * n_heads), seed=s)
        xp = x.detach().clone().requires_grad_(True)
        out, out_p = dense(x, rope, caches[0]), parallel(xp, rope, caches[1])
        out.pow(2).sum().backward(retain_graph=True)  # the cache keeps earlier steps' graphs
        out_p.pow(2).sum().backward(retain_graph=True)
        worst = max(worst, rel(out_p, out), rel(xp.grad, x.grad))
    return worst, parallel.fused is not None


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_parallel_attention_decoding_path_matches_dense(world_size):
    for worst, fused in tplab.launch(_decode_attention, world_size, 9, 3):
        assert fused and worst < 1e-5


def test_shard_sizes_that_do_not_add_up_are_refused():
    assert shard_range(10, 2, 1, [6, 4]) == (6, 10)
    with pytest.raises(ValueError, match="adding up to 10"):
        shard_range(10, 2, 0, [3, 3])
    with pytest.raises(ValueError, match="must be 3 numbers"):
        shard_range(10, 3, 0, [5, 5])


def test_the_parallel_blocks_are_the_dense_blocks_with_f_and_g():
    """No attention or MLP maths written twice: the parallel classes inherit the dense forward."""
    assert issubclass(ParallelAttention, Attention)
    assert ParallelAttention.forward is Attention.forward
    assert issubclass(ParallelSwiGLU, SwiGLU) and ParallelSwiGLU.forward is SwiGLU.forward


@pytest.mark.parametrize("t", range(1, 10))
def test_shard_plan_covers_every_tensor_and_maps_each_query_head_to_its_kv_head(t):
    from tplab.models.llama import Config
    c = Config()
    plans = shard_plan(c, t)
    shapes = tensor_shapes(c)

    def tiles(part, dim):  # the ranks' ranges of this tensor follow each other and cover it
        spans = [getattr(p.layer.get(part) or p.model[part], dim) for p in plans]
        return all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[0][0] == 0 and \
            spans[-1][1] == shapes[part][0 if dim == "rows" else 1]

    assert all(tiles(part, "rows") for part in ("attn.q", "mlp.gate", "mlp.up", "embed"))
    assert all(tiles(part, "cols") for part in ("attn.o", "mlp.down"))
    group, d = c.n_heads // c.n_kv_heads, c.head_dim
    for p, hp in zip(plans, head_plan(c.n_heads, c.n_kv_heads, t)):
        a = p.attention
        assert (a.q_heads, a.kv_heads) == (hp["q"], hp["kv"])
        global_kv = [kv + a.kv_heads[0] for kv in a.kv_of_head]
        assert global_kv == [j // group for j in range(*a.q_heads)]
        kv_rows = Slice(rows=(a.kv_heads[0] * d, a.kv_heads[1] * d))
        assert p.layer["attn.k"] == p.layer["attn.v"] == kv_rows
    norms = (2 * c.n_layers + 1) * c.hidden  # whole on every rank
    held = sum(p.numel(c) - norms for p in plans) + norms
    whole = shard_plan(c, 1)[0].numel(c)
    # beyond 3 ranks (the KV heads), KV heads are replicated: the ranks hold more than the model
    assert whole == 134_515_008 and (held == whole) == (t <= c.n_kv_heads)


def test_a_tiny_random_model_from_the_same_blocks():
    """What later lessons assemble: dense blocks of any size, fresh weights, with a cache."""
    from tplab.layers import Block, LayerCache, Rotary
    torch.manual_seed(0)
    blocks = [Block(Attention(32, 4, 2), SwiGLU(32, 64), 32) for _ in range(2)]
    rope, x = Rotary(8, 10000.0), torch.randn(1, 5, 32)
    whole = x
    for block in blocks:
        whole = block(whole, rope)
    caches = [LayerCache(1, 2, 5, 8) for _ in blocks]
    steps = []
    for i in range(5):  # one position at a time, through the caches: the same outputs
        y = x[:, i:i + 1]
        for block, cache in zip(blocks, caches):
            y = block(y, rope, cache)
        steps.append(y)
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)
