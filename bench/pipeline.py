"""Pipeline parallelism: tplab vs torch.distributed.pipelining, the bubble, SmolLM2 served.

tplab's executor and torch's schedules side by side on the same ranks, the bubble measured
against its closed form, and SmolLM2 served through a pipeline.

    python bench/pipeline.py            # ~6 min on 2 cores; writes bench/results/pipeline.json
    python bench/pipeline.py --quick    # fewer steps, no file unless --out

Prints one JSON object per line:
  {"impl", "model", "schedule", "p", "m", "v", "step_ms", "bubble_measured", "bubble_formula",
   "bubble_measured_ideal", "bubble_formula_ideal", "peak_inflight"}
impl     "tplab" (tplab.pp.run_step) or "torch" (PipelineStage + ScheduleGPipe/Schedule1F1B)
model    "timed": equal stages whose forward takes t_f and backward t_b (a sleep: four ranks on
                  two cores are not limited by the cores), a [4, 256] activation between them;
                  --stage-ms, default 40 80: each hop between ranks costs ~1 ms here (gloo's
                  wake-ups on a shared 2-core machine), which at 20/40 ms kept interleaved 1F1B
                  (twice the hops, chunks half as long) 0.06-0.08 above its formula;
         "mlp":   a real 8-block Linear(512)+tanh model cut into p equal stages, 64 rows
step_ms  median over the timed steps of the slowest rank's time from the step's barrier to the
         end of its step (both implementations timed the same way)
bubble_measured        1 − busy/(p × step), busy = time inside F and B on each rank, from the run's
                       events: the share of the step (GPipe's convention), beside
bubble_formula         (p−1)/(v·m+p−1); and the same over the ideal time (Narayanan et al.):
bubble_measured_ideal  p × step/busy − 1, beside bubble_formula_ideal (p−1)/(v·m)
peak_inflight          rank 0's most micro-batches holding activations at once (tplab: measured
                       by the executor; torch: counted from the F/B order it executed)
and, for serving: {"impl": "tplab-serving", "pp", "tp", "threads", "by", "stages", "prompts",
"tokens", "tokens_per_s", "latency_p50_s", "latency_max_s"} (tplab.pp.serving.serving_benchmark):
PP 1 on 1 and 2 threads, PP 2 (1 thread per rank) cut by bytes read per token and by parameters.

The machine's 1-minute load average at the start and end goes into the file: on a shared
machine, other processes delay the ranks' wake-ups and every delay shows up as idle time.

Method: one launch per (model, schedule, p, m), tplab and torch on the same ranks and the same
weights, alternating step by step so noise hits both; one warm-up step each (torch infers shapes
on its first). torch runs where it can: its 1F1B needs m >= p, it has no interleaved schedule
for one stage per rank. Interleaved 1F1B (tplab only) uses v = 2 chunks of half the time each.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

import tplab
from tplab.pp import bubble, peak_inflight, run_step, schedule
from tplab.pp.builtin import TorchPipeline
from tplab.pp.timeline import bubble_measured
from tplab.pp.workloads import DIM, T_B, T_F, TimedStage, bubble_cases, cut, mlp
from tplab.timing import median

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
MLP_BLOCKS, MLP_DIM, MLP_ROWS, TIMED_ROWS = 8, 512, 64, 4


def torch_runs(name: str, p: int, m: int, v: int) -> bool:
    return v == 1 and name in ("gpipe", "1f1b") and (name != "1f1b" or m >= p)


def side_by_side(model: str, name: str, m: int, v: int, steps: int, t_f: float = T_F,
                 t_b: float = T_B) -> dict:
    """On each rank: `steps` timed steps (after one warm-up) of tplab and, where it runs, torch,
    alternating. Returns per impl {"step_s", "events", "peak"} for this rank."""
    p, rank = dist.get_world_size(), dist.get_rank()
    if model == "timed":
        chunks = [TimedStage(DIM, t_f / v, t_b / v) for _ in range(v)]
        rows, width = TIMED_ROWS, DIM
    else:
        chunks = [cut(mlp(MLP_BLOCKS, MLP_DIM), p)[rank]]
        rows, width = MLP_ROWS, MLP_DIM
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(rows * m, width, generator=g), torch.randn(rows * m, width, generator=g)
    first, last = rank == 0, rank == p - 1
    actions = schedule(name, p, m, rank, v)
    out = {"tplab": {"step_s": [], "events": [], "peak": 0}}
    pipe = None
    if torch_runs(name, p, m, v):
        pipe = TorchPipeline(copy.deepcopy(chunks[0]), name, m, F.mse_loss)
        out["torch"] = {"step_s": [], "events": [], "peak": 0}
    for i in range(steps + 1):
        for c in chunks:
            c.zero_grad()
        step = run_step(chunks, actions, list(x.chunk(m)) if first else None,
                        list(y.chunk(m)) if last else None, F.mse_loss, recv_shape=(rows, width))
        took = time.perf_counter() - step.t0
        if i:
            out["tplab"]["step_s"].append(took)
            out["tplab"]["events"].append(step.events)
        out["tplab"]["peak"] = step.peak_inflight
        if pipe is not None:
            pipe.stage.submod.zero_grad()
            pipe.step(x, y)
            took = time.perf_counter() - pipe.t0
            if i:
                out["torch"]["step_s"].append(took)
                out["torch"]["events"].append(pipe.events)
            out["torch"]["peak"] = peak_inflight(pipe.order())
    return out


def rows_of(model: str, name: str, p: int, m: int, v: int, per_rank: list[dict]) -> list[dict]:
    rows = []
    for impl in per_rank[0]:
        steps = len(per_rank[0][impl]["step_s"])
        runs = [[r[impl]["events"][i] for r in per_rank] for i in range(steps)]
        row = {"impl": impl, "model": model, "schedule": name, "p": p, "m": m, "v": v,
               "step_ms": round(1e3 * median([max(r[impl]["step_s"][i] for r in per_rank)
                                              for i in range(steps)]), 2)}
        for conv, suffix in (("total", ""), ("ideal", "_ideal")):
            row[f"bubble_measured{suffix}"] = round(
                median([bubble_measured(ev, conv) for ev in runs]), 4)
            row[f"bubble_formula{suffix}"] = round(bubble(p, m, v, conv), 4)
        row["peak_inflight"] = per_rank[0][impl]["peak"]
        rows.append(row)
    return rows


def cases() -> list[tuple[str, str, int, int, int]]:
    timed = [("timed", *c) for c in bubble_cases()]
    mlp_cases = [("mlp", name, p, m, 1) for p in (2, 4) for m in (4, 8)
                 for name in ("gpipe", "1f1b")]
    return timed + mlp_cases


def serving(quick: bool) -> list[dict]:
    try:
        from tplab.pp.serving import serving_benchmark
    except ImportError as error:
        print(json.dumps({"impl": "tplab-serving", "skipped": f"not importable: {error}"}))
        return []
    rows = []
    n_prompts, max_new = (4, 8) if quick else (4, 24)
    # PP 1 on one thread and on both cores; PP 2 on both cores, cut by weight bytes read per
    # token (balanced time: the last stage also reads the LM head) and by parameter bytes
    for pp, threads, by in ((1, 1, "reads"), (1, 2, "reads"), (2, 1, "reads"), (2, 1, "params")):
        got = serving_benchmark(pp, n_prompts, max_new, threads, by=by,
                                repeats=2 if quick else 3)
        rows.append({"impl": "tplab-serving", **got})
    return rows


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU {model}, torch {torch.__version__}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 timed steps instead of 7 (mlp: 10 instead of 30)")
    parser.add_argument("--no-serving", action="store_true", help="skip the SmolLM2 part")
    parser.add_argument("--stage-ms", type=float, nargs=2, default=(40.0, 80.0),
                        metavar=("T_F", "T_B"), help="timed stages' forward and backward ms")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the results (default: {RESULTS} unless --quick)")
    args = parser.parse_args(argv)
    steps = {"timed": 3, "mlp": 10} if args.quick else {"timed": 7, "mlp": 30}
    start, load = datetime.now(timezone.utc), os.getloadavg()[0]
    t_f, t_b = (ms / 1e3 for ms in args.stage_ms)
    results = []
    for model, name, p, m, v in cases():
        per_rank = tplab.launch(side_by_side, p, model, name, m, v, steps[model], t_f, t_b,
                                backend="gloo", timeout=300)
        for row in rows_of(model, name, p, m, v, per_rank):
            print(json.dumps(row), flush=True)
            results.append(row)
    if not args.no_serving:
        for row in serving(args.quick):
            print(json.dumps(row), flush=True)
            results.append(row)
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        given = sys.argv[1:] if argv is None else list(argv)
        command = " ".join([".venv/bin/python bench/pipeline.py", *given])
        out.write_text(json.dumps({
            "produced": f"{start.strftime(stamp)} to "
                        f"{datetime.now(timezone.utc).strftime(stamp)} (UTC)",
            "command": command, "machine": machine(), "t_f_s": t_f, "t_b_s": t_b,
            "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
            "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
