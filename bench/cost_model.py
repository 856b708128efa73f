"""The cost model checked: every validation case of issue 15, predicted beside the real figure.

    python bench/cost_model.py            # ~1 min on 2 cores; writes bench/results/cost_model.json
    python bench/cost_model.py --quick    # fewer repeats (< 1 min); writes the file too

Prints one JSON object per line: {"case", "predicted", "measured_or_published", "ratio", "source"}
(ratio = predicted / actual; the issue's target is 0.75-1.25 for every case, the ZeRO example
exact). Published cases (`tplab.cost.validate`): ZeRO paper memory, gpt-fast Llama-2-70B decode,
NeMo Llama-2-70B training, from datasheet peaks and two cited efficiencies. Here cases
(`tplab.cost.here`), measured in this run: TP=2 decode of SmolLM2-135M, a DDP step, a 1F1B PP
step and a ZeRO-1 step on 2 ranks, and one case OFF the shapes the rates were fitted on (a DDP
step of a 2048-wide MLP at batch 16: its products and its 67 MB all-reduce are unlike the fit's),
predicted from this machine's rates fitted in the same run (`tplab.cost.measure`), written first
as a {"fit": ...} line. Every ratio is predicted / actual; for the speed rows (tok/s) that means
above one is optimistic, for the time rows (s) below one: `tplab.cost.validate.time_ratio` puts
both in one convention, predicted time / actual time.

Method: rounds (3; --quick 2) of: fit, then each workload (one launch each, the median of
repeated steps, the slower rank). Each prediction uses the median fit over the rounds, each
measurement the median over the rounds, so load that drifts between a fit and a run weighs
less. The 1-minute load average at start and end goes into the file: on a shared 2-core machine
other processes slow the synchronised workloads (62 waits per decoded token) far more than the
fit's separate loops, so the ratios fall as the load rises.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from tplab.cost import here
from tplab.cost.measure import fit_this_machine, median_fit
from tplab.cost.validate import published_cases, row
from tplab.timing import median

RESULTS = Path(__file__).parent / "results" / "cost_model.json"
HERE = [  # (case, measure, predict, what the fitted rates are)
    ("here: TP=2 decode SmolLM2-135M fp32 (s/token)", here.measure_tp_decode,
     here.predict_tp_decode, "tplab.models.load_llama_tp on 2 ranks, shm all-reduce"),
    ("here: DDP step, MLP 4x1024, batch 64/rank (s)", here.measure_ddp_step,
     here.predict_ddp_step, "tplab.dp.DataParallel, 25 MB buckets, gloo"),
    ("here: PP step, 1F1B p=2 m=4, 2x1024 per stage (s)", here.measure_pp_step,
     here.predict_pp_step, "tplab.pp.run_step, gloo send/recv"),
    ("here: ZeRO-1 step, MLP 4x1024, AdamW (s)", here.measure_zero1_step,
     here.predict_zero1_step, "tplab.zero.ShardedOptimizer, gloo reduce-scatter/all-gather"),
    # OFF the fitted shapes: FLOP/s fitted at width 1024 batch 64, gloo at 64 KiB-16 MiB
    ("here: DDP step, MLP 4x2048, batch 16/rank, off the fitted shapes (s)",
     functools.partial(here.measure_ddp_step, width=2048, rows=16),
     functools.partial(here.predict_ddp_step, width=2048, rows=16),
     "tplab.dp.DataParallel, 25 MB buckets, gloo; width and batch unlike the fit's"),
]


def machine() -> str:
    return (f"{os.cpu_count()} vCPU {platform.processor() or platform.machine()}, "
            f"torch {torch.__version__}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start, load = datetime.now(timezone.utc), os.getloadavg()[0]
    repeats, rounds = (8, 2) if args.quick else (12, 3)
    results = []
    for case in published_cases():
        print(json.dumps(case), flush=True)
        results.append(case)
    fits, measured = [], {case: [] for case, *_ in HERE}
    for _ in range(rounds):
        fits.append(fit_this_machine(repeats=repeats))
        for case, measure, _, _ in HERE:
            measured[case].append(measure(repeats))
    fit = median_fit(fits)
    fit_row = {"fit": dataclasses.asdict(fit)}
    print(json.dumps(fit_row), flush=True)
    for case, _, predict, how in HERE:
        result = row(case, predict(fit), median(measured[case]),
                     f"measured in this run (median of {rounds} rounds): {how}")
        print(json.dumps(result), flush=True)
        results.append(result)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    args.out.write_text(json.dumps({
        "produced": f"{start.strftime(stamp)} to "
                    f"{datetime.now(timezone.utc).strftime(stamp)} (UTC)",
        "command": " ".join([".venv/bin/python bench/cost_model.py",
                             *(["--quick"] if args.quick else [])]),
        "machine": machine(),
        "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
        **fit_row, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
