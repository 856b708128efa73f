"""Check of exercise 00.4 (solutions/00_devices_and_ranks.ipynb): on `torchrun --nnodes N
--nproc-per-node G`, which GPU each process opens and which ranks share its node.

Why in-process: the answer must come from the environment torchrun gives each worker, not from a
process group, so the check needs no ranks at all. For each simulated rank it sets `os.environ`
exactly as torchrun's agent sets it for that worker (RANK, LOCAL_RANK, GROUP_RANK, ROLE_RANK,
LOCAL_WORLD_SIZE, WORLD_SIZE, GROUP_WORLD_SIZE, ROLE_WORLD_SIZE, MASTER_ADDR, MASTER_PORT: see
`torch/distributed/elastic/agent/server/local_elastic_agent.py` and the "Environment Variables"
section of `torch/distributed/run.py`), calls the learner's `placement()`, and puts the
environment back as it was, also when the call raises. Global ranks are assigned in blocks:
node i holds ranks i·G … i·G + G − 1 (`_assign_worker_ranks` in
`torch/distributed/elastic/agent/server/api.py`: a base rank per node, plus LOCAL_RANK).
No process group exists meanwhile: an answer that asks `torch.distributed` fails.
"""
from __future__ import annotations

import contextlib
import os

__all__ = ["torchrun_env", "simulated", "placements", "check_placements"]

TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "GROUP_RANK", "ROLE_RANK", "LOCAL_WORLD_SIZE",
                 "WORLD_SIZE", "GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE", "MASTER_ADDR",
                 "MASTER_PORT", "NODE_RANK")


def torchrun_env(rank: int, nnodes: int, nproc: int) -> dict[str, str]:
    """The variables `torchrun --nnodes nnodes --nproc-per-node nproc` gives global rank `rank`."""
    node, local = divmod(rank, nproc)
    world = nnodes * nproc
    return {"RANK": str(rank), "LOCAL_RANK": str(local), "GROUP_RANK": str(node),
            "ROLE_RANK": str(rank), "LOCAL_WORLD_SIZE": str(nproc), "WORLD_SIZE": str(world),
            "GROUP_WORLD_SIZE": str(nnodes), "ROLE_WORLD_SIZE": str(world),
            "MASTER_ADDR": "node0.example", "MASTER_PORT": "29500"}


@contextlib.contextmanager
def simulated(rank: int, nnodes: int, nproc: int):
    """While the block runs, this process's environment is that of `rank` under torchrun (any
    torchrun variable set before is removed first); afterwards it is exactly as it was."""
    saved = dict(os.environ)
    for name in TORCHRUN_VARS:
        os.environ.pop(name, None)
    os.environ.update(torchrun_env(rank, nnodes, nproc))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def placements(placement, nnodes: int, nproc: int) -> list:
    """The learner's `placement()` as each rank of an nnodes × nproc job would call it."""
    out = []
    for rank in range(nnodes * nproc):
        with simulated(rank, nnodes, nproc):
            try:
                out.append(placement())
            except ZeroDivisionError as exc:
                raise AssertionError(
                    f"placement() raised ZeroDivisionError ({exc}) as rank {rank} of "
                    f"{nnodes} x {nproc}. The check simulates torchrun's nodes on this machine, "
                    f"which may have no GPU at all (then torch.cuda.device_count() is 0); and "
                    f"the GPU a process opens must not depend on counting the devices it sees: "
                    f"it is LOCAL_RANK, which torchrun sets") from None
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _device_problem(where: str, device, rank: int, local: int, nproc: int,
                    shared_with: list[int]) -> str | None:
    want = f"cuda:{local}"
    if device == want:
        return None
    if device == f"cuda:{rank}" and rank >= nproc:
        return (f"{where}: device is {device!r}, but a node has only {nproc} GPUs, cuda:0 to "
                f"cuda:{nproc - 1}: cuda:{{RANK}} is right on node 0 only, and here "
                f"torch.cuda.set_device({rank}) fails with 'invalid device ordinal'. The GPU "
                f"index is this process's rank on its node, LOCAL_RANK; expected {want!r}")
    shared = (f" (rank(s) {shared_with} on the same node open it too: they would share one GPU "
              f"while others stay idle)" if shared_with else "")
    return (f"{where}: device is {device!r}{shared}, expected {want!r}, a str 'cuda:<k>' with k "
            f"this process's index on its node (LOCAL_RANK)")


