"""Check of exercise 01.3 (solutions/01_collectives.ipynb): 14 GB of bf16 gradients all-reduced
by data parallelism inside one 8-GPU node, in one flat ring over 64 nodes, and hierarchically.

Pure arithmetic with the α–β ring formulas of exercise 01.2 (Thakur, Rabenseifner & Gropp 2005;
Patarasuk & Yuan 2009), here with a bandwidth B in bytes/s instead of β = 1/B:

    ring all-reduce over n:        2(n-1)·α + 2(n-1)/n · N / B
    reduce-scatter, all-gather:     (n-1)·α +  (n-1)/n · N / B   (N: the whole tensor)
    hierarchical over nodes × g:   reduce-scatter over g (NVLink) + all-reduce of N/g over the
                                   nodes (InfiniBand, each GPU with its own NIC) + all-gather
                                   over g (NVLink)

`check_scale` compares the learner's functions with these at held-out synthetic points chosen so
that each term shows by itself (n = 1, one node, one GPU per node, α alone, bandwidth alone,
unequal links), then the learner's constants and the stated case. The points are not printed in
the exercise, so a number typed in, or a slip in one term, cannot pass. The learner's functions run
with this module's references switched off (`tplab.checks.forbid`): calling them is not an
answer. Reusing exercise 01.2's `tplab.comm.cost` formulas (with β = 1/B) is, and stays allowed.
The stated case's figures come from `tplab.hardware`, the course's one table of published
hardware numbers.
"""
from __future__ import annotations

import math

from tplab import hardware
from tplab.checks.forbid import forbidden, guard

__all__ = ["flat_ring", "hierarchical", "check_scale", "stated_times", "stated_parts"]

# the stated case: 7e9 parameters' bf16 gradients (2 bytes each); 64 nodes of 8 H100s, NVLink 4
# inside a node, one InfiniBand NDR adapter per GPU between nodes (tplab.hardware: sources)
_NBYTES, _NODES, _GPUS_PER_NODE = 7e9 * 2, 64, 8


def flat_ring(nbytes: float, n: int, alpha: float, bandwidth: float) -> float:
    """Seconds for a ring all-reduce of nbytes per rank over n ranks whose slowest link moves
    `bandwidth` bytes/s."""
    guard("tplab.checks.lesson01_scale.flat_ring")   # hidden while a learner's function runs
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bandwidth


def _half(nbytes: float, n: int, alpha: float, bandwidth: float) -> float:
    """Reduce-scatter (or all-gather) of a whole tensor of nbytes over n ranks, by a ring."""
    guard("tplab.checks.lesson01_scale._half")
    return (n - 1) * alpha + (n - 1) / n * nbytes / bandwidth


def hierarchical(nbytes: float, nodes: int, gpus_per_node: int, intra, inter) -> float:
    """Seconds for reduce-scatter in the node, all-reduce of each GPU's 1/g across the nodes,
    all-gather in the node; intra and inter are (alpha, bandwidth) pairs."""
    guard("tplab.checks.lesson01_scale.hierarchical")
    g = gpus_per_node
    return (2 * _half(nbytes, g, *intra)
            + flat_ring(nbytes / g, nodes, *inter))


FORBIDDEN = ("your function called tplab.checks.lesson01_scale's reference ({ref}), the "
             "check's own answer: write the formula yourself (exercise 01.2's tplab.comm.cost "
             "functions, with beta = 1/bandwidth, are fine to reuse)")


def _answers() -> dict:
    refs = {flat_ring: "flat_ring", hierarchical: "hierarchical", _half: "_half"}
    return {fn: FORBIDDEN.format(ref=ref) for fn, ref in refs.items()}


def _close(got, want) -> bool:
    return (isinstance(got, (int, float)) and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15))


NV, IB = hardware.NVLINK4_BYTES_PER_S, hardware.IB_NDR_BYTES_PER_S
# held-out points: (nbytes, n, alpha, bandwidth) and what each isolates
FLAT = [((_NBYTES, 1, 5e-6, IB), "n = 1: no communication at all, 0 s"),
        ((0, 2, 1.0, 1.0), "alpha = 1 s, no bytes: the latency term alone, 2(n-1)·alpha"),
        ((0, 512, 3e-6, IB), "no bytes: the latency term alone, 2(n-1)·alpha"),
        ((1000, 2, 0.0, 1.0), "alpha = 0: the bandwidth term alone, 2(n-1)/n·N/B"),
        ((3e9, 3, 0.0, 25e9), "alpha = 0: the bandwidth term alone, 2(n-1)/n·N/B"),
        ((_NBYTES, 8, 2e-6, NV), "both terms"),
        ((7e8, 5, 1e-3, 1e9), "both terms")]
# (nbytes, nodes, gpus_per_node, intra, inter) and what each isolates
HIER = [((_NBYTES, 1, 8, (5e-6, NV), (5e-6, IB)),
         "one node: the all-reduce inside it alone (no inter-node stage)"),
        ((_NBYTES, 64, 1, (5e-6, NV), (5e-6, IB)),
         "one GPU per node: the inter-node all-reduce of the whole tensor alone"),
        ((0, 4, 8, (1.0, 1.0), (0.0, 1.0)),
         "no bytes, intra alpha = 1: 2(g-1)·alpha_intra (reduce-scatter + all-gather)"),
        ((0, 4, 8, (0.0, 1.0), (1.0, 1.0)),
         "no bytes, inter alpha = 1: 2(nodes-1)·alpha_inter"),
        ((8e9, 4, 8, (0.0, 400e9), (0.0, math.inf)),
         "alpha = 0, infinite inter-node bandwidth: the two NVLink stages' bytes alone"),
        ((8e9, 4, 8, (0.0, math.inf), (0.0, 25e9)),
         "alpha = 0, infinite NVLink bandwidth: the inter-node stage's bytes alone (each GPU "
         "all-reduces its 1/g)"),
        ((6e9, 3, 4, (0.0, 300e9), (0.0, 20e9)), "alpha = 0, unequal links"),
        ((_NBYTES, 64, 8, (2e-6, NV), (7e-6, IB)), "both terms, unequal alphas")]

