"""Where to cut a model into pipeline stages.

A pipeline runs at the pace of its slowest stage, so a split is good when its largest stage
is small. Layers stay in order (a stage is a contiguous run of layers); among such splits,
`split_layers` finds one whose most expensive stage is as cheap as it can be. "Expensive" is
whatever the caller measures: parameter bytes (memory per rank) or measured time (speed).
The two can disagree — SmolLM2's embedding is 21 % of its bytes but almost no time, while
its LM head is the same bytes and real time — which is why lesson 05 reports both.
"""
from __future__ import annotations

from functools import lru_cache

__all__ = ["split_layers", "layer_bytes", "stage_costs"]


def split_layers(costs: list[float], p: int) -> list[range]:
    """p contiguous ranges of layer indices covering all of them, minimising the largest sum."""
    n = len(costs)
    if not 1 <= p <= n:
        raise ValueError(f"cannot split {n} layers into {p} stages: each stage needs at least "
                         f"one layer (choose 1 <= p <= {n})")
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)

    @lru_cache(maxsize=None)
    def best(start: int, stages: int) -> tuple[float, tuple[int, ...]]:
        """(largest stage sum, cut points) for layers[start:] in `stages` stages."""
        if stages == 1:
            return prefix[n] - prefix[start], ()
        options = []
        for stop in range(start + 1, n - stages + 2):
            rest, cuts = best(stop, stages - 1)
            options.append((max(prefix[stop] - prefix[start], rest), (stop, *cuts)))
        return min(options)

    edges = [0, *best(0, p)[1], n]
    return [range(a, b) for a, b in zip(edges, edges[1:])]


def layer_bytes(layers) -> list[int]:
    """Parameter bytes of each layer (a module or a list of modules per layer)."""
    def nbytes(layer) -> int:
        modules = layer if isinstance(layer, (list, tuple)) else [layer]
        return sum(t.numel() * t.element_size() for m in modules for t in m.parameters())
    return [nbytes(layer) for layer in layers]


def stage_costs(costs: list[float], stages: list[range]) -> list[float]:
    """The summed cost of each stage."""
    return [sum(costs[i] for i in r) for r in stages]
