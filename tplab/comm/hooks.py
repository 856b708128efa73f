"""The one instrumentation point of tplab's communication: when each collective starts and ends.

Why one: the tracer counts calls and bytes, `AllReduceClock` times all-reduces, and
`DataParallel`'s timeline notes when each bucket's all-reduce completed. Each of them used to
patch the functions it watched, in its own way; now each *subscribes* here, and every
collective reports to every subscriber:

    def note(kind, call):          # kind: "start", "wait" or "end"; call: a Collective
        print(kind, call.op, call.nbytes, call.impl, call.end)

    with hooks.subscribe(note):    # or: handle = hooks.subscribe(note); ...; handle.remove()
        comm.all_reduce(x)         # note("start", call), then note("end", call)

Who reports:
* tplab.comm's own collectives (`all_reduce` by every route, `all_gather`, `ring_all_reduce`),
  once each, whichever route did the work (`call.impl` says which);
* calls made straight to torch.distributed (`dist.all_reduce`, `dist.send`, ...), which
  learners and exercise checks make (`call.direct` is True). While a subscriber wants those
  (`direct=True`, the default), the functions in `DIRECT` are wrapped in torch.distributed's
  namespace, in this process only, and put back when the last such subscriber leaves. So use
  it inside the function you launch: each rank reports its own calls.

An asynchronous call (`async_op=True`, `isend`, `irecv`) reports "start" when launched and "end"
when its work completes: from the work's future (`Work.get_future().add_done_callback`, what
DDP's communication hooks build on), else when `.wait()` returns (gloo's send and recv have no
future). It hands back the Work wrapped so that a `.wait()` on it reports "wait" first; the
wrapper forwards everything else to the Work. On NCCL the future completes once the work is
*queued* on the GPU, so there "end" is not the GPU's finishing time (CUDA events give that).

A subscription is process-wide: it hears the collectives of every thread of the process, not
only of the thread that subscribed (so the tracer counts them all; `quiet()` is the one
per-thread switch). Subscribers are called on whatever thread made or completed the call (an
async completion: gloo's own thread), so they must be quick and thread-safe; one that raises
is reported once as a warning and the collective goes on. With nobody subscribed the cost is a
truth test per tplab collective, and torch.distributed is left untouched.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
import time
import warnings

import torch
import torch.distributed as dist

__all__ = ["Collective", "Subscription", "TrackedWork", "subscribe", "quiet", "begin", "end",
           "track", "DIRECT"]

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


@dataclasses.dataclass(eq=False, slots=True)  # compared and hashed by identity: one per call
class Collective:
    """One call: what it was, and when it started and ended (`time.perf_counter()`)."""
    op: str                  # e.g. "all_reduce", "send"
    nbytes: int              # payload: the tensor handed to the call (the input, for gathers)
    impl: str                # "torch", or tplab's route: "shm", "ring", "none" (a group of one)
    async_op: bool = False
    direct: bool = False     # made straight to torch.distributed, not through tplab.comm
    group: object = None
    start: float = 0.0
    end: float | None = None  # None until it completed


class Subscription:
    """A subscriber's registration; `.remove()` ends it (so does leaving its `with` block)."""

    def __init__(self, callback, direct: bool):
        self.callback, self.direct, self.warned = callback, direct, False

    def remove(self) -> None:
        global _snapshot
        with _lock:
            if self in subscribers:
                subscribers.remove(self)
                _snapshot = tuple(subscribers)
                if self.direct and not any(s.direct for s in subscribers):
                    _unwrap_torch()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


subscribers: list[Subscription] = []  # changed in place only, so tplab.comm can hold it
_snapshot: tuple[Subscription, ...] = ()  # the same, for _notify to loop over while it changes
_lock = threading.Lock()


class _ThreadState(threading.local):
    quiet = 0  # how many quiet() blocks this thread is in (a class default: no AttributeError)


_state = _ThreadState()


