"""The same replica pool as `tplab.serve.serve`, on Ray: the engine people use when one machine
is not enough.

Why Ray: `serve` starts its workers with multiprocessing, so every replica lives on this
machine. Ray places *actors* (a Python object living in its own worker process, whose method
calls run one at a time, in order) on any machine of a cluster, moves the requests and results
for you, and tells you when an actor's process died. One actor here is one replica: it
`load()`s its engine once and then runs requests. The parent keeps the queue and, as in
`serve`, hands a request to a replica only when that replica is free. The rules are
`serve`'s own code (`_RayPool` is a `tplab.serve.scheduling.Scheduler`, as `serve`'s pool
is: its queues, `order`, arrivals, retries and records); only starting, waiting and stopping go
through Ray (`ray.wait` returns the first replica call to finish). So "contiguous", "round-robin",
"dynamic", "fifo" and "sjf" mean exactly what they mean for `serve`.

Times in the records are taken in the parent (`time.perf_counter`, seconds from t0, which is
when every replica has loaded): `started` is when the request was handed to a replica,
`finished` when its tokens were back. (`serve`'s workers time themselves; here the replicas
may be on other machines, whose clocks are not this one's.) Ray's own overhead (pickling the
request, a remote call, the reply) is therefore inside every request's time: comparing
`serve_ray` with `serve` on the same workload measures it.

Failures, as in `serve` (`ServeError`, with `worker`, `request`, `traceback`, `stuck`,
`unserved`):

* a replica whose process dies mid-request (killed, out of memory, a crash): its request is
  handed to another replica (`attempts` counts the tries), nothing is lost and nothing is
  served twice; a dead static replica's share goes to the survivors; if every replica dies,
  the error says which died on which request and which requests have no result;
* an exception in `engine.load` or `engine.run`: the worker index, the request id and the
  replica's traceback;
* two deadlines, as in `serve`: `load_timeout` seconds (default `timeout`) for the replicas to
  load, then `timeout` to serve; past either, the error names every replica still busy and its
  request (Ray gives no Python stack from outside);
* whatever happens, every actor this call created is killed, and its process (on this
  machine) has exited, before `serve_ray` returns or raises.

Locally, `serve_ray` starts Ray for the call and shuts it down after (`local_ray`): Ray then
runs a few helper processes (its GCS, a raylet, log and metrics agents), its temp files and
logs go under `<temp dir>/tplab-ray` (a short path: Ray's sockets live there), and nothing is
left running afterwards. If Ray is already initialised in this process (you connected to a
cluster, or opened `local_ray` yourself to serve several times), `serve_ray` uses it and leaves
it running: whoever started it shuts it down.

On a cluster of machines (the same Python environment, with tplab and the model installed, on
every machine):

    # on the head machine
    ray start --head --port=6379 --num-cpus=8
    # on every other machine
    ray start --address=<head machine's IP>:6379 --num-cpus=8
    # then, in a script or notebook on any of them
    import ray
    ray.init(address="auto")
    report = serve_ray(requests, ModelEngine(threads=1), workers=16)   # 16 replicas, anywhere
    ray.shutdown()          # disconnects this driver; the cluster keeps running
    # when done, on every machine
    ray stop

Each replica asks Ray for one CPU (and `num_gpus` GPUs, 0 by default), so Ray spreads
`workers` replicas over the CPUs (and GPUs) the machines offered; with fewer in the cluster
than the replicas ask for, the replicas that find none never load and the deadline names them.
(Ray docs: https://docs.ray.io/en/latest/cluster/cli.html and
https://docs.ray.io/en/latest/ray-core/actors.html.)
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence

from tplab.ranks import child
from tplab.serve.records import Report
from tplab.serve.scheduling import Scheduler, ServeError, deadline_missed, validate

__all__ = ["serve_ray", "local_ray", "ray_temp_dir"]


def ray_temp_dir() -> str:
    """Where a local Ray keeps its sockets, logs and spill files: `<temp dir>/tplab-ray`, or
    $TPLAB_RAY_TMP (the tests give each of their parallel workers its own, so two local Rays
    never share a session directory). Short on purpose: Ray's Unix sockets live there, and a
    socket path longer than 107 bytes fails."""
    return os.environ.get("TPLAB_RAY_TMP") or os.path.join(tempfile.gettempdir(), "tplab-ray")


@contextlib.contextmanager
def local_ray(workers: int, *, temp_dir: str | None = None,
              keep_logs: bool = False) -> Iterator[dict]:
    """Start Ray on this machine with `workers` CPUs, quietly; always shut it down after.

    No dashboard, Ray's own log lines at ERROR only, the workers' output not copied here (a
    replica's errors come back as exceptions), a small object store (the requests and tokens
    are tiny). Yields Ray's address info (its "session_dir" holds the logs). On exit Ray is
    shut down, its processes are gone, and its session folder is removed unless `keep_logs`
    (or the block raised: then the logs are kept, for reading)."""
    import ray

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if ray.is_initialized():
        raise RuntimeError("Ray is already initialised in this process; use it as it is "
                           "(serve_ray does) or call ray.shutdown() first")
    # Ray's own start-up notices (e.g. token authentication being on) are warnings, not errors
    logging.getLogger("ray").setLevel(logging.ERROR)
    temp_dir = temp_dir or ray_temp_dir()
    try:
        info = ray.init(num_cpus=workers, include_dashboard=False, _temp_dir=temp_dir,
                        logging_level=logging.ERROR, log_to_driver=False,
                        object_store_memory=100 * 2**20)
    except Exception as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()  # whatever of it did start
        raise RuntimeError(
            f"Ray did not start on this machine: {exc} Its helper processes (GCS, raylet, "
            f"agents) must all be up within Ray's own start-up limit (30 s); on a heavily "
            f"loaded machine they may not be: try again when it is quieter. Ray's logs: "
            f"{temp_dir}/session_latest/logs") from exc
    address_info = dict(info.address_info)
    failed = False
    try:
        yield address_info
    except BaseException:
        failed = True
        raise
    finally:
        ray.shutdown()
        session = address_info.get("session_dir")
        if session and not keep_logs and not failed:
            shutil.rmtree(session, ignore_errors=True)


class _Replica:
    """One replica: a Ray actor holding one engine (loaded by `ready`, in the actor's process)."""

    def __init__(self, engine_bytes: bytes):
        self.engine = pickle.loads(engine_bytes)

    def where(self) -> tuple[str, int]:
        """(host, process id): asked first, so the parent can wait for the process's end."""
        return socket.gethostname(), os.getpid()

    def ready(self) -> None:
        self.engine.load()

    def run(self, request) -> list[int]:
        return list(self.engine.run(request))


def serve_ray(requests: Sequence, engine, workers: int = 2, policy: str = "dynamic",
              order: str = "fifo", timeout: float = 120.0,
              arrivals: Sequence[float] | None = None,
              load_timeout: float | None = None, num_gpus: float = 0) -> Report:
    """Serve `requests` on `workers` Ray actors, each one replica of `engine`; a `Report`.

    Same arguments, rules, records and `ServeError`s as `tplab.serve.serve` (see the module
    docstring for the policies, the failures and the deadline). Each actor asks Ray for one
    CPU and `num_gpus` GPUs (0: none; 1: Ray places it where a GPU is free and sets its
    CUDA_VISIBLE_DEVICES; a fraction shares one); the engine itself chooses its device. Ray is
    started for the call and shut down after it, unless this process already has Ray
    initialised (a cluster: then it is used and left running)."""
    requests = list(requests)
    validate(requests, engine, workers, policy, order, timeout, arrivals, load_timeout)
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float)) or not (
            0 <= num_gpus < math.inf):
        raise ValueError(f"num_gpus must be a number >= 0 (GPUs per replica: 0, a fraction, "
                         f"1, ...), got {num_gpus!r}")
    import ray

    pool = _RayPool(requests, engine, workers, policy, order, float(timeout), arrivals)
    pool.num_gpus = float(num_gpus)
    pool.load_timeout = float(load_timeout or timeout)
    ray_here = contextlib.nullcontext() if ray.is_initialized() else local_ray(workers)
    with ray_here:
        return pool.run_on(ray)


