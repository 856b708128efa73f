"""The ranks' side of the harness that runs a spot-the-bug fix (tplab.interview.bugs) on real
ranks: their inputs, the submission's run, the one-process reference (`verdict.py` launches
the ranks and judges what they return).

Why real ranks: a distributed bug (gradients never combined, a deadlock) is only proven fixed
by running the fix where the bug lives. `run_submission` executes the submission *inside the
ranks* (never in the grader's process), under `tplab.launch`'s deadline: a fix that still
deadlocks ends as a `WorkerError` after `timeout` seconds and is rejected, not left hanging.

Why unpredictable inputs: a fix that rebuilds another rank's data (the same seed, a helper of
this module) passes without communicating, and one that types in a shape (the example's batch
of 8, its activation width 6) passes only on that shape. So every launch draws its inputs
afresh, the model-parallel stages' widths too (`mp_widths`: never the example's 4 and 6, the
activation's width never the batch size). What all ranks share (the data-parallel model, the
model-parallel batch and widths) comes from a nonce the parent draws with `os.urandom` and
passes to the ranks; what one rank owns (its data-parallel rows, its model-parallel layer, the
tensor it passes right) it draws itself from `os.urandom` after the launch, so no other
process ever holds it. Each rank returns a copy of its inputs, and the parent computes the
one-process reference from them.

Why watch the ranks: a right result can come from the wrong computation. Every rank records
the rows each of its model's layers ran on (data parallelism computes on its own shard only; a
hook on the layers, not the model, also sees `model.forward(x)` and `for layer in model`), the
gradients autograd computed for its weights (its own rows' loss, not the batch's), and, through
`tplab.comm.hooks`, every torch.distributed call it made with its bytes and whether it carried
the rank's rows (the model-parallel stages exchange one activation and its gradient; the ring
shift sends one tensor and receives one, point to point); a request an isend or irecv returned
that is never waited on fails.
"""
from __future__ import annotations

import contextlib
import inspect
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tplab.checks.forbid import guard

__all__ = ["TASKS", "WORLDS", "P2P", "MP_IN", "MP_HIDDEN", "run_submission", "labels",
           "reference_forward", "shard_sizes", "mp_widths", "activation_width"]

TASKS = {"train_step": 2, "data_parallel_gradients": 2, "model_parallel_gradients": 2,
         "pass_right": 2}   # task -> the world size its inputs are built for
WORLDS = {"model_parallel_gradients": (2,)}   # the worlds a task allows (others: any >= 2)
ROWS = 8                     # the global batch's rows unless the caller draws another size
P2P = ("send", "isend", "recv", "irecv")
_SENDS, _RECVS = ("send", "isend"), ("recv", "irecv")


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


MP_IN = (3, 5)                  # the first stage's input width: never the example's 4
MP_HIDDEN = (7, 9, 10, 11, 13)  # the activation's width: never the example's 6, nor MP_IN


