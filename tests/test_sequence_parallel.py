"""Sequence parallelism on 2 ranks: the dense block's outputs and gradients, TP's bytes, 1/t of
the activations (Korthikanti et al. 2022)."""
import pytest
import torch
import torch.distributed as dist

import tplab
from tplab import comm
from tplab.layers import Attention, SwiGLU
from tplab.layers.block import Block
from tplab.tp.activations import SavedBytes, korthikanti
from tplab.tp.plan import attention_shards, mlp_shards
from tplab.tp.sequence import (
    parallel_block,
    ring_sent_bytes,
    scatter_to_sequence,
    sequence_parallel_terms,
)

DIM, HEADS, KV_HEADS, HEAD_DIM, FFN, B, S = 16, 4, 2, 4, 24, 2, 8
WHOLE = B * S * DIM * 4  # bytes of one [b, s, h] fp32 activation


def dense_block():
    torch.manual_seed(0)
    block = Block(Attention(DIM, HEADS, KV_HEADS, HEAD_DIM), SwiGLU(DIM, FFN), DIM)
    for norm in (block.attn_norm, block.mlp_norm):  # not ones: their gradients must matter
        norm.weight.data.uniform_(0.5, 1.5)
    return block


def inputs():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(B, S, DIM, generator=generator), torch.randn(B, S, DIM, generator=generator)


def one_rank_run(sequence_parallel):
    rank, t = dist.get_rank(), dist.get_world_size()
    block = parallel_block(dense_block(), sequence_parallel=sequence_parallel)
    x, weights = inputs()
    if sequence_parallel:  # each rank holds its s/t tokens, and weighs its own outputs
        x, weights = scatter_to_sequence(x), weights.chunk(t, 1)[rank]
    x.requires_grad_()
    with comm.trace() as forward, SavedBytes([*block.parameters(), *block.buffers()]) as saved:
        y = block(x)
    with comm.trace() as backward:
        (y * weights).sum().backward()  # the sum over ranks is the dense loss
    return dict(y=y.detach(), x_grad=x.grad, saved=saved.nbytes,
                grads={n: p.grad for n, p in block.named_parameters()},
                forward=forward.summary(), backward=backward.summary())


def both_runs():
    runs = {"tp": one_rank_run(False), "tp_sp": one_rank_run(True)}
    try:
        scatter_to_sequence(torch.zeros(1, 7, DIM))
    except ValueError as error:
        runs["uneven"] = str(error)
    return runs


@pytest.fixture(scope="module")
def ranks():
    return {t: tplab.launch(both_runs, t, timeout=60) for t in (1, 2)}


@pytest.fixture(scope="module")
def dense():
    block = dense_block()
    x, weights = inputs()
    x.requires_grad_()
    y = block(x)
    (y * weights).sum().backward()
    return dict(y=y.detach(), x_grad=x.grad, grads={n: p.grad for n, p in block.named_parameters()})


def my_slice(name, grad, rank, t):
    """The dense gradient's part a rank holds: its heads' rows/columns, its FFN features."""
    layer = name.split(".")[1]
    slices = {**attention_shards(HEADS, KV_HEADS, HEAD_DIM, t)[rank].slices,
              **mlp_shards(FFN, t)[rank].slices}
    return slices[layer].of(grad) if layer in slices else grad  # norms: whole


@pytest.mark.parametrize("t", [1, 2])
def test_outputs_and_gradients_equal_the_dense_block_and_plain_tp(ranks, dense, t):
    close = dict(atol=1e-5, rtol=0)
    for rank, runs in enumerate(ranks[t]):
        tokens = lambda whole: whole.chunk(t, 1)[rank]  # noqa: E731
        torch.testing.assert_close(runs["tp"]["y"], dense["y"], **close)
        torch.testing.assert_close(runs["tp_sp"]["y"], tokens(dense["y"]), **close)
        torch.testing.assert_close(runs["tp"]["x_grad"], dense["x_grad"], **close)
        torch.testing.assert_close(runs["tp_sp"]["x_grad"], tokens(dense["x_grad"]), **close)
        for name, grad in dense["grads"].items():
            want = my_slice(name, grad, rank, t)
            for kind in ("tp", "tp_sp"):
                torch.testing.assert_close(runs[kind]["grads"][name], want, **close, msg=name)


