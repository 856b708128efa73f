"""Pipeline parallelism: a model cut by layers into stages, kept busy with micro-batches.

* `schedules.py` — GPipe, 1F1B and interleaved 1F1B as per-rank action lists
* `executor.py` — `run_step`: one executor for every schedule, with its event timeline
* `timeline.py` — busy, idle and the bubble, measured from those events
* `bubble.py` — the bubble and the activations in flight, in closed form
* `split.py` — where to cut: contiguous stages balanced by bytes or by time

and, imported by name where a lesson needs them (they pull in more):

* `workloads.py` — stages whose compute time is controlled (sleeps), to measure the bubble
* `builtin.py` — `torch.distributed.pipelining` beside tplab: its executed order, loss, time
* `lenet.py` — the article's case 2 done right: LeNet-5 in two stages on real digits
* `llm.py`, `serving.py` — SmolLM2 cut into stages (× TP), several prompts in flight
"""
from tplab.pp.bubble import bubble, inflight_formula
from tplab.pp.executor import Event, Step, run_step
from tplab.pp.schedules import (
    SCHEDULES,
    Action,
    gpipe,
    interleaved_1f1b,
    one_f_one_b,
    peak_inflight,
    schedule,
)
from tplab.pp.split import layer_bytes, split_layers, stage_costs

__all__ = ["Action", "gpipe", "one_f_one_b", "interleaved_1f1b", "schedule", "peak_inflight",
           "SCHEDULES", "bubble", "inflight_formula", "run_step", "Step", "Event",
           "split_layers", "layer_bytes", "stage_costs"]