def subscribe(callback, direct: bool = True) -> Subscription:
    """Call `callback(kind, call)` for every collective from now on (kind "start", "wait", "end").
    direct=False: only tplab.comm's collectives, not calls made straight to torch.distributed."""
    global _snapshot
    subscription = Subscription(callback, direct)
    with _lock:
        if direct and not any(s.direct for s in subscribers):
            _wrap_torch()
        subscribers.append(subscription)
        _snapshot = tuple(subscribers)
    return subscription


@contextlib.contextmanager
def quiet():
    """Calls this thread makes inside the block report nothing (tplab's own set-up)."""
    _state.quiet += 1
    try:
        yield
    finally:
        _state.quiet -= 1


def begin(op: str, nbytes: int, impl: str, group=None, async_op: bool = False,
          direct: bool = False) -> Collective | None:
    """Report a call starting; returns its record for `end` or `track` (None: nobody listens)."""
    if not subscribers or _state.quiet:
        return None
    call = Collective(op, int(nbytes), impl, async_op, direct, group, time.perf_counter())
    _notify("start", call)
    return call


def end(call: Collective | None) -> None:
    """Report `call` complete, once (an async call's future and its `.wait()` may both get here)."""
    if call is None or call.end is not None:
        return
    if call.async_op:
        with _lock:
            if call.end is not None:
                return
            call.end = time.perf_counter()
    else:  # only the calling thread gets here
        call.end = time.perf_counter()
    _notify("end", call)


def track(call: Collective | None, work):
    """Report the end of an async `call` when `work` completes; what to hand back for `work`."""
    if call is None or work is None:
        return work
    try:
        work.get_future().add_done_callback(lambda _future: end(call))
    except RuntimeError:  # no future for this work (gloo's send/recv): .wait() will tell
        pass
    return TrackedWork(work, call)


class TrackedWork:
    """A torch.distributed Work whose `.wait()` is reported; everything else is the Work's own."""

    def __init__(self, work, call: Collective):
        self._work, self.collective = work, call

    def wait(self, *args, **kwargs):
        _notify("wait", self.collective)
        result = self._work.wait(*args, **kwargs)
        end(self.collective)
        return result

    def __getattr__(self, name):
        return getattr(self._work, name)


def _notify(kind: str, call: Collective) -> None:
    for subscription in _snapshot:
        if call.direct and not subscription.direct:
            continue
        try:
            subscription.callback(kind, call)
        except Exception as exc:  # a broken observer must not break the communication it observes
            if not subscription.warned:
                subscription.warned = True
                warnings.warn(f"tplab.comm.hooks: subscriber {subscription.callback!r} raised "
                              f"{exc!r} on {kind} of {call.op}; the collective went on",
                              stacklevel=2)


def _payload_bytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(_payload_bytes(v) for v in value)
    return 0


_originals: dict[str, object] = {}


def _wrap_torch() -> None:
    for name, payload in DIRECT.items():
        original = getattr(dist, name)
        _originals[name] = original
        setattr(dist, name, _reporting(name, original, payload))


def _unwrap_torch() -> None:
    for name, original in _originals.items():
        # put back only our own wrapper (not one somebody patched over it since)
        if getattr(getattr(dist, name), "__wrapped__", None) is original:
            setattr(dist, name, original)
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
        if not any(s.direct for s in subscribers) or _state.quiet:
            return original(*args, **kwargs)
        nbytes = _payload_bytes(argument(args, kwargs, payload)) if payload else 0
        async_op = always_async or bool(argument(args, kwargs, "async_op", False))
        call = begin(name, nbytes, "torch", argument(args, kwargs, "group"), async_op, direct=True)
        result = original(*args, **kwargs)
        if not async_op:
            end(call)
            return result
        return track(call, result)

    reported.__wrapped__ = original
    reported.__name__ = reported.__qualname__ = name
    reported.__doc__ = original.__doc__
    return reported
