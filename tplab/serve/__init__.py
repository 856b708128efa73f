"""tplab.serve: task parallelism for serving (lesson 06) — many independent requests over
model replicas, where everything is scheduling.

`workload.py` (the requests and their greedy reference), `engines.py` (what a worker runs for
one request: the real model or a sleeping stand-in), `scheduling.py` (the rules: static or
dynamic, FIFO or shortest-first, a lost worker's request retried), `pool.py` (`serve`: worker
processes fed from a queue by those rules),
`records.py` (per-request times and the Report: throughput, makespan, p50/p95 latency),
`batching.py` (one replica, many requests per step: static vs continuous batching),
`packing.py` (how both prefill: a shared prefix computed once, prompts packed into a step) and
`ray_pool.py` (the same pool as Ray actors, for many machines; imports Ray only when used).
"""
from tplab.serve.batching import (
    NEAR_TIE,
    BatchReport,
    Mismatch,
    compare_outputs,
    continuous_batching,
    decode_step,
    static_batching,
)
from tplab.serve.engines import Engine, ModelEngine, SleepEngine
from tplab.serve.packing import PrefixCache, packed_step, shared_prefix
from tplab.serve.pool import serve
from tplab.serve.prompts import PROMPTS
from tplab.serve.ray_pool import local_ray, ray_temp_dir, serve_ray
from tplab.serve.records import Record, Report
from tplab.serve.scheduling import ORDERS, POLICIES, Scheduler, ServeError, static_shares
from tplab.serve.workload import Request, draw_lengths, make_workload, reference_outputs

__all__ = ["Engine", "ModelEngine", "SleepEngine", "serve", "ServeError", "POLICIES", "ORDERS",
           "static_shares", "Scheduler", "PROMPTS", "Record", "Report", "Request", "make_workload",
           "draw_lengths", "reference_outputs", "static_batching", "continuous_batching",
           "compare_outputs", "decode_step", "BatchReport", "Mismatch", "NEAR_TIE", "serve_ray",
           "local_ray", "ray_temp_dir", "PrefixCache", "packed_step", "shared_prefix"]
