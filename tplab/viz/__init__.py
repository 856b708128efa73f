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
    mesh.py             lesson 07: ranks on a dp×pp×tp grid, the groups of one dimension
    grid3d.py           lesson 07: bytes per rank and group in a 3D step, measured vs formula
    zero_sp.py          lesson 07: ZeRO's model state per stage, optimizer state per rank
    cost.py             lesson 07: memory per configuration, the cost model vs measured/published
    grid_checks.py      exercise 07.3: decode layouts' tokens/s against time per token, the choice
    interview.py        lesson 08: the bank's items per topic and kind, time lost per parallelism
"""
from tplab.viz import (
    collectives,
    cost,
    data_parallel,
    decode,
    decode_batch,
    grid3d,
    grid_checks,
    interview,
    mesh,
    pipeline,
    ranks,
    scale,
    serving,
    serving_checks,
    tensor_parallel,
    tp_memory,
    tp_order,
    tp_timeline,
    zero_sp,
)

__all__ = ["collectives", "cost", "data_parallel", "decode", "decode_batch", "grid3d",
           "grid_checks", "interview", "mesh", "pipeline", "ranks", "scale", "serving",
           "serving_checks", "tensor_parallel", "tp_memory", "tp_order", "tp_timeline", "zero_sp"]
