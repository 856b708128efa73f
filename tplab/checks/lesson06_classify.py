"""Checks of exercise 06.3 (solutions/06_task_parallelism.ipynb): interview question 2 of the
source article ("how do model and task parallelism differ?") answered by doing it: (i) classify
eight concrete scenarios as data, model or task parallel; (ii) work out by hand the makespans of
a small job list on three workers (contiguous, round-robin, dynamic FIFO) and the lower bound
no schedule beats, then the same as a function, tried on job lists the learner does not see.

The rule behind (i): is the model's weights split across devices (model)? If not, are the
pieces parts of one step whose results are combined every step, e.g. gradients all-reduced
(data)? If not, the pieces are independent jobs, each run whole by one worker, with nothing
communicated between workers (task). Each scenario is worded so that the rule gives one answer.
The makespans of (ii) come from `tplab.checks.lesson06.reference_schedule`, the rule of
`tplab.serve` replayed in whole units; it is switched off while the learner's function runs.
`check_classify` is all or nothing: it names every wrong scenario and every wrong number (with
the slip it equals) in one message.
"""
from __future__ import annotations

import math
import numbers

from tplab.checks.forbid import forbidden
from tplab.checks.lesson06 import HEAVY, makespan, reference_schedule

__all__ = ["SCENARIOS", "JOBS", "WORKERS", "KEYS", "HELD_OUT", "reference_makespans",
           "scenario_table", "check_classify"]

CLASSES = ("data", "model", "task")
# key: (scenario, answer, a question that points at the rule without giving the answer)
SCENARIOS = {
    "chat_replicas": (
        "serve 10,000 independent chat requests on 8 GPUs, each GPU holding the whole 7B model; "
        "a GPU that is free takes the next request", "task",
        "to answer one request, does a GPU need anything from another GPU?"),
    "layers_70b": (
        "a 70B model whose weights do not fit one GPU: layers 0-39 on GPU 0, layers 40-79 on "
        "GPU 1, the activations passed from GPU 0 to GPU 1", "model",
        "what is split across the GPUs: the inputs, or the weights?"),
    "matmul_columns": (
        "one linear layer's weight matrix split by columns over 4 GPUs; each computes its slice "
        "of the output and the slices are gathered (Megatron-LM's column-parallel linear)",
        "model", "what does each GPU hold: the whole matrix, or part of it?"),
    "grad_average": (
        "training: each step's batch of 256 split into 8 shards, each of 8 GPUs runs the whole "
        "model on its shard, the gradients are averaged by an all-reduce, and every GPU applies "
        "the same update", "data",
        "are the 8 shards independent jobs, or parts of one step combined every step?"),
    "lr_sweep": (
        "a hyper-parameter sweep: 20 training runs of a small model with different learning "
        "rates on 4 GPUs, each run on one GPU from start to end", "task",
        "do two runs ever combine their gradients, or are they separate jobs?"),
    "moe_experts": (
        "a mixture-of-experts layer with 8 experts, one expert's weights per GPU; each token is "
        "sent (all-to-all) to the GPU of the expert its router picks, and its result sent back "
        "(expert parallelism)", "model",
        "what moves between GPUs, and why: does each GPU hold the whole layer?"),
    "ray_files": (
        "a Ray batch job: 300 scanned PDFs, each a Ray task that runs OCR on one file and "
        "writes the text to its own output file, on whichever of 16 CPU workers is free",
        "task", "is anything combined across files, or communicated between workers?"),
    "imagenet_hour": (
        "ResNet-50 on ImageNet on 256 GPUs: every iteration a minibatch of 8,192 images, 32 per "
        "GPU, gradients all-reduced before the shared update (Goyal et al. 2017, "
        "arXiv:1706.02677)", "data",
        "what is split: the model, the minibatch of one iteration, or whole runs?"),
}

