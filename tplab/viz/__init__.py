"""The course's pictures, one module per lesson topic; each plot is one call from a cell.

    ranks.py            lesson 00: the world of ranks, one bar per rank
    collectives.py      lesson 01: chunks on ranks before and after a collective, ring steps
    data_parallel.py    lesson 02: replicas drifting, bucket timelines, step times
    tensor_parallel.py  lesson 03: column/row splits, head plans, the f/g flow
    decode.py           lesson 04: bytes per layer and rank, where decode time goes
    pipeline.py         lesson 05: a step's Gantt chart per rank, the bubble vs its closed form,
                        activations in flight
"""
from tplab.viz import collectives, data_parallel, decode, pipeline, ranks, tensor_parallel

__all__ = ["collectives", "data_parallel", "decode", "pipeline", "ranks", "tensor_parallel"]