ADVICE_FLAT = ("a ring all-reduce over n ranks takes 2(n-1) steps, each an alpha and a chunk of "
               "N/n bytes at the slowest link's bandwidth B: 2(n-1)·alpha + 2(n-1)/n·N/B")
ADVICE_HIER = ("reduce-scatter of the whole N over the g GPUs of a node ((g-1)·alpha + "
               "(g-1)/g·N/B, NVLink), then all-reduce of the 1/g each GPU now holds across the "
               "nodes (InfiniBand: a ring of `nodes` ranks on N/g bytes), then all-gather of N in "
               "the node (as the reduce-scatter)")


def check_scale(flat_ring_seconds, hierarchical_seconds, grad_bytes, nvlink, ib,
                alpha_nvlink, alpha_ib, namespace: dict) -> dict:
    """The learner's two functions at the held-out points, their constants, then the stated
    case; raises AssertionError naming the first thing wrong. The functions run with this
    module's references forbidden under every name in `namespace` (the notebook's globals) and
    in tplab's modules. Returns the stated case's times {"one node": s, "flat ring": s,
    "hierarchical": s} from the learner's functions."""
    with forbidden(namespace, _answers()):       # the learner's values first, references after
        flat = [flat_ring_seconds(*args) for args, _ in FLAT]
        hier = [hierarchical_seconds(*args) for args, _ in HIER]
        times = stated_times(flat_ring_seconds, hierarchical_seconds, grad_bytes, nvlink, ib,
                             alpha_nvlink, alpha_ib)
    for (args, what), got in zip(FLAT, flat):
        want = flat_ring(*args)
        assert _close(got, want), (
            f"flat_ring_seconds(nbytes={args[0]:g}, n={args[1]}, alpha={args[2]:g}, "
            f"bandwidth={args[3]:g}) is {got!r}, expected {want!r} ({what}); {ADVICE_FLAT}")
    for (args, what), got in zip(HIER, hier):
        want = hierarchical(*args)
        assert _close(got, want), (
            f"hierarchical_seconds(nbytes={args[0]:g}, nodes={args[1]}, gpus_per_node="
            f"{args[2]}, intra={args[3]}, inter={args[4]}) is {got!r}, expected {want!r} "
            f"({what}); {ADVICE_HIER}")
    assert _close(grad_bytes, _NBYTES), (
        f"GRAD_BYTES is {grad_bytes!r}, expected {_NBYTES:g}: 7e9 gradients in bf16, "
        f"2 bytes each" + (" (bf16 is 16 bits, 2 bytes, not 4)" if grad_bytes == 28e9 else ""))
    both = (" (900 GB/s counts both directions together; a ring sends one way on each link)"
            if nvlink == hardware.NVLINK4_BIDIRECTIONAL_BYTES_PER_S else "")
    assert _close(nvlink, hardware.NVLINK4_BYTES_PER_S), (
        f"NVLINK_BW is {nvlink!r}{both}, expected {hardware.NVLINK4_BYTES_PER_S:g} bytes/s: H100 "
        f"NVLink 4, 450 GB/s per direction per GPU")
    bits = (" (400 Gb/s is gigaBITS per second: divide by 8 for bytes)"
            if ib == hardware.IB_NDR_BITS_PER_S else "")
    assert _close(ib, hardware.IB_NDR_BYTES_PER_S), (
        f"IB_BW is {ib!r}{bits}, expected {hardware.IB_NDR_BYTES_PER_S:g} bytes/s: InfiniBand "
        f"NDR, 400 Gb/s per GPU")
    return times


def stated_times(flat_ring_seconds, hierarchical_seconds, grad_bytes, nvlink, ib, alpha_nvlink,
                 alpha_ib) -> dict:
    """The three cases of the exercise, in seconds, from the given functions:
    {"one node": s, "flat ring": s, "hierarchical": s}."""
    n, g = _NODES, _GPUS_PER_NODE
    return {"one node": flat_ring_seconds(grad_bytes, g, alpha_nvlink, nvlink),
            "flat ring": flat_ring_seconds(grad_bytes, n * g, alpha_ib, ib),
            "hierarchical": hierarchical_seconds(grad_bytes, n, g, (alpha_nvlink, nvlink),
                                                 (alpha_ib, ib))}


def stated_parts(flat_ring_seconds, hierarchical_seconds, grad_bytes, nvlink, ib, alpha_nvlink,
                 alpha_ib) -> dict:
    """{case: (latency part, bandwidth part)} in seconds: the same functions called once with no
    bytes (the alpha terms alone) and once with both alphas 0 (the bytes terms alone)."""
    latency = stated_times(flat_ring_seconds, hierarchical_seconds, 0, nvlink, ib, alpha_nvlink,
                           alpha_ib)
    volume = stated_times(flat_ring_seconds, hierarchical_seconds, grad_bytes, nvlink, ib, 0.0,
                          0.0)
    return {case: (latency[case], volume[case]) for case in latency}