JOBS, WORKERS = [7, 2, 9, 4, 2, 5, 6], 3   # the job list worked out by hand
KEYS = ("contiguous", "round-robin", "dynamic", "lower_bound")
# held-out job lists for the learner's makespans(): 2 to 4 workers, a job longer than the
# others share (the longest sets the bound), more workers than jobs, the lesson's heavy tail,
# total/w just above a whole number (13/3: rounded to nearest, 4; up, 5), and 9 jobs on 4 where
# ceil(n/w) blocks (3, 3, 3, 0: 19) differ from numpy's array_split (3, 2, 2, 2: 14)
HELD_OUT = [([3, 18, 2, 4, 1, 5], 2), ([5, 1, 1, 6, 2, 8, 3, 4], 2), ([2, 9, 4], 4),
            ([1, 8, 2, 2, 7, 3, 1, 6], 3), (HEAVY, 2), (HEAVY, 3), ([4, 4, 4, 1, 1, 9, 2], 4),
            ([4, 4, 4, 1], 3), ([5, 3, 4, 8, 6, 5, 6, 3, 5], 4)]

_NOT_YOURS = ("makespans called tplab.checks.lesson06.{}, which computes the answer the check "
              "compares with: work the makespans out yourself")


def reference_makespans(lengths, workers) -> dict:
    """The four numbers of (ii), from lesson 06.1's reference schedule (all jobs at 0, FIFO)."""
    out = {p: makespan(reference_schedule(list(lengths), workers, p, "fifo"))
           for p in ("contiguous", "round-robin", "dynamic")}
    out["lower_bound"] = max(max(lengths), math.ceil(sum(lengths) / workers))
    return out


def scenario_table() -> str:
    """The scenarios as a markdown table, for the notebook."""
    rows = [f"| `{key}` | {text} |" for key, (text, _, _) in SCENARIOS.items()]
    return "| key | scenario |\n|---|---|\n" + "\n".join(rows)


def _classify_problems(classes) -> list[str]:
    if not isinstance(classes, dict):
        return [f"classes is {type(classes).__name__}; make it a dict {{scenario key: 'data', "
                f"'model' or 'task'}}"]
    missing = [k for k in SCENARIOS if k not in classes]
    extra = [k for k in classes if k not in SCENARIOS]
    problems = []
    if missing or extra:
        problems.append(f"classes should have exactly the keys {list(SCENARIOS)}"
                        + (f"; missing {missing}" if missing else "")
                        + (f"; unknown {extra}" if extra else ""))
    for key in (k for k in SCENARIOS if k in classes):
        got = classes[key]
        if not isinstance(got, str) or got.strip().lower() not in CLASSES:
            problems.append(f"classes[{key!r}] is {got!r}; answer 'data', 'model' or 'task'")
        elif got.strip().lower() != SCENARIOS[key][1]:
            problems.append(f"{key}: not {got.strip().lower()!r}. Ask: {SCENARIOS[key][2]}")
    return problems