def _node_problem(where: str, node, rank: int, nnodes: int, nproc: int) -> str | None:
    want = rank // nproc
    if _is_int(node) and node == want:
        return None
    cyclic = (" (that is rank % nnodes: torchrun deals ranks out in blocks, node i holding "
              f"ranks i·{nproc} to i·{nproc} + {nproc - 1}, not round-robin)"
              if node == rank % nnodes else "")
    return (f"{where}: node is {node!r}{cyclic}, expected {want}, an int: GROUP_RANK, which "
            f"torchrun sets to the node's rank (equally RANK // LOCAL_WORLD_SIZE)")


def _ranks_problem(where: str, ranks, rank: int, nnodes: int, nproc: int) -> str | None:
    first = rank - rank % nproc
    want = list(range(first, first + nproc))
    if isinstance(ranks, list) and all(_is_int(r) for r in ranks) and ranks == want:
        return None
    if isinstance(ranks, (range, tuple)) and list(ranks) == want:
        return f"{where}: node_ranks is {ranks!r}: right, but return a list ({want})"
    why = ""
    if isinstance(ranks, (list, tuple, range)) and nnodes > 1 and \
            list(ranks) == list(range(rank % nnodes, nnodes * nproc, nnodes)):
        why = (" (every nnodes-th rank, round-robin: torchrun deals ranks out in blocks, node i "
               "holding RANK - LOCAL_RANK onwards)")
    elif isinstance(ranks, (list, tuple, range)) and list(ranks) == list(range(nproc)) and first:
        why = (" (those are the local ranks 0 to LOCAL_WORLD_SIZE - 1; the global ranks on "
               "node i start at i·LOCAL_WORLD_SIZE, i.e. at RANK - LOCAL_RANK)")
    elif isinstance(ranks, (list, tuple, range)) and len(ranks) != nproc:
        why = (f" ({len(ranks)} ranks; a node runs LOCAL_WORLD_SIZE = {nproc} of them: check "
               f"both ends of the range, the first rank of the next node is {first + nproc})")
    return (f"{where}: node_ranks is {ranks!r}{why}, expected {want}: every global rank on this "
            f"node, ascending, this one included")


def check_placements(got: list, nnodes: int, nproc: int) -> None:
    """Every rank's placement: exactly the three keys; its GPU is cuda:LOCAL_RANK; its node is
    GROUP_RANK (ranks in blocks); node_ranks lists the global ranks sharing that node."""
    keys = {"device", "node", "node_ranks"}
    layout = f"torchrun --nnodes {nnodes} --nproc-per-node {nproc}"
    for rank, p in enumerate(got):
        where = f"{layout}, rank {rank} (LOCAL_RANK {rank % nproc})"
        assert isinstance(p, dict) and set(p) == keys, (
            f"{where}: got {p!r}; expected a dict with exactly the keys {sorted(keys)}")
    for rank, p in enumerate(got):
        where = f"{layout}, rank {rank} (LOCAL_RANK {rank % nproc})"
        first = rank - rank % nproc
        shared_with = [r for r in range(first, first + nproc)
                       if r != rank and got[r]["device"] == p["device"]]
        for problem in (_device_problem(where, p["device"], rank, rank % nproc, nproc,
                                        shared_with),
                        _node_problem(where, p["node"], rank, nnodes, nproc),
                        _ranks_problem(where, p["node_ranks"], rank, nnodes, nproc)):
            assert problem is None, problem
