"""How `tplab.comm.hooks` sees the calls made straight to torch.distributed: while a direct
subscriber listens, torch's functions are wrapped under both their names (`torch.distributed`,
`torch.distributed.distributed_c10d`) and the process groups' own methods (`PG_OPS`) too, so
that no other spelling of a call escapes a check that counts a learner's traffic (an audit
passed lesson 01's ring check with `torch.distributed.distributed_c10d.all_reduce`). Each call
reports once: a reported call's inner calls are silent (`hooks._state.inside`), and so is what
tplab's own code reaches a process group with (tplab.comm reports its collectives itself).
Kept apart from hooks.py, the subscribers' side, to keep each file short.
"""
from __future__ import annotations

import inspect
import os
import sys

import torch
import torch.distributed as dist
from torch._C import _distributed_c10d as _c10d_cpp
from torch.distributed import distributed_c10d as _c10d

__all__ = ["DIRECT", "PG_OPS", "from_tplab", "wrap_torch", "unwrap_torch"]

# torch.distributed functions reported when called directly -> the parameter whose tensor(s) we
# count: the tensor this rank contributes (for scatter, the one it receives); None: no tensor
DIRECT = {
    "all_reduce": "tensor", "broadcast": "tensor", "reduce": "tensor",
    "send": "tensor", "recv": "tensor", "isend": "tensor", "irecv": "tensor",
    "all_gather": "tensor", "all_gather_into_tensor": "input_tensor",
    "reduce_scatter": "input_list", "reduce_scatter_tensor": "input",
    "reduce_scatter_single": "input", "all_gather_single": "input_tensor",
    "all_to_all": "input_tensor_list", "all_to_all_single": "input",
    "gather": "tensor", "scatter": "tensor",
    "barrier": None, "all_gather_object": None, "broadcast_object_list": None,
}
# process-group methods -> (the torch.distributed name reported, the index of the argument whose
# tensor(s) we count, None: none). Their Work is asynchronous: send and recv report as isend,
# irecv.
PG_OPS = {
    "allreduce": ("all_reduce", 0), "allreduce_coalesced": ("all_reduce", 0),
    "broadcast": ("broadcast", 0), "reduce": ("reduce", 0),
    "allgather": ("all_gather", 1), "allgather_coalesced": ("all_gather", 1),
    "_allgather_base": ("all_gather_into_tensor", 1),
    "all_gather_single": ("all_gather_into_tensor", 1),
    "allgather_into_tensor_coalesced": ("all_gather_into_tensor", 1),
    "reduce_scatter": ("reduce_scatter", 1), "_reduce_scatter_base": ("reduce_scatter_tensor", 1),
    "reduce_scatter_single": ("reduce_scatter_tensor", 1),
    "reduce_scatter_tensor_coalesced": ("reduce_scatter_tensor", 1),
    "alltoall": ("all_to_all", 1), "alltoall_base": ("all_to_all_single", 1),
    "all_to_all_single": ("all_to_all_single", 1),
    "gather": ("gather", 1), "scatter": ("scatter", 0),
    "send": ("isend", 0), "recv": ("irecv", 0), "recv_anysource": ("irecv", 0),
    "barrier": ("barrier", None), "monitored_barrier": ("barrier", None),
}
_PG_CLASSES = (_c10d_cpp.ProcessGroup, _c10d_cpp.Backend)


_TPLAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the tplab package


def from_tplab(frame) -> bool:
    """Whether the innermost caller outside torch, from `frame` outwards, is tplab's own code."""
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "torch":
        frame = frame.f_back
    if frame is None:
        return False
    name = frame.f_globals.get("__name__", "")
    return name.split(".")[0] == "tplab" and frame.f_code.co_filename.startswith(_TPLAB + os.sep)


def _payload_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_payload_bytes(v) for v in value)
    return 0


_originals: dict[tuple, object] = {}  # (namespace or class, name) -> what was there
_hooks = None  # tplab.comm.hooks, handed in by wrap_torch (it imports this module)


def _listening() -> bool:
    state = _hooks._state
    return any(s.direct for s in _hooks._snapshot) and not state.quiet and not state.inside


def wrap_torch(hooks) -> None:
    """Wrap torch's functions and process-group methods to report to `hooks`' subscribers."""
    global _hooks
    _hooks = hooks
    wrapped = {}  # one wrapper per function, under each of its names
    for space in (dist, _c10d):
        for name, payload in DIRECT.items():
            original = getattr(space, name)
            _originals[space, name] = original
            if id(original) not in wrapped:
                wrapped[id(original)] = _reporting(name, original, payload)
            setattr(space, name, wrapped[id(original)])
    for cls in _PG_CLASSES:
        for method, (op, at) in PG_OPS.items():
            if method in vars(cls):
                _originals[cls, method] = vars(cls)[method]
                setattr(cls, method, _reporting_method(vars(cls)[method], op, at))


def unwrap_torch() -> None:
    """Put back what wrap_torch replaced (where nobody patched over it since)."""
    for (space, name), original in _originals.items():
        # put back only our own wrapper (not one somebody patched over it since)
        if getattr(vars(space).get(name), "__wrapped__", None) is original:
            setattr(space, name, original)
    _originals.clear()


def _reporting(name: str, original, payload: str | None):
    """`original` (a torch.distributed function), reporting to direct subscribers."""
    parameters = list(inspect.signature(original).parameters)

    def argument(args, kwargs, parameter, default=None):
        if parameter not in parameters:
            return default
        at = parameters.index(parameter)
        return args[at] if len(args) > at else kwargs.get(parameter, default)

    always_async = name in ("isend", "irecv")

    def reported(*args, **kwargs):
        if not _listening():
            return original(*args, **kwargs)
        nbytes = _payload_bytes(argument(args, kwargs, payload)) if payload else 0
        async_op = always_async or bool(argument(args, kwargs, "async_op", False))
        call = _hooks.begin(name, nbytes, "torch", argument(args, kwargs, "group"), async_op,
                            direct=True, arguments={**dict(zip(parameters, args)), **kwargs})
        _hooks._state.inside += 1
        try:
            result = original(*args, **kwargs)
        finally:
            _hooks._state.inside -= 1
        if not async_op:
            _hooks.end(call)
            return result
        return _hooks.track(call, result)

    reported.__wrapped__ = original
    reported.__name__ = reported.__qualname__ = name
    reported.__doc__ = original.__doc__
    return reported


def _reporting_method(original, op: str, at: int | None):
    """A process group's method, reporting a call that no reported function made (a name bound
    before the wrapping, the group's method called itself) unless tplab's own code made it."""

    def reported(self, *args, **kwargs):
        bound = original.__get__(self, type(self))
        if not _listening() or from_tplab(sys._getframe(1)):
            return bound(*args, **kwargs)
        nbytes = _payload_bytes(args[at]) if at is not None and len(args) > at else 0
        call = _hooks.begin(op, nbytes, "torch", self, async_op=True, direct=True)
        _hooks._state.inside += 1
        try:
            work = bound(*args, **kwargs)
        finally:
            _hooks._state.inside -= 1
        try:  # the Work itself goes back (torch's callers need its own type): ended by its future
            work.get_future().add_done_callback(lambda _future: _hooks.end(call))
        except (AttributeError, RuntimeError):  # no future (gloo's send/recv): ended once sent
            _hooks.end(call)
        return work

    reported.__wrapped__ = original
    reported.__name__ = reported.__qualname__ = getattr(original, "__name__", op)
    reported.__doc__ = original.__doc__
    return reported