def _slips(lengths, workers) -> dict:
    """{key: [(wrong value, the slip it comes from)]} for (lengths, workers)."""
    n, total = len(lengths), sum(lengths)
    floor = max(1, n // workers)
    floor_blocks = [lengths[w * floor:(w + 1) * floor] for w in range(workers - 1)]
    floor_blocks.append(lengths[(workers - 1) * floor:])
    small, extra = divmod(n, workers)   # numpy's array_split: the first n mod w blocks one longer
    cuts = [w * small + min(w, extra) for w in range(workers + 1)]
    balanced = max(sum(lengths[a:b]) for a, b in zip(cuts, cuts[1:]))
    sjf = makespan(reference_schedule(list(lengths), workers, "dynamic", "sjf"))
    free = [0] * workers
    for length in sorted(lengths, reverse=True):
        free[free.index(min(free))] += length
    ref = reference_makespans(lengths, workers)
    return {
        "contiguous": [(ref["round-robin"], "round-robin's deal (request i to worker i mod w): "
                        "contiguous gives worker w the w-th block of ceil(n/w) requests"),
                       (max(map(sum, floor_blocks)), "blocks of floor(n/w), the rest to the last "
                        "worker: blocks are ceil(n/w) long, the last one shorter"),
                       (balanced, "blocks as even as possible, the longer ones first (numpy's "
                        "array_split): contiguous blocks are ceil(n/w) long, the last shorter"),
                       (ref["dynamic"], "the dynamic queue's: a static worker keeps its share")],
        "round-robin": [(ref["contiguous"], "the contiguous split's: round-robin deals request "
                         "i to worker i mod w"),
                        (ref["dynamic"], "the dynamic queue's: a static worker keeps its share")],
        "dynamic": [(sjf, "shortest job first: FIFO serves the jobs in the order given"),
                    (max(free), "longest job first: FIFO serves the jobs in the order given"),
                    (ref["round-robin"], "round-robin's: the dynamic queue gives each job to "
                     "the first worker that is free"),
                    (ref["lower_bound"], "the lower bound: a queue served in order can end "
                     "later than the bound")],
        "lower_bound": [(math.ceil(total / workers), "ceil(total/w) alone: a job is not split, "
                         "so no schedule ends before the longest job does"),
                        (total / workers, "total/w: times are whole numbers, round it up"),
                        (total // workers, "total/w rounded down: some worker gets at least "
                         "ceil(total/w)"),
                        (max(max(lengths), round(total / workers)), "total/w rounded to the "
                         "nearest: some worker gets at least ceil(total/w), so round it up"),
                        (max(lengths), "the longest job alone: w workers still have the total "
                         "to share")],
    }


def _number_problems(got, lengths, workers, where) -> list[str]:
    if not isinstance(got, dict) or set(got) != set(KEYS):
        return [f"{where} is {got!r:.120}; it should be a dict with exactly the keys {KEYS}"]
    want, problems = reference_makespans(lengths, workers), []
    for key in KEYS:
        value = got[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            problems.append(f"{where}[{key!r}] is {value!r}; give a number")
            continue
        if value == want[key]:
            continue
        slip = "; or ".join(why for wrong, why in _slips(lengths, workers)[key]
                            if wrong != want[key] and value == wrong)
        problems.append(f"{where}[{key!r}] is {value:g}, not right"
                        + (f": it equals {slip}" if slip else ""))
    return problems


def check_classify(classes, by_hand, makespans, namespace) -> dict:
    """All or nothing: every scenario classified right, `by_hand` equal to the reference for
    JOBS on WORKERS, and `makespans(lengths, workers)` equal to it on JOBS and every HELD_OUT
    list (tplab.checks.lesson06's reference switched off meanwhile). One AssertionError naming
    every problem; else the reference numbers of JOBS."""
    problems = _classify_problems(classes)
    problems += _number_problems(by_hand, JOBS, WORKERS, "by_hand")
    answers = {f: _NOT_YOURS.format(f.__name__) for f in (reference_schedule, makespan)}
    cases = [(JOBS, WORKERS)] + HELD_OUT
    with forbidden(namespace, answers):
        results = [makespans(list(lengths), workers) for lengths, workers in cases]
    for (lengths, workers), got in zip(cases, results):
        where = f"makespans({lengths}, {workers})"
        if got == reference_makespans(JOBS, WORKERS) != reference_makespans(lengths, workers):
            problems.append(f"{where} returns the numbers of JOBS on {WORKERS} workers: "
                            f"compute them from lengths and workers")
            break
        found = _number_problems(got, lengths, workers, where)
        if found:  # the first job list it gets wrong is enough
            problems += found
            break
    assert not problems, ("exercise 06.3 is all or nothing; what is wrong:\n  - "
                          + "\n  - ".join(problems))
    return reference_makespans(JOBS, WORKERS)
