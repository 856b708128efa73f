"""Serving SmolLM2-135M: scheduling over 2 workers, static vs continuous batching, Ray vs tplab.

    python bench/serve.py               # ~10 min on 2 quiet cores; writes bench/results/serve.json
    python bench/serve.py --quick       # one repeat; prints only (unless --out)
    python bench/serve.py --simulate    # no model: the scheduling simulation alone, ~10 s
    python bench/serve.py --sigma 2 --cap 256   # a heavier tail (make_workload's options)

Prints one JSON object per line. A measured configuration:
  {"impl", "policy", "order", "workers", "batching", "max_batch", "tok_s", "p50_ms", "p95_ms",
   "makespan_s", "tokens", "repeats", "runs_tok_s"}
impl      "tplab" (`tplab.serve.serve`: worker processes; `static_batching` /
          `continuous_batching` on this process) or "ray" (`tplab.serve.serve_ray`: Ray actors)
policy    "contiguous", "round-robin", "dynamic" (pools); "one process" (batching)
workers   worker processes / actors (1 for batching: one process, one thread)
batching  "none" (a worker runs one request at a time), "static", "continuous"
max_batch requests in flight per process (1 without batching)
tok_s, p50_ms, p95_ms, makespan_s   medians over the repeats (`tplab.serve.Report`'s figures;
          makespan excludes loading the replicas); runs_tok_s: every repeat's tok/s
A configuration whose outputs differ from the one-at-a-time greedy reference is not reported:
its line has "refused" (the differing request ids; for batching, each `Mismatch` with its logit
gap) and no figures. Then ratio lines {"ratio", "metric", "value", "target", "met"} (tok/s of
the medians: dynamic/contiguous, dynamic/round-robin, continuous/static, ray/serve ...; "met"
is null, with "not_judged", when the 1-minute load average at the start exceeded 0.75 per CPU,
1.5 on 2: then other processes share the workers' cores and the ratios are noise), a
cost-model line (per-request service seconds fitted as a·prompt_tokens + b·(new_tokens − 1)
on the 1-worker run) with the makespan ratios that model predicts for this workload, and a
"machine" line: CPUs, torch, threads, the 1-minute load average at the start and the end.

Method. Every worker and the batching process run one torch thread, so 2 workers use the
machine's 2 cores; the parent only waits. The tplab configurations run in rounds, one of each
per round, the order rotating round by round, so noise from elsewhere on the machine hits all
alike. Ray is started once (`tplab.serve.local_ray(2)`) for its own phase, in which tplab's
dynamic pool and Ray's alternate run by run: ray/serve compares runs made beside the same idle
Ray processes (the remote calls' own cost); "ray/serve without Ray running" divides by phase A's
dynamic pool instead, charging Ray also for its helper processes (GCS, raylet, agents), which
on 2 cores take CPU from the replicas. Continuous and static batching use the
same max batch (--max-batch, default 4) on the same requests.

The simulation (--simulate, and in the results file): no model, per-request cost
a·prompt_tokens + b·(new_tokens − 1) seconds (a prefill, then one decode step per further token).
Which a and b: in a measured run, the ones fitted on that run's 1-worker configuration (the
cost-model line); with --simulate alone, the cost-model line of the committed results file
(bench/results/serve.json) when it has one, else DEFAULT_COSTS (a = 3.70 ms, b = 42.77 ms: the
fit of that file's 1-worker run produced 2026-12-02T18:29Z, --quick, start load 0.23). Every
simulation row records the costs it used, and where they came from, under "costs"; the results
file repeats them as "simulation_costs". For each workload shape
(n requests, lognormal median and sigma, cap: `make_workload`'s options) and seeds 0..S-1, the
makespans of contiguous, round-robin and dynamic (FIFO: greedy list scheduling in id order)
over 2 workers, and the lower bound no schedule beats, max(longest request, total / 2). Lengths
are max_new_tokens (real answers may end earlier at the end-of-turn token: the tail is, if
anything, shorter). Ratios of makespans are ratios of throughput (the same tokens).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"
# s per prompt token (a), s per new token after the first (b), when no fit is at hand
DEFAULT_COSTS = {"a": 0.00370, "b": 0.04277,
                 "from": "DEFAULT_COSTS: the fit of bench/results/serve.json's 1-worker run "
                         "produced 2026-12-02T18:29Z (--quick, start load 0.23)"}
QUIET_LOAD = 0.75  # per CPU: above it at the start, targets are not judged ("met": null)
TARGETS = {"dynamic/contiguous": 1.3, "dynamic/round-robin": 1.3, "continuous/static": 1.3,
           "ray/serve": 0.8}


# ---------------------------------------------------------------- simulation (no model)

def greedy_makespan(costs, order, workers=2) -> float:
    """List scheduling: each request, in `order`, to the worker that frees up first."""
    free = [0.0] * workers
    for i in order:
        k = min(range(workers), key=free.__getitem__)
        free[k] += costs[i]
    return max(free)


def makespans(costs, lengths, workers=2) -> dict:
    """Simulated makespans of serve's policies and the lower bound, for one workload."""
    n = len(costs)
    size = math.ceil(n / workers)
    return {"contiguous": max(sum(costs[w * size:(w + 1) * size]) for w in range(workers)),
            "round-robin": max(sum(costs[w::workers]) for w in range(workers)),
            "dynamic": greedy_makespan(costs, range(n), workers),
            "dynamic-sjf": greedy_makespan(costs, sorted(range(n), key=lambda i: (lengths[i], i)),
                                           workers),
            "bound": max(max(costs), sum(costs) / workers)}


