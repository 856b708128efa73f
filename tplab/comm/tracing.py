"""Count every collective and point-to-point call a rank makes, with the bytes it moves.

Why: every parallel scheme in the course has a communication formula (a ring all-reduce
sends 2(n-1)/n·N bytes per rank; a tensor-parallel MLP does one all-reduce each way).
The tracer checks those formulas against what the code actually did. It wraps the
`torch.distributed` functions for the duration of a `with` block, in this process only,
so use it inside the function you launch: each rank counts its own calls.

    with tplab.comm.trace() as t:
        dist.all_reduce(x)
    t.count("all_reduce"), t.bytes("all_reduce")
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import Counter

import torch
import torch.distributed as dist

# op -> (position, keyword) of the argument whose size we record: the tensor this rank
# contributes (for scatter, the one it receives); None for calls that carry no tensor.
_TRACED = {
    "all_reduce": (0, "tensor"), "broadcast": (0, "tensor"), "reduce": (0, "tensor"),
    "send": (0, "tensor"), "recv": (0, "tensor"), "isend": (0, "tensor"), "irecv": (0, "tensor"),
    "all_gather": (1, "tensor"), "all_gather_into_tensor": (1, "input_tensor"),
    "reduce_scatter": (1, "input_list"), "reduce_scatter_tensor": (1, "input"),
    "all_to_all": (1, "input_tensor_list"), "all_to_all_single": (1, "input"),
    "gather": (0, "tensor"), "scatter": (0, "tensor"),
    "barrier": None, "all_gather_object": None, "broadcast_object_list": None,
}

_state = threading.local()


@dataclasses.dataclass
class Call:
    op: str        # e.g. "all_reduce", "send"
    nbytes: int    # payload: the tensor handed to the call (the input, for gathers and scatters)
    impl: str      # "torch" or the tplab implementation that did the work ("shm", "ring")


class Trace:
    """The calls one rank made inside a `trace()` block."""

    def __init__(self):
        self.calls: list[Call] = []

    def record(self, op: str, nbytes: int, impl: str = "torch") -> None:
        self.calls.append(Call(op, int(nbytes), impl))

    def count(self, op: str | None = None) -> int:
        return sum(1 for c in self.calls if op is None or c.op == op)

    def bytes(self, op: str | None = None) -> int:
        return sum(c.nbytes for c in self.calls if op is None or c.op == op)

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.op for c in self.calls))

    def summary(self) -> dict[str, dict[str, int]]:
        """{op: {"calls": n, "bytes": b}}: small and picklable, to return from a rank."""
        out: dict[str, dict[str, int]] = {}
        for c in self.calls:
            entry = out.setdefault(c.op, {"calls": 0, "bytes": 0})
            entry["calls"] += 1
            entry["bytes"] += c.nbytes
        return out


def _payload_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_payload_bytes(v) for v in value)
    return 0


def _active() -> list[Trace]:
    return getattr(_state, "traces", [])


def record(op: str, nbytes: int, impl: str) -> None:
    """Let tplab's own collectives (shared memory, rings) show up in the trace."""
    if _patch_depth and not getattr(_state, "quiet", 0):  # cheap when nothing is traced
        for t in _active():
            t.record(op, nbytes, impl)


@contextlib.contextmanager
def quiet():
    """Calls inside this block are not traced (tplab's internal set-up, or the calls
    an implementation makes that it already recorded as one operation)."""
    _state.quiet = getattr(_state, "quiet", 0) + 1
    try:
        yield
    finally:
        _state.quiet -= 1


def _wrap(name, original, arg_index):
    def traced(*args, **kwargs):
        if _active() and not getattr(_state, "quiet", 0):
            payload = None
            if arg_index is not None:
                position, keyword = arg_index
                payload = args[position] if len(args) > position else kwargs.get(keyword)
            record(name, _payload_bytes(payload), "torch")
        return original(*args, **kwargs)

    traced.__wrapped__ = original
    traced.__name__ = name
    return traced


_patch_lock = threading.Lock()
_patch_depth = 0
_originals: dict[str, object] = {}


@contextlib.contextmanager
def trace():
    """Record this process's communication calls until the block ends; yields a Trace."""
    global _patch_depth
    t = Trace()
    with _patch_lock:
        if _patch_depth == 0:
            for name, index in _TRACED.items():
                original = getattr(dist, name)
                _originals[name] = original
                setattr(dist, name, _wrap(name, original, index))
        _patch_depth += 1
    _state.traces = _active() + [t]
    try:
        yield t
    finally:
        _state.traces = [x for x in _active() if x is not t]
        with _patch_lock:
            _patch_depth -= 1
            if _patch_depth == 0:
                for name, original in _originals.items():
                    setattr(dist, name, original)
                _originals.clear()
