"""SmolLM2-135M through a pipeline: its 30 layers cut into stages, several prompts in flight.

Why several prompts: decoding one prompt is a chain (token t+1 needs token t, which needs
every layer), so with one prompt only one stage works at a time and a pipeline is no faster
than one rank. Each prompt is a micro-batch with its own KV cache, and the stages take the
prompts in turn: while stage 1 runs prompt i, stage 0 runs prompt i + 1. The last stage picks
each token and sends it back to stage 0 (a ring), which runs that prompt's next position.

Ranks: pp stages of tp ranks each, rank = stage·tp + t. A stage is a tensor-parallel group
(`dist.new_group`, made by every rank for every stage, in order); TP rank t of a stage
talks only to TP rank t of its neighbours, which hold the same hidden state.

Messages, each pair in order: a header of three int64 (prompt index, positions, stop flag)
so a stage knows the shape of the activation that follows ([1, positions, hidden], float32)
and when to stop; the ring carries (prompt index, token, done). Every send is an `isend`
(waited for at the end), every receive is blocking, every message has its own tag (a count
per link), tensors are contiguous, and `batch_isend_irecv` is never used (it can hang on gloo).

Where to cut (`llama_stages`): a contiguous split minimising the largest stage
(`tplab.pp.split_layers`) of a per-layer cost. by="params": parameter bytes (memory; the
embedding weighs on the first stage, the tied head's copy on the last). by="reads": bytes of
weights read per decoded token, which is what a memory-bound decode step costs: the
embedding reads one row, the head the whole matrix — so the last stage gets fewer layers.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter

import torch
import torch.distributed as dist

from tplab.models.generate import TokenPicker, generate
from tplab.models.gguf_file import GGUFModelFile
from tplab.models.llama import Config, Llama
from tplab.models.loading import load_llama, load_llama_tp, vocab_start
from tplab.pp.split import split_layers
from tplab.tp.plan import head_plan, tensor_shapes

__all__ = ["llama_layer_costs", "llama_stages", "check_layout", "PipelineRank", "load_stage",
           "pipelined_generate"]

BALANCES = ("params", "reads")
_RING = 1 << 24  # tags of the token ring start here (the forward links count from 0)


def llama_layer_costs(config: Config, by: str = "params") -> list[float]:
    """Per layer: its weights' bytes (float32), the embedding added to layer 0 and the head to
    the last layer; by="reads": what one decoded token reads (one row of the embedding)."""
    if by not in BALANCES:
        raise ValueError(f"by must be one of {BALANCES}, got {by!r}")
    shapes = tensor_shapes(config)
    size = {name: 4 * torch.Size(shape).numel() for name, shape in shapes.items()}
    layer = sum(v for k, v in size.items() if k not in ("embed", "norm"))
    costs = [float(layer)] * config.n_layers
    costs[0] += size["embed"] if by == "params" else 4 * config.hidden
    costs[-1] += size["embed"] + size["norm"]  # the tied head and the final norm
    return costs


def llama_stages(config: Config, pp: int, by: str = "params") -> list[range]:
    """The layers of each of pp stages, contiguous, the largest stage as light as it can be."""
    check_layout(pp, 1, config)
    return split_layers(llama_layer_costs(config, by), pp)


def check_layout(pp: int, tp: int, config: Config, world_size: int | None = None) -> None:
    """A ValueError that says what is wrong with a layout of pp stages x tp ranks, or nothing."""
    if isinstance(pp, bool) or not isinstance(pp, int) or not 1 <= pp <= config.n_layers:
        raise ValueError(f"pipeline degree {pp!r} does not fit {config.n_layers} layers: use "
                         f"1 to {config.n_layers} stages (each stage needs at least one layer)")
    if isinstance(tp, bool) or not isinstance(tp, int):
        raise ValueError(f"tensor-parallel degree must be an integer, got {tp!r}")
    head_plan(config.n_heads, config.n_kv_heads, tp)  # the TP loader's own refusal, if any
    if world_size is not None and world_size != pp * tp:
        raise ValueError(f"pp={pp} x tp={tp} needs {pp * tp} ranks, this run has {world_size}")


@dataclasses.dataclass
class PipelineRank:
    """What this rank holds: stage `stage` of `pp` (its `layers`), TP rank `t` of `tp`."""
    pp: int
    tp: int
    stage: int
    t: int
    layers: range
    model: Llama
    group: object  # this stage's TP group

    @property
    def first(self) -> bool:
        return self.stage == 0

    @property
    def last(self) -> bool:
        return self.stage == self.pp - 1

    def peer(self, stage: int) -> int:
        """The global rank of my counterpart (same TP rank) in `stage`."""
        return stage * self.tp + self.t


def load_stage(pp: int, tp: int = 1, by: str = "params", path=None) -> PipelineRank:
    """On every rank of a pp x tp run: make the stages' TP groups, load this rank's stage.
    `path`: the GGUF file (found if None), or a `GGUFModelFile` already open."""
    f = path if isinstance(path, GGUFModelFile) else GGUFModelFile(path)  # opened once
    config = f.config
    check_layout(pp, tp, config, dist.get_world_size())
    rank = dist.get_rank()
    groups = [dist.new_group(list(range(s * tp, (s + 1) * tp))) for s in range(pp)]
    stage, t = divmod(rank, tp)
    layers = llama_stages(config, pp, by)[stage]
    if tp == 1:
        model = load_llama(f, layers=layers)
    else:
        model = load_llama_tp(groups[stage], f, layers=layers)
    return PipelineRank(pp, tp, stage, t, layers, model, groups[stage])


class _Links:
    """isend / blocking recv to and from peers, each message tagged by its count on its link."""

    def __init__(self):
        self.sent, self.received, self.pending = Counter(), Counter(), []

    def send(self, tensor: torch.Tensor, dst: int, base: int = 0) -> None:
        tag = base + self.sent[(dst, base)]
        self.sent[(dst, base)] += 1
        tensor = tensor.contiguous()
        self.pending = [(w, t) for w, t in self.pending if not w.is_completed()]
        self.pending.append((dist.isend(tensor, dst, tag=tag), tensor))  # keep it alive

    def recv(self, shape, dtype, src: int, base: int = 0) -> torch.Tensor:
        tag = base + self.received[(src, base)]
        self.received[(src, base)] += 1
        buffer = torch.empty(shape, dtype=dtype)
        dist.recv(buffer, src, tag=tag)
        return buffer

    def finish(self) -> None:
        for work, _ in self.pending:
            work.wait()
        self.pending = []


def _header(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64)


def pipelined_generate(prompts_ids: list[list[int]], max_new_tokens, pp: int, tp: int = 1, *,
                       rank: PipelineRank | None = None, stop_at_eos: bool = True,
                       temperature: float = 0.0, seed: int = 0, by: str = "params",
                       on_token=None, path=None) -> dict | None:
    """Generate for every prompt at once through pp stages of tp ranks (call on all pp·tp ranks).

    max_new_tokens: one number, or one per prompt; a prompt also stops at the end-of-turn token
    unless stop_at_eos=False. Each prompt gets generate()'s tokens (same temperature and seed).
    rank: this rank's loaded stage (`load_stage`), to time the load apart; loaded here if None.
    on_token(i, token, done): called on the first stage's ranks as each token comes back
    (done: it was prompt i's last).
    Returns, on the last stage's ranks (None elsewhere): {"tokens": per prompt, "first_token_s"
    and "latency_s": per prompt, seconds from the start to its first and last token,
    "elapsed_s", "tokens_per_s": all new tokens over the elapsed time}.
    """
    n = len(prompts_ids)
    limits = list(max_new_tokens) if hasattr(max_new_tokens, "__len__") else [max_new_tokens] * n
    if not n or len(limits) != n or any(not ids for ids in prompts_ids) or min(limits) < 1:
        raise ValueError("give at least one non-empty prompt and max_new_tokens >= 1 for each")
    me = rank or load_stage(pp, tp, by, path)
    if (me.pp, me.tp) != (pp, tp):
        raise ValueError(f"this rank was loaded for pp={me.pp}, tp={me.tp}, not pp={pp}, tp={tp}")
    dist.barrier()
    start = time.perf_counter()
    if pp == 1:
        return _one_stage(me, prompts_ids, limits, stop_at_eos, temperature, seed, on_token, start)
    links = _Links()
    if me.first:
        _first_stage(me, links, prompts_ids, limits, on_token)
        result = None
    else:
        result = _later_stage(me, links, prompts_ids, limits, stop_at_eos, temperature, seed,
                              start)
    links.finish()
    return result


def _first_stage(me, links, prompts_ids, limits, on_token) -> None:
    """Run each prompt's prefill, then each returned token's next position, in arrival order."""
    model, nxt, last = me.model, me.peer(1), me.peer(me.pp - 1)
    caches = {}

    def run(i, ids):
        if i not in caches:
            caches[i] = model.new_cache(1, len(prompts_ids[i]) + limits[i])
        x = model(torch.tensor([ids]), caches[i])
        links.send(_header(i, x.shape[1], 0), nxt)
        links.send(x, nxt)

    for i, ids in enumerate(prompts_ids):  # every prompt in flight
        run(i, ids)
    finished = 0
    while finished < len(prompts_ids):
        i, token, done = links.recv((3,), torch.int64, last, _RING).tolist()
        if on_token is not None:
            on_token(i, token, bool(done))
        if done:
            finished += 1
            del caches[i]
        else:
            run(i, [token])
    links.send(_header(-1, 0, 1), nxt)  # stop


def _later_stage(me, links, prompts_ids, limits, stop_at_eos, temperature, seed, start):
    """Receive, run, pass on; the last stage picks tokens and sends them round to stage 0."""
    model, prev = me.model, me.peer(me.stage - 1)
    caches, hidden = {}, model.config.hidden
    if me.last:
        pickers = [TokenPicker(model.config.vocab_size, vocab_start(model), temperature, seed,
                               me.group) for _ in prompts_ids]
        tokens, times = [[] for _ in prompts_ids], [[] for _ in prompts_ids]
    while True:
        i, positions, stop = links.recv((3,), torch.int64, prev).tolist()
        if stop:
            if not me.last:
                links.send(_header(i, positions, stop), me.peer(me.stage + 1))
            break
        x = links.recv((1, positions, hidden), torch.float32, prev)
        if i not in caches:
            caches[i] = model.new_cache(1, len(prompts_ids[i]) + limits[i])
        y = model(x, caches[i])
        if not me.last:
            links.send(_header(i, positions, 0), me.peer(me.stage + 1))
            links.send(y, me.peer(me.stage + 1))
            continue
        token = pickers[i](y[0, -1])
        tokens[i].append(token)
        times[i].append(time.perf_counter() - start)
        done = len(tokens[i]) == limits[i] or (stop_at_eos and token == model.config.eos_id)
        links.send(_header(i, token, int(done)), me.peer(0), _RING)
    if me.last:
        return _result(tokens, times)
    return None


def _one_stage(me, prompts_ids, limits, stop_at_eos, temperature, seed, on_token, start):
    """pp = 1: nothing to overlap, so the prompts run one after another (plain `generate`)."""
    tokens, times = [[] for _ in prompts_ids], [[] for _ in prompts_ids]
    for i, (ids, limit) in enumerate(zip(prompts_ids, limits)):
        eos = me.model.config.eos_id
        for token in generate(me.model, ids, limit, temperature, seed, stop_at_eos, me.group):
            tokens[i].append(token)
            times[i].append(time.perf_counter() - start)
            if on_token is not None:
                on_token(i, token, len(tokens[i]) == limit or (stop_at_eos and token == eos))
    return _result(tokens, times)


def _result(tokens, times) -> dict:
    elapsed = max(t[-1] for t in times)
    return {"tokens": tokens, "first_token_s": [t[0] for t in times],
            "latency_s": [t[-1] for t in times], "elapsed_s": elapsed,
            "tokens_per_s": sum(len(t) for t in tokens) / elapsed}