def _q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def simulate(n, cap, sigma, median, seeds, prompt_lengths, costs=DEFAULT_COSTS) -> dict:
    """The distribution over seeds of the makespan ratios (static / dynamic), for one shape,
    a request costing costs["a"]·prompt_tokens + costs["b"]·(new_tokens − 1) seconds."""
    from tplab.serve.workload import draw_lengths

    ratios = {"contiguous/dynamic": [], "round-robin/dynamic": [], "contiguous/bound": []}
    tokens, one_worker_s = [], []
    for seed in range(seeds):
        lengths = draw_lengths(n, seed, cap, median=median, sigma=sigma)
        service = [costs["a"] * p + costs["b"] * (m - 1) for p, m in zip(prompt_lengths, lengths)]
        m = makespans(service, lengths)
        ratios["contiguous/dynamic"].append(m["contiguous"] / m["dynamic"])
        ratios["round-robin/dynamic"].append(m["round-robin"] / m["dynamic"])
        ratios["contiguous/bound"].append(m["contiguous"] / m["bound"])
        tokens.append(sum(lengths))
        one_worker_s.append(sum(service))
    row = {"simulate": "2 workers", "n": n, "cap": cap, "sigma": sigma, "median": median,
           "seeds": seeds, "costs": costs_row(costs)}
    for name, xs in ratios.items():
        row[name] = {"p10": round(_q(xs, 0.1), 3), "median": round(statistics.median(xs), 3),
                     "p90": round(_q(xs, 0.9), 3),
                     "share_ge_1.3": round(sum(x >= 1.3 for x in xs) / seeds, 3)}
    row["new_tokens_median"] = statistics.median(tokens)
    row["prompt_tokens"] = sum(prompt_lengths)
    row["one_worker_s_median"] = round(statistics.median(one_worker_s), 1)
    return row


def costs_row(costs) -> dict:
    return {"a_ms": round(costs["a"] * 1e3, 2), "b_ms": round(costs["b"] * 1e3, 2),
            "from": costs["from"]}


def committed_costs(path: Path = RESULTS) -> dict | None:
    """a and b from a results file's cost-model line (its 1-worker fit), or None."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(path.read_text())
        fit = next(r for r in saved["results"] if "cost_model" in r)
        return {"a": fit["a_ms"] / 1e3, "b": fit["b_ms"] / 1e3,
                "from": f"the cost-model line of bench/results/{path.name} (its 1-worker run, "
                        f"produced {saved['produced']})"}
    return None


def simulation(seeds: int, costs=DEFAULT_COSTS) -> list[dict]:
    """The lesson's workload shape, then heavier tails (sigma, cap) and more requests (n)."""
    from tplab.serve.workload import MEDIAN, SIGMA, make_workload

    rows = []
    prompts = {n: [len(r.prompt_ids) for r in make_workload(n)] for n in (32, 64)}
    heavier = [(n, cap, sigma) for n in (32, 64) for sigma in (1.3, 1.6, 2.0, 2.5)
               for cap in (48, 128, 256, 512)]
    shapes = [(32, 48, SIGMA)] + [s for s in heavier if s != (32, 48, SIGMA)]
    for n, cap, sigma in shapes:
        rows.append(simulate(n, cap, sigma, MEDIAN, seeds, prompts[n], costs))
    return rows


