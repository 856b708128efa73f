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
  (`direct=True`, the default), the functions in `DIRECT` are wrapped (`hooks_torch`; below), in
  this process only, and put back when the last such subscriber leaves. So use
  it inside the function you launch: each rank reports its own calls.

An asynchronous call (`async_op=True`, `isend`, `irecv`) reports "start" when launched and "end"
when its work completes: from the work's future (`Work.get_future().add_done_callback`, what
DDP's communication hooks build on), else when `.wait()` returns (gloo's send and recv have no
future). It hands back the Work wrapped so that a `.wait()` on it reports "wait" first; the
wrapper forwards everything else to the Work. On NCCL the future completes once the work is
*queued* on the GPU, so there "end" is not the GPU's finishing time (CUDA events give that).

Every route to torch's collectives is seen, not only the name `torch.distributed.all_reduce`
(a check that counts a learner's traffic must not be fooled by another spelling of the same
call): the functions are wrapped under both their names, `torch.distributed` and
`torch.distributed.distributed_c10d`, and a call that reaches a process group's own methods
(`ProcessGroup.allreduce`, ...) some other way (a name bound before the wrapping,
`dist.all_reduce.__wrapped__`, `dist.group.WORLD.allreduce`) is reported there, by the process
group's method name mapped to torch.distributed's (`PG_OPS`). A call reports once: what a
reported call makes inside it (`broadcast_object_list`'s broadcasts) is not reported again, nor
is what tplab's own code reaches the process group with (tplab.comm reports its collectives
itself). Not seen: PyTorch's functional collectives (DTensor's route, `torch.ops`), which do not
pass through Python (lesson 03 counts those with DTensor's `CommDebugMode`).

A subscription is process-wide: it hears the collectives of every thread of the process, not
only of the thread that subscribed (so the tracer counts them all; `quiet()` is the one
per-thread switch, and only tplab's own code may use it: a learner's `with hooks.quiet():`
raises, so it cannot hide traffic from a check). Subscribers are called on whatever thread
made or completed the call (an async completion: gloo's own thread), so they must be quick and
thread-safe; one that raises is reported once as a warning and the collective goes on. With
nobody subscribed the cost is a truth test per tplab collective, and torch.distributed is left
untouched.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time
import warnings

from tplab.comm.hooks_torch import DIRECT, PG_OPS, from_tplab, unwrap_torch, wrap_torch

__all__ = ["Collective", "Subscription", "TrackedWork", "subscribe", "quiet", "begin", "end",
           "track", "DIRECT", "PG_OPS"]

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
    # a torch.distributed call's arguments by parameter name (a check may look at what the call
    # carried, or change it at "start" or "end"); None for tplab's and process-group calls
    arguments: dict | None = None


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
                    unwrap_torch()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


subscribers: list[Subscription] = []  # changed in place only, so tplab.comm can hold it
_snapshot: tuple[Subscription, ...] = ()  # the same, for _notify to loop over while it changes
_lock = threading.RLock()  # re-entrant: a subscriber told under it may subscribe


class _ThreadState(threading.local):
    quiet = 0   # how many quiet() blocks this thread is in (a class default: no AttributeError)
    inside = 0  # how many reported torch calls this thread is inside (their inner calls: silent)


_state = _ThreadState()


def subscribe(callback, direct: bool = True) -> Subscription:
    """Call `callback(kind, call)` for every collective from now on (kind "start", "wait", "end").
    direct=False: only tplab.comm's collectives, not calls made straight to torch.distributed."""
    global _snapshot
    subscription = Subscription(callback, direct)
    with _lock:
        if direct and not any(s.direct for s in subscribers):
            wrap_torch(sys.modules[__name__])
        subscribers.append(subscription)
        _snapshot = tuple(subscribers)
    return subscription


QUIET_REFUSED = ("tplab.comm.hooks.quiet() is for tplab's own set-up calls: all the "
                 "communication your code makes is counted; make the calls the exercise asks for")


class quiet:
    """Calls this thread makes inside the block report nothing (tplab's own set-up). Refused
    (RuntimeError) when entered from anything but tplab's code: a check's trace must see every
    call a learner's function makes."""

    def __enter__(self) -> quiet:
        if not from_tplab(sys._getframe(1)):
            raise RuntimeError(QUIET_REFUSED)
        _state.quiet += 1
        return self

    def __exit__(self, *exc) -> None:
        _state.quiet -= 1


def begin(op: str, nbytes: int, impl: str, group=None, async_op: bool = False,
          direct: bool = False, arguments: dict | None = None) -> Collective | None:
    """Report a call starting; returns its record for `end` or `track` (None: nobody listens)."""
    if not subscribers or _state.quiet:
        return None
    call = Collective(op, int(nbytes), impl, async_op, direct, group, time.perf_counter(),
                      arguments=arguments)
    _notify("start", call)
    return call


def end(call: Collective | None) -> None:
    """Report `call` complete, once (an async call's future and its `.wait()` may both get here)."""
    if call is None or call.end is not None:
        return
    if call.async_op:
        with _lock:  # held while notifying: a .wait() on another thread returns after "end" is
            if call.end is not None:  # told (a subscriber may change the result at "end")
                return
            call.end = time.perf_counter()
            _notify("end", call)
        return
    call.end = time.perf_counter()  # only the calling thread gets here
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
