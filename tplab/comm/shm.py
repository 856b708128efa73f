"""All-reduce through shared memory, for CPU ranks on one machine.

Why: gloo moves even a 2 KB all-reduce through the loopback TCP stack, with a few round
trips of ~0.1 ms or more each. Ranks on one host can instead write into one shared
buffer and read each other's slots: the cost is a memory copy and a spin on a flag,
microseconds. Production engines ship such a small-message all-reduce for the same reason
(vLLM's custom all-reduce, SGLang's, DeepSpeed's shm_comm); tensor-parallel decoding
makes ~60 of them per token, so this decides whether TP on CPU is usable at all.

Protocol, per call k (k = 1, 2, ...) and per chunk of at most `slot_bytes`:
  1. write my data into my slot of buffer k % 2;
  2. publish flag[me] = k (the data must become visible to the others before the flag);
  3. wait until every flag >= k;
  4. sum the slots in rank order (the same order everywhere: identical results on all ranks).
Two buffers alternate, so a fast rank writing call k+1 never overwrites what a slow rank is
still reading from call k; and by the time anyone reaches call k+2 every rank has published
k+1, which it does only after finishing its reads of call k.

Memory ordering: steps 2 and 3 need the flag's store to be a release and its load an
acquire. Python has no fences, so the route relies on the hardware: x86-64 keeps stores
in order and loads in order (TSO), which gives exactly that. ARM (Apple silicon, Graviton,
Grace) and POWER may let another core see the flag before the data, and a rank would sum
stale values. There this route is switched off and tplab takes torch.distributed's
all-reduce, saying so once (`stores_in_order`).
"""
from __future__ import annotations

import mmap
import os
import platform
import socket
import sys
import tempfile
import time

import numpy as np
import torch
import torch.distributed as dist

from tplab.comm import hooks

# dtypes the fast path sums (numpy's); others (bfloat16) take torch.distributed's route
DTYPES = (torch.float32, torch.float64, torch.float16, torch.int32, torch.int64)
_COMBINE = {"sum": np.add, "max": np.maximum}
SLOT_BYTES = 4 << 20  # per rank and buffer; larger tensors go through in chunks
_FLAG_BYTES = 64      # one cache line per rank's flag
_FLAG_STRIDE = _FLAG_BYTES // 8
_channels: dict = {}
MACHINE = platform.machine()  # e.g. x86_64, AMD64, arm64, aarch64
_TSO = ("x86_64", "amd64", "x64", "i386", "i686", "x86")
_said = False


def stores_in_order(machine: str | None = None) -> bool:
    """True where the CPU shows other cores our stores in program order (x86's TSO), so a
    flag written after the data is never seen before it."""
    return (machine or MACHINE).lower() in _TSO


class ShmChannel:
    """The shared buffers of one process group, set up once and reused for every call."""

    def __init__(self, group, slot_bytes: int = SLOT_BYTES, timeout: float = 60.0):
        self.n, self.rank = dist.get_world_size(group), dist.get_rank(group)
        self.slot_bytes, self.timeout, self.calls = slot_bytes, timeout, 0
        size = self.n * _FLAG_BYTES + 2 * self.n * slot_bytes
        with hooks.quiet():
            name = [None]
            if self.rank == 0:
                fd, path = tempfile.mkstemp(prefix="tplab-shm-", dir=_shm_dir())
                os.ftruncate(fd, size)
                os.close(fd)
                name = [path]
            dist.broadcast_object_list(name, src=_global(group, 0), group=group)
            fd = os.open(name[0], os.O_RDWR)
            self.map = mmap.mmap(fd, size)
            os.close(fd)
            dist.barrier(group=group)
            if self.rank == 0:
                os.unlink(name[0])  # mapped memory lives on; nothing is left behind in /dev/shm
        self.flags = memoryview(self.map).cast("q")  # flag of rank r at index r * _FLAG_STRIDE
        data = np.frombuffer(self.map, dtype=np.uint8, offset=self.n * _FLAG_BYTES)
        self.buffers = data.reshape(2, self.n, slot_bytes)
        # (which buffer, numpy dtype, numel) -> every rank's slot viewed as that chunk
        self._views: dict = {}

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce in place ("sum" or "max"). numpy, not torch, does the copies and adds:
        for a 2 KB message torch's per-call overhead (µs) would be most of the cost."""
        combine = _COMBINE[op]
        source = tensor.detach() if tensor.requires_grad else tensor
        work = source if source.is_contiguous() else source.contiguous()
        flat = work.numpy().reshape(-1)
        per_chunk = self.slot_bytes // flat.itemsize
        if flat.size <= per_chunk:
            self._reduce_chunk(flat, combine)
        else:
            for start in range(0, flat.size, per_chunk):
                self._reduce_chunk(flat[start:start + per_chunk], combine)
        if work is not source:
            source.copy_(work)  # worked on a contiguous copy: write it back
        return tensor

    def _slots(self, which: int, dtype: np.dtype, size: int) -> list[np.ndarray]:
        key = (which, dtype, size)
        if key not in self._views:
            nbytes = size * dtype.itemsize
            self._views[key] = [self.buffers[which, r, :nbytes].view(dtype) for r in range(self.n)]
        return self._views[key]

    def _reduce_chunk(self, chunk: np.ndarray, combine) -> None:
        self.calls += 1
        k = self.calls
        views = self._slots(k % 2, chunk.dtype, chunk.size)
        np.copyto(views[self.rank], chunk)
        self.flags[self.rank * _FLAG_STRIDE] = k
        self._wait_for(k)
        if self.n == 1:
            np.copyto(chunk, views[0])
            return
        # a float overflow warns (numpy) where torch is silent
        combine(views[0], views[1], out=chunk)
        for view in views[2:]:
            combine(chunk, view, out=chunk)

    def _wait_for(self, k: int) -> None:
        flags, spins, deadline = self.flags, 0, None
        for r in range(self.n):
            while flags[r * _FLAG_STRIDE] < k:
                spins += 1
                if spins % 64 == 0:
                    os.sched_yield()  # more ranks than cores: let the others run
                if spins % 4096 == 0:
                    now = time.monotonic()
                    deadline = deadline or now + self.timeout
                    if now > deadline:
                        late = [q for q in range(self.n) if flags[q * _FLAG_STRIDE] < k]
                        raise TimeoutError(f"shared-memory all-reduce #{k}: rank(s) {late} of this "
                                           f"group never arrived within {self.timeout:g} s")


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def _global(group, rank: int) -> int:
    return rank if group is None else dist.get_global_rank(group, rank)


def channel(group=None) -> ShmChannel | None:
    """The group's shared-memory channel, or None unless its ranks are CPU ranks on one host."""
    key = group or dist.group.WORLD
    if key not in _channels:
        with hooks.quiet():
            hosts = [None] * dist.get_world_size(group)
            dist.all_gather_object(hosts, socket.gethostname(), group=group)
        usable = dist.get_backend(group) == "gloo" and len(set(hosts)) == 1
        if usable and not stores_in_order():
            _say_once(f"tplab.comm: the shared-memory all-reduce is off on {MACHINE}: this CPU "
                      f"may show the ready flag before the data (no x86 store ordering), so "
                      f"all-reduces take torch.distributed's route (correct, slower for small "
                      f"messages).")
            usable = False
        _channels[key] = ShmChannel(group) if usable else None
    return _channels[key]


def _say_once(message: str) -> None:
    global _said
    if not _said and dist.get_rank() == 0:
        print(message, file=sys.stderr)
    _said = True