# ---------------------------------------------------------------- measured runs

def check_pool(report, reference) -> list[int]:
    """Request ids whose tokens differ from the reference (missing or extra ones included)."""
    got = report.outputs
    return sorted(i for i in set(got) | set(reference) if got.get(i) != reference.get(i))


class Config:
    """One measured configuration: how to run it, and its runs' reports (or why refused)."""

    def __init__(self, name, impl, policy, order, workers, batching, max_batch, run):
        self.name, self.impl, self.policy, self.order = name, impl, policy, order
        self.workers, self.batching, self.max_batch, self.run = workers, batching, max_batch, run
        self.reports, self.refused, self.seconds, self.loads = [], None, [], []

    def once(self, check):
        self.loads.append(os.getloadavg()[0])
        started = time.perf_counter()
        report = self.run()
        self.seconds.append(time.perf_counter() - started)
        bad = check(report)
        if bad:
            self.refused = bad
        else:
            self.reports.append(report)
        print(f"# {self.name}: {report.throughput:.2f} tok/s, makespan {report.makespan:.1f} s"
              + (f" REFUSED: {bad}" if bad else ""), file=sys.stderr, flush=True)

    def row(self) -> dict:
        row = {"impl": self.impl, "policy": self.policy, "order": self.order,
               "workers": self.workers, "batching": self.batching, "max_batch": self.max_batch}
        if self.refused is not None:
            return {**row, "refused": f"outputs differ from the reference: {self.refused}"}
        med = statistics.median
        return {**row, "tok_s": round(med(r.throughput for r in self.reports), 3),
                "p50_ms": round(med(r.p50 for r in self.reports) * 1e3, 1),
                "p95_ms": round(med(r.p95 for r in self.reports) * 1e3, 1),
                "makespan_s": round(med(r.makespan for r in self.reports), 3),
                "tokens": self.reports[0].tokens, "repeats": len(self.reports),
                "runs_tok_s": [round(r.throughput, 3) for r in self.reports],
                "wall_s": round(med(self.seconds), 1),
                "load_avg": [round(x, 2) for x in self.loads]}


def ratio(name, metric, a, b, predicted=None, busy=None) -> dict | None:
    """a/b of tok_s (higher is better) from two rows; None if either was refused.
    `predicted`: what the fitted cost model says the ratio is without noise. `busy`: why the
    machine was too busy for a target to be judged ("met" is then null), or None."""
    if "tok_s" not in a or "tok_s" not in b:
        return None
    value = a[metric] / b[metric]
    row = {"ratio": name, "metric": metric, "value": round(value, 3)}
    if name in TARGETS:
        row.update(target=TARGETS[name], met=None if busy else value >= TARGETS[name])
        if busy:
            row["not_judged"] = busy
    if predicted is not None:
        row["predicted_by_cost_model"] = round(predicted, 3)
    return row


def fit_cost(report, requests) -> dict:
    """Least squares of each request's service time on (prompt tokens, new tokens - 1)."""
    by_id = {r.id: r for r in requests}
    xs = [(len(by_id[r.id].prompt_ids), len(r.tokens) - 1, r.finished - r.started)
          for r in report.records]
    spp = sum(p * p for p, _, _ in xs)
    spn = sum(p * k for p, k, _ in xs)
    snn = sum(k * k for _, k, _ in xs)
    spy = sum(p * y for p, _, y in xs)
    sny = sum(k * y for _, k, y in xs)
    det = spp * snn - spn * spn
    a, b = (spy * snn - sny * spn) / det, (sny * spp - spy * spn) / det
    return {"a": a, "b": b, "rows": xs}