def test_sp_sends_tp_bytes_forward_and_one_all_gather_more_backward(ranks):
    t, whole, shard = 2, WHOLE, WHOLE // 2
    for runs in ranks[2]:
        tp, sp = runs["tp"], runs["tp_sp"]
        # what the tracer records: the tensor handed in (all-gather: my s/t tokens)
        assert tp["forward"] == {"all_reduce": {"calls": 2, "bytes": 2 * whole}}
        assert sp["forward"] == {"all_gather": {"calls": 2, "bytes": 2 * shard},
                                 "reduce_scatter": {"calls": 2, "bytes": 2 * whole}}
        assert tp["backward"] == {"all_reduce": {"calls": 2, "bytes": 2 * whole}}
        norm_weights = 2 * DIM * 4  # their gradients, all-reduced: each rank saw s/t tokens
        assert sp["backward"] == {"reduce_scatter": {"calls": 2, "bytes": 2 * whole},
                                  "all_gather": {"calls": 4, "bytes": 4 * shard},
                                  "all_reduce": {"calls": 2, "bytes": norm_weights}}
        # what a ring sends per rank: reduce-scatter + all-gather == all-reduce, 2(t-1)/t·N
        sent = lambda summary: sum(ring_sent_bytes(summary, t).values())  # noqa: E731
        assert sent(sp["forward"]) == sent(tp["forward"]) == 2 * 2 * (t - 1) * whole // t
        regather = 2 * (t - 1) * whole // t  # the saved s/t tokens, gathered again
        norm_sent = 2 * (t - 1) * norm_weights // t
        assert sent(sp["backward"]) == sent(tp["backward"]) + regather + norm_sent


def test_saved_activations_tp_keeps_norms_whole_sp_divides_everything_by_t(ranks):
    measured = {(kind, t): [r[kind]["saved"] for r in ranks[t]] for kind in ("tp", "tp_sp")
                for t in (1, 2)}
    for t in (1, 2):
        terms = sequence_parallel_terms(B, S, DIM, HEADS, HEAD_DIM, FFN, t)
        assert measured["tp", t] == [terms["tp"]] * t
        assert measured["tp_sp", t] == [terms["tp_sp"]] * t
    assert measured["tp_sp", 2][0] * 2 == measured["tp", 1][0] == measured["tp_sp", 1][0]
    # the published GPT layer's formula has the same shape: with SP the whole layer / t
    s, b, h, a = 2048, 1, 12288, 96
    none, sp = korthikanti(s, b, h, a, t=1), korthikanti(s, b, h, a, t=8, sequence_parallel=True)
    assert sp["sharded"] * 8 == pytest.approx(none["replicated"] + none["sharded"])
    terms = sequence_parallel_terms(B, S, DIM, HEADS, HEAD_DIM, FFN, 2)
    print(f"saved per rank (bytes): TP t=1 {measured['tp', 1][0]}, t=2 {measured['tp', 2][0]}; "
          f"TP+SP t=2 {measured['tp_sp', 2][0]}; replicated share at t=1 "
          f"{terms['replicated'] / (terms['replicated'] + terms['sharded']):.2f} "
          f"(Korthikanti's GPT-3 layer: {none['replicated'] / sum(none.values()):.2f})")


def test_a_sequence_that_does_not_divide_by_t_is_refused(ranks):
    assert all("must divide by the tensor-parallel degree 2" in r["uneven"] for r in ranks[2])
    with pytest.raises(ValueError, match="length 7 must divide by the tensor-parallel degree 2"):
        sequence_parallel_terms(B, 7, DIM, HEADS, HEAD_DIM, FFN, 2)
