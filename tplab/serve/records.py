"""What a serving run measured: one Record per request, and the Report that sums them up.

Why these numbers: a server is judged by its throughput (generated tokens per second of the
whole run) and by what each user waits for, its latency (from submitting the request to its
last token), of which the median (p50) and the slow tail (p95) are quoted. The wait in the
queue (started - submitted) is kept apart: it is what scheduling changes, the service time
(finished - started) is what the model costs. Times are seconds from the run's t0, on
`time.perf_counter` (one monotonic clock for every process on the machine).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from tplab.timing import median, percentile

__all__ = ["Record", "Report"]


@dataclass
class Record:
    """One request served: by which worker, when (seconds from t0), its tokens, and how many
    times it was handed to a worker (2 or more: a worker died while running it)."""
    id: int
    worker: int
    submitted: float
    started: float
    finished: float
    tokens: list[int]
    attempts: int = 1


@dataclass
class Report:
    """Every request's Record (in id order) with the run's shape: `workers` (processes or batch
    slots), `policy` (how requests were assigned), `order` (the queue's order), `steps` (for a
    batcher: the request ids in each decode step)."""
    records: list[Record]
    workers: int
    policy: str
    order: str = "fifo"
    steps: list[list[int]] = field(default_factory=list)

    def __post_init__(self):
        if not self.records:
            raise ValueError("a Report needs at least one Record")
        self.records = sorted(self.records, key=lambda r: r.id)

    @property
    def makespan(self) -> float:
        """Seconds from the first submission to the last finish."""
        return max(r.finished for r in self.records) - min(r.submitted for r in self.records)

    @property
    def tokens(self) -> int:
        """Generated tokens, all requests together."""
        return sum(len(r.tokens) for r in self.records)

    @property
    def throughput(self) -> float:
        """Generated tokens per second of makespan."""
        return self.tokens / self.makespan

    @property
    def latencies(self) -> list[float]:
        """Seconds from submission to the last token, per request (id order)."""
        return [r.finished - r.submitted for r in self.records]

    @property
    def waits(self) -> list[float]:
        """Seconds each request waited in the queue before a worker started it (id order)."""
        return [r.started - r.submitted for r in self.records]

    @property
    def p50(self) -> float:
        """Median latency, seconds."""
        return median(self.latencies)

    @property
    def p95(self) -> float:
        """95th-percentile latency (nearest rank: a measured request's), seconds."""
        return percentile(self.latencies, 0.95)

    @property
    def outputs(self) -> dict[int, list[int]]:
        """{request id: generated tokens}."""
        return {r.id: list(r.tokens) for r in self.records}

    def summary(self) -> dict:
        """The headline figures: tokens/s, p50/p95 latency in ms, makespan in s."""
        return {"policy": self.policy, "order": self.order, "workers": self.workers,
                "requests": len(self.records), "tokens": self.tokens,
                "tok_s": self.throughput, "p50_ms": self.p50 * 1e3, "p95_ms": self.p95 * 1e3,
                "makespan_s": self.makespan}

    def to_json(self) -> str:
        """The summary and every record, as one JSON object."""
        return json.dumps({**self.summary(), "steps": self.steps,
                           "records": [asdict(r) for r in self.records]})
