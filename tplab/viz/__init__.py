"""The course's pictures, one module per lesson topic; each plot is one call from a cell.

    ranks.py            lesson 00: the world of ranks, one bar per rank
    collectives.py      lesson 01: chunks on ranks before and after a collective, ring steps
    scale.py            exercise 01.3: one all-reduce's time in several settings, alpha vs bytes
    data_parallel.py    lesson 02: replicas drifting, bucket timelines, step times, accumulation,
                        when backward hides the all-reduce, replicas behind a router
    tensor_parallel.py  lesson 03: column/row splits, head plans, the f/g flow
    tp_timeline.py      lesson 03: a TP step above a DP step; a layer's all-reduce on each link
    tp_memory.py        lesson 03: activation bytes per rank, replicated vs sharded
    tp_order.py         exercise 03.3: row-then-column's bytes against column-then-row's
    decode.py           lesson 04: bytes per layer and rank, where decode time goes
    decode_batch.py     exercise 04.3: a decode step's compute and memory time against the batch
    pipeline.py         lesson 05: a step's Gantt chart per rank, the bubble vs its closed form,
                        activations in flight
    serving.py          lesson 06: requests per worker, latency CDFs, the workload, batch steps
    serving_checks.py   exercises 06: the learner's schedules and batches
"""
from tplab.viz import (
    collectives,
    data_parallel,
    decode,
    decode_batch,
    pipeline,
    ranks,
    scale,
    serving,
    serving_checks,
    tensor_parallel,
    tp_memory,
    tp_order,
    tp_timeline,
)

__all__ = ["collectives", "data_parallel", "decode", "decode_batch", "pipeline", "ranks", "scale",
           "serving", "serving_checks", "tensor_parallel", "tp_memory", "tp_order",
           "tp_timeline"]