class _RayPool(Scheduler):
    """`serve`'s rules (a `Scheduler`: queues, `order`, arrivals, the hand-over of a dead
    worker's requests, the records) with Ray actors for its worker processes: starting,
    waiting and stopping are Ray's."""

    def __init__(self, requests, engine, workers, policy, order, timeout, arrivals):
        super().__init__(requests, workers, policy, order, arrivals)
        self.engine, self.timeout, self.num_gpus = engine, timeout, 0.0

    def run_on(self, ray) -> Report:
        self.ray, self.in_flight = ray, {}  # Ray reference -> (worker, handed out at)
        self.deadline = time.monotonic() + self.load_timeout  # loading, as in serve
        # by value (cloudpickle), as tplab.launch sends a job: an engine class defined in a
        # notebook or a test module need not be importable in Ray's worker processes
        blob = child.dumps_by_value(self.engine)
        actor_class = ray.remote(num_cpus=1, num_gpus=self.num_gpus, max_restarts=0,
                                 max_task_retries=0)(_Replica)
        self.actors = [actor_class.remote(blob) for _ in range(self.n)]
        self.where = [actor.where.remote() for actor in self.actors]
        try:
            self._wait_loaded()
            self.deadline = time.monotonic() + self.timeout
            self._serve()
        finally:
            _kill(ray, self.actors, self.where)
        return self.report()

    def _wait_loaded(self):
        ray = self.ray
        pending = {actor.ready.remote(): w for w, actor in enumerate(self.actors)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=self._left())
            if not done:
                self._timed_out({w: None for w in pending.values()})
            w = pending.pop(done[0])
            try:
                ray.get(done[0])
            except ray.exceptions.RayError as exc:
                self.raise_error(w, None, _plain(exc))
        self.t0 = time.perf_counter()

    def _left(self, cap: float = math.inf) -> float:
        return max(0.0, min(cap, self.deadline - time.monotonic()))

    def _serve(self):
        ray = self.ray
        while not self.finished():
            now = time.perf_counter() - self.t0
            self.dispatch(now)
            wait = self._left(self.next_arrival(now))
            if not self.in_flight:  # every idle worker waits for a request to arrive
                time.sleep(wait)
                done = []
            else:
                done, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=wait)
            if done:
                w, started = self.in_flight.pop(done[0])
                try:
                    tokens = [int(t) for t in ray.get(done[0])]
                except ray.exceptions.RayActorError as exc:  # the replica's process is gone
                    self.lose(w, f"worker {w} died: {_plain(exc).splitlines()[0]}")
                    continue
                except ray.exceptions.RayError as exc:
                    self.raise_error(w, self.requests[self.busy[w]].id, _plain(exc))
                self.done(w, self.requests[self.busy[w]].id, started - self.t0,
                          time.perf_counter() - self.t0, tokens)
            elif time.monotonic() >= self.deadline:
                self._timed_out(dict(self.busy))

    def hand_out(self, w, request):
        """Start `request` on replica w: one remote call, answered when it is done."""
        self.in_flight[self.actors[w].run.remote(request)] = (w, time.perf_counter())

    def _timed_out(self, stuck: dict):
        """Raise at the deadline, naming each busy worker and its request (a Ray actor gives
        no Python stack from outside)."""
        pairs = [(w, None if p is None else self.requests[p].id) for w, p in sorted(stuck.items())]
        parts = [f"worker {w} is " + ("still loading its replica" if rid is None
                                      else f"still running request {rid}") for w, rid in pairs]
        unserved = self.unserved()
        have = self.ray.cluster_resources()
        parts = parts or [f"no worker busy; requests {unserved} were still waiting"]
        gpus = (f" and {have.get('GPU', 0):g} GPUs for {self.n} workers of one CPU and "
                f"{self.num_gpus:g} GPU each" if self.num_gpus else
                f" for {self.n} workers of one CPU each")
        raise ServeError(deadline_missed(self.timeout, self.load_timeout, pairs)
                         + "; ".join(parts) + f" (Ray has {have.get('CPU', 0):g} CPUs{gpus})",
                         stuck=pairs,
                         unserved=unserved, worker=pairs[0][0] if pairs else None,
                         request=pairs[0][1] if pairs else None)


def _plain(exc) -> str:
    """Ray's error text (the replica's traceback is in it) without its terminal colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()


def _kill(ray, actors, where) -> None:
    """Kill every actor; wait (10 s at most) until the processes of those on this machine
    have exited, so that none is left when `serve_ray` returns or raises."""
    import psutil

    for actor in actors:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)
    known, _ = ray.wait(where, num_returns=len(where), timeout=0)
    here, procs = socket.gethostname(), []
    for ref in known:
        with contextlib.suppress(Exception):
            host, pid = ray.get(ref, timeout=0)
            if host == here:
                with contextlib.suppress(psutil.NoSuchProcess):
                    procs.append(psutil.Process(pid))
    _, alive = psutil.wait_procs(procs, timeout=10.0)
    if alive:
        raise RuntimeError(f"serve_ray: worker processes {[p.pid for p in alive]} were still "
                           f"running 10 s after being killed")