def measured(args, out, load) -> dict | None:
    """The measured configurations, each printed by `out`; the costs fitted on the 1-worker run
    (for the simulation), or None if it was refused."""
    import torch

    from tplab.models.loading import load_llama
    from tplab.serve import (
        ModelEngine,
        compare_outputs,
        continuous_batching,
        local_ray,
        make_workload,
        reference_outputs,
        serve,
        serve_ray,
        static_batching,
    )

    torch.set_num_threads(1)
    quiet = QUIET_LOAD * (os.cpu_count() or 1)
    busy = (f"load average {load:.2f} at the start, above {quiet:g} on {os.cpu_count()} CPUs: "
            f"other processes take the workers' cores; re-run on a quiet machine"
            if load > quiet else None)
    requests = make_workload(args.n, args.seed, args.cap, median=args.median, sigma=args.sigma)
    model = load_llama()
    t = time.perf_counter()
    reference = reference_outputs(requests, model)
    print(f"# reference: {sum(map(len, reference.values()))} tokens in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    out({"workload": {"n": args.n, "seed": args.seed, "cap": args.cap, "median": args.median,
                      "sigma": args.sigma,
                      "max_new_tokens": sum(r.max_new_tokens for r in requests),
                      "reference_tokens": sum(map(len, reference.values())),
                      "prompt_tokens": sum(len(r.prompt_ids) for r in requests)}})
    engine, timeout, b = ModelEngine(threads=1), 900.0, args.max_batch

    def pool(workers, policy, order="fifo"):
        return lambda: serve(requests, engine, workers, policy, order, timeout=timeout)

    def batch_check(report):
        found = compare_outputs(report, reference, model)
        return [str(m) for m in found]

    def pool_check(report):
        return check_pool(report, reference)

    phase_a = [Config("1 worker", "tplab", "dynamic", "fifo", 1, "none", 1, pool(1, "dynamic")),
               Config("contiguous", "tplab", "contiguous", "fifo", 2, "none", 1,
                      pool(2, "contiguous")),
               Config("round-robin", "tplab", "round-robin", "fifo", 2, "none", 1,
                      pool(2, "round-robin")),
               Config("dynamic", "tplab", "dynamic", "fifo", 2, "none", 1, pool(2, "dynamic")),
               Config("dynamic-sjf", "tplab", "dynamic", "sjf", 2, "none", 1,
                      pool(2, "dynamic", "sjf")),
               Config("static", "tplab", "one process", "fifo", 1, "static", b,
                      lambda: static_batching(model, requests, b)),
               Config("continuous", "tplab", "one process", "fifo", 1, "continuous", b,
                      lambda: continuous_batching(model, requests, b))]
    for r in range(args.repeats):
        k = r % len(phase_a)
        for c in phase_a[k:] + phase_a[:k]:
            c.once(batch_check if c.batching != "none" else pool_check)
    rows = {c.name: c.row() for c in phase_a}
    for row in rows.values():
        out(row)

    ray_rows = {}
    if not args.no_ray:
        serve_b = Config("serve beside ray", "tplab", "dynamic", "fifo", 2, "none", 1,
                         pool(2, "dynamic"))
        ray_c = Config("ray", "ray", "dynamic", "fifo", 2, "none", 1,
                       lambda: serve_ray(requests, engine, 2, "dynamic", "fifo", timeout=timeout))
        try:
            with local_ray(2):
                for r in range(args.repeats):
                    for c in ([serve_b, ray_c] if r % 2 == 0 else [ray_c, serve_b]):
                        c.once(pool_check)
            ray_rows = {"serve": {**serve_b.row(), "beside": "idle Ray"}, "ray": ray_c.row()}
            for row in ray_rows.values():
                out(row)
        except Exception as exc:  # Ray may not start on a loaded machine: say so, go on
            out({"impl": "ray", "skipped": f"{type(exc).__name__}: {exc}"})

    one, predicted, fitted = phase_a[0].reports, {}, None
    if one:  # the cost model, fitted on the 1-worker run, and what it predicts here
        fit = fit_cost(one[len(one) // 2], requests)
        lengths = [len(reference[r.id]) for r in requests]
        costs = [fit["a"] * len(r.prompt_ids) + fit["b"] * (m - 1)
                 for r, m in zip(requests, lengths)]
        sim = makespans(costs, lengths)
        fitted = {"a": fit["a"], "b": fit["b"],
                  "from": "fitted on this run's 1-worker configuration (its cost-model line)"}
        predicted = {"dynamic/contiguous": sim["contiguous"] / sim["dynamic"],
                     "dynamic/round-robin": sim["round-robin"] / sim["dynamic"],
                     "dynamic-sjf/contiguous": sim["contiguous"] / sim["dynamic-sjf"]}
        out({"cost_model": "service_s = a*prompt_tokens + b*(new_tokens - 1), 1-worker run",
             "a_ms": round(fit["a"] * 1e3, 2), "b_ms": round(fit["b"] * 1e3, 2),
             "predicted_contiguous/dynamic": round(sim["contiguous"] / sim["dynamic"], 3),
             "predicted_round-robin/dynamic": round(sim["round-robin"] / sim["dynamic"], 3),
             "predicted_contiguous/bound": round(sim["contiguous"] / sim["bound"], 3)})

    pairs = [("dynamic/contiguous", rows["dynamic"], rows["contiguous"]),
             ("dynamic/round-robin", rows["dynamic"], rows["round-robin"]),
             ("dynamic-sjf/contiguous", rows["dynamic-sjf"], rows["contiguous"]),
             ("dynamic/1 worker", rows["dynamic"], rows["1 worker"]),
             ("continuous/static", rows["continuous"], rows["static"])]
    if ray_rows:  # beside the same idle Ray (the remote calls' cost), and against phase A
        pairs.append(("ray/serve", ray_rows["ray"], ray_rows["serve"]))
        pairs.append(("ray/serve without Ray running", ray_rows["ray"], rows["dynamic"]))
    for name, a, b_ in pairs:
        if (row := ratio(name, "tok_s", a, b_, predicted.get(name), busy)) is not None:
            out(row)
    for name, a, b_ in pairs[:3] + pairs[4:5]:
        if "p95_ms" in a and "p95_ms" in b_:
            out({"ratio": name, "metric": "p95_ms", "value": round(a["p95_ms"] / b_["p95_ms"], 3)})
    return fitted


def machine() -> str:
    import torch

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} vCPU {model}, torch {torch.__version__}"


def main(argv=None) -> None:
    from tplab.serve.workload import MEDIAN, SIGMA

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat instead of three")
    parser.add_argument("--simulate", action="store_true", help="the simulation only, no model")
    parser.add_argument("--seeds", type=int, default=1000, help="simulated seeds per shape")
    parser.add_argument("--n", type=int, default=32, help="requests (make_workload's n)")
    parser.add_argument("--seed", type=int, default=0, help="make_workload's seed")
    parser.add_argument("--cap", type=int, default=48, help="make_workload's cap")
    parser.add_argument("--median", type=float, default=MEDIAN, help="make_workload's median")
    parser.add_argument("--sigma", type=float, default=SIGMA, help="make_workload's sigma")
    parser.add_argument("--max-batch", type=int, default=4, help="batching's max batch")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray phase")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default: {RESULTS} unless --quick or --simulate)")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    start, load = datetime.now(timezone.utc), os.getloadavg()[0]
    results, sim_rows = [], []

    def out(row):
        print(json.dumps(row), flush=True)
        results.append(row)

    fitted = None
    if not args.simulate:
        fitted = measured(args, out, load)
        out({"machine": machine(), "torch_threads_per_process": 1,
             "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)]})
    costs = fitted or committed_costs() or DEFAULT_COSTS
    sim_rows = simulation(args.seeds, costs)
    for row in sim_rows:
        print(json.dumps(row), flush=True)
    path = args.out or (None if args.quick or args.simulate else RESULTS)
    if path is not None:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        given = sys.argv[1:] if argv is None else list(argv)
        path.write_text(json.dumps({
            "produced": f"{start.strftime(stamp)} to "
                        f"{datetime.now(timezone.utc).strftime(stamp)} (UTC)",
            "command": " ".join([".venv/bin/python bench/serve.py", *given]),
            "quick": args.quick, "machine": machine(),
            "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
            "results": results, "simulation_costs": costs_row(costs),
            "simulation": sim_rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