def mp_widths(gen: torch.Generator, rows: int) -> tuple[int, int]:
    """(input width, activation width) of the model-parallel stages, drawn with `gen`; the
    activation's width is never `rows`, so (rows, rows) cannot stand for its shape."""
    hidden = [h for h in MP_HIDDEN if h != rows]
    pick = torch.randint(len(MP_IN) * len(hidden), (1,), generator=gen).item()
    return MP_IN[pick % len(MP_IN)], hidden[pick // len(MP_IN)]


def _stages(widths: tuple[int, int] = (4, 6)):
    d, h = widths
    return nn.Linear(d, h), nn.Linear(h, 1)


def _kept_stages(kept: list[dict]):
    """Both stages with the weights the ranks held (their widths read from those weights)."""
    first, second = _stages(tuple(kept[0]["state"]["weight"].shape[::-1]))
    first.load_state_dict(kept[0]["state"])
    second.load_state_dict(kept[1]["state"])
    return first, second


def _generator(seed: int | None = None) -> torch.Generator:
    """Seeded by `seed`, or by this process's own os.urandom (no other process can know it)."""
    if seed is None:
        seed = int.from_bytes(os.urandom(8), "little")
    return torch.Generator().manual_seed(seed)


def _filled(module: nn.Module, gen: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 2 - 1)
    return module


def shard_sizes(rows: int, world: int) -> list[int]:
    """The rows each rank holds of a `rows`-row batch (`X.chunk(world)`)."""
    sizes = [len(part) for part in torch.empty(rows).chunk(world)]
    if len(sizes) != world:
        raise ValueError(f"{rows} rows cannot be chunked over {world} ranks")
    return sizes


def _inputs(task: str, rank: int, world: int, seed: int, rows: int) -> tuple[tuple, dict]:
    """(the rank's arguments, a copy of what they hold for the parent's reference)."""
    shared, own = _generator(seed), _generator()
    if task == "pass_right":
        t = torch.randn(4, generator=own)
        return (t,), {"t": t.clone()}
    if task == "model_parallel_gradients":
        widths = mp_widths(shared, rows)
        x = torch.randn(rows, widths[0], generator=shared)
        y = torch.randn(rows, 1, generator=shared)
        stage = _filled(_stages(widths)[rank], own)
        return (stage, x, y), {"x": x.clone(), "y": y.clone(), "state": _copy(stage)}
    model = _filled(_mlp(), shared)
    n = shard_sizes(rows, world)[rank]
    x, y = torch.randn(n, 4, generator=own), torch.randn(n, 1, generator=own)
    kept = {"x": x.clone(), "y": y.clone(), "state": _copy(model)}
    return ((model, x, y, 0.1) if task == "train_step" else (model, x, y)), kept


def _copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _reference(task: str, rank: int, kept: list[dict]) -> list:
    """Rank `rank`'s right result, in one process, from every rank's inputs (`kept`)."""
    if task == "pass_right":
        return [kept[(rank - 1) % len(kept)]["t"]]
    if task == "model_parallel_gradients":
        first, second = _kept_stages(kept)
        F.mse_loss(second(first(kept[0]["x"])), kept[0]["y"]).backward()
        return [p.grad for p in (first, second)[rank].parameters()]
    model = _mlp()
    model.load_state_dict(kept[0]["state"])
    x, y = torch.cat([k["x"] for k in kept]), torch.cat([k["y"] for k in kept])
    F.mse_loss(model(x), y).backward()
    if task == "data_parallel_gradients":
        return [p.grad for p in model.parameters()]
    with torch.no_grad():
        return [p - 0.1 * p.grad for p in model.parameters()]


def activation_width(kept: list[dict]) -> int:
    """The model-parallel activation's width in this launch (the first stage's outputs)."""
    return kept[0]["state"]["weight"].shape[0]


def reference_forward(task: str, rank: int, kept: list[dict]):
    """The stage's output in one process (model-parallel task): first(x), second(first(x))."""
    if task != "model_parallel_gradients":
        return None
    first, second = _kept_stages(kept)
    with torch.no_grad():
        hidden = first(kept[0]["x"])
        return (hidden, second(hidden))[rank]


def labels(task: str, rank: int) -> list[str]:
    """What each tensor of `task`'s result on `rank` is, for messages."""
    if task == "pass_right":
        return ["the tensor received"]
    if task == "model_parallel_gradients":
        layer = ("first", "second")[rank]
        return [f"the {layer} layer's {n} gradient" for n, _ in _stages()[rank].named_parameters()]
    what = "updated parameter" if task == "train_step" else "gradient of"
    return [f"{what} {n}" for n, _ in _mlp().named_parameters()]


def _pick(namespace: dict, task: str):
    for name in (task, f"fixed_{task}", f"buggy_{task}"):
        if callable(namespace.get(name)):
            return namespace[name]
    defined = [v for v in namespace.values()
               if inspect.isfunction(v) and v.__module__ == "submission"]
    if len(defined) == 1:
        return defined[0]
    raise NameError(f"define a function named {task}() (or keep the name you were given)")


@contextlib.contextmanager
def _requests_kept():
    """Keep every isend/irecv request alive while the block runs: a request dropped unwaited
    may cancel its transfer, and the peer would wait for it until the deadline instead of the
    check saying the request was never waited on."""
    originals, kept = {name: getattr(dist, name) for name in ("isend", "irecv")}, []

    def keeping(original):
        def call(*args, **kwargs):
            kept.append(original(*args, **kwargs))
            return kept[-1]
        return call

    for name, original in originals.items():
        setattr(dist, name, keeping(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(dist, name, original)


def run_submission(task: str, text, seed: int, rows: int = ROWS) -> dict:
    """On one rank: call the submission (source text, executed here, or a function) on this
    rank's inputs. Returns {"returned": its tensors, "inputs": a copy of its inputs, "forward":
    the stage's last output (model-parallel task), "rows_seen": per forward of the model, the
    rows it ran on and whether they were this rank's own, "traffic": [{op, nbytes}]}: a
    request isend or irecv returned that was never waited on raises."""
    from tplab.comm import hooks
    if callable(text):
        fn = text
    else:
        namespace = {"torch": torch, "dist": dist, "nn": nn, "F": F, "guard": guard,
                     "__name__": "submission"}
        exec(compile(text, "<submission>", "exec"), namespace)
        fn = _pick(namespace, task)
    inputs, kept = _inputs(task, dist.get_rank(), dist.get_world_size(), seed, rows)
    seen, rows_seen, calls, holding, computed = [], [], [], [], {}
    own = ()
    if task == "model_parallel_gradients":
        inputs[0].register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    elif task != "pass_right":
        own = _own_pieces(kept["x"], kept["y"])
        _watch_rows(inputs[0], kept["x"], rows_seen)
        _watch_gradients(inputs[0], computed)

    def started(kind, call):
        if kind == "start":
            calls.append(call)
            holding.append(bool(own) and _holds(call.arguments, own))

    with hooks.subscribe(started):
        with _requests_kept():
            out = fn(*inputs)
    for c in calls:     # a send never waited may never leave: its peer would wait forever
        if c.op in ("isend", "irecv") and c.end is None:
            raise RuntimeError(f"rank {dist.get_rank()} finished, but its {c.op} was never "
                               f"completed: wait() on the request {c.op} returned")
    if isinstance(out, torch.Tensor):
        out = [out]
    elif not isinstance(out, (list, tuple)):
        raise TypeError(f"{getattr(fn, '__name__', task)} returned {type(out).__name__}; "
                        f"return a list of tensors")
    out = [t.detach().clone() if isinstance(t, torch.Tensor) else t for t in out]
    names = [n for n, _ in inputs[0].named_parameters()] if own else []
    return {"returned": out, "inputs": kept, "forward": seen[-1].clone() if seen else None,
            "rows_seen": rows_seen, "computed": [computed.get(n) for n in names],
            "traffic": [{"op": c.op, "nbytes": c.nbytes, "rows": rows}
                        for c, rows in zip(calls, holding)]}


def _watch_rows(model: nn.Module, own: torch.Tensor, rows_seen: list) -> None:
    """Note (rows, whether they are this rank's own) for each forward of each leaf layer: the
    first must run on `own` itself, the others on as many rows; the hook is on the layers, so a
    call of model.forward or of the layers one by one is seen too."""
    leaves = [m for m in model.modules() if not list(m.children())]

    def watcher(first: bool):
        def hook(module, args, kwargs):
            rows = args[0] if args else next(iter(kwargs.values()), None)
            if not isinstance(rows, torch.Tensor) or rows.dim() == 0:
                rows_seen.append((0, False))
            elif first:
                rows_seen.append((len(rows), rows.shape == own.shape
                                  and torch.equal(rows.detach(), own)))
            else:
                rows_seen.append((len(rows), len(rows) == len(own)))
        return hook

    for k, leaf in enumerate(leaves):
        leaf.register_forward_pre_hook(watcher(k == 0), with_kwargs=True)


def _watch_gradients(model: nn.Module, computed: dict) -> None:
    """computed[name]: the sum of the gradients autograd computed for each weight (by
    .backward() or torch.autograd.grad), as computed, before any communication changes them."""
    def hook(name):
        def add(grad):
            grad = grad.detach().clone()
            computed[name] = computed[name] + grad if name in computed else grad
        return add

    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(hook(name))


def _own_pieces(x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """What of a rank's data a message must not hold: each row and column of x, and y."""
    return [*x, *x.T, y.reshape(-1)]


def _holds(value, own: list[torch.Tensor], depth: int = 0) -> bool:
    """Whether `value` (a call's arguments: tensors, lists, dicts, objects to pickle) holds one
    of `own`'s pieces as consecutive values (in any float dtype)."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or value.numel() > 1_000_000:
            return False
        flat = value.detach().reshape(-1).float()
        return any(flat.numel() >= len(piece) and bool(
            (flat.unfold(0, len(piece), 1) == piece.float()).all(1).any()) for piece in own)
    if depth > 4:
        return False
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)) and value and all(type(v) is float for v in value):
        return _holds(torch.tensor(value), own)     # x.tolist()'s rows travel too
    if isinstance(value, (list, tuple, set)):
        return any(_holds(v, own, depth + 1) for v in value)
    return False
