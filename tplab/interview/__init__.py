"""The interview bank: questions on every lesson, in English and Chinese, each machine-checked.

Why a bank and not a list of questions in a notebook: an answer is only practice if something
says whether it is right and why. Each topic's items live in their own data module; this file
gathers them and offers the two calls lesson 08 needs:

    quiz(n, seed, topic=None) -> list[Item]      a seeded random subset
    score(items, answers)     -> Scorecard        one row per item, and the total

`tplab interview` (cli.py) asks the same items in a terminal.
"""
from __future__ import annotations

import dataclasses
import random

from tplab.interview import (
    collectives,
    data_parallel,
    debugging,
    memory_time,
    pipeline,
    serving,
    tensor_parallel,
)
from tplab.interview.items import KINDS, TOPICS, Code, Item, Numeric, Option

__all__ = ["BANK", "TOPICS", "KINDS", "Item", "Numeric", "Option", "Code", "by_id", "quiz",
           "score", "Scorecard"]

BANK: tuple[Item, ...] = (collectives.ITEMS + data_parallel.ITEMS + tensor_parallel.ITEMS
                          + pipeline.ITEMS + serving.ITEMS + memory_time.ITEMS + debugging.ITEMS)


def by_id(item_id: str) -> Item:
    for item in BANK:
        if item.id == item_id:
            return item
    raise KeyError(f"no item {item_id!r} in the bank; ids look like {BANK[0].id!r}")


def _pool(topic: str | None, kinds=KINDS) -> list[Item]:
    if topic is not None and topic not in TOPICS:
        raise ValueError(f"topic {topic!r} is not one of {', '.join(TOPICS)}")
    return [i for i in BANK if (topic is None or i.topic == topic) and i.kind in kinds]


def quiz(n: int, seed: int = 0, topic: str | None = None, kinds=KINDS) -> list[Item]:
    """`n` distinct items drawn at random (the same `seed` draws the same items), optionally
    from one `topic` and of the given `kinds`."""
    pool = _pool(topic, kinds)
    if not 1 <= n <= len(pool):
        raise ValueError(f"n must be between 1 and {len(pool)} (the items of "
                         f"{topic or 'every topic'}), got {n}")
    return random.Random(seed).sample(pool, n)


@dataclasses.dataclass
class Scorecard:
    """One row per item: id, topic, kind, the answer given, right or not, the model answer."""
    rows: list[dict]

    @property
    def correct(self) -> int:
        return sum(r["correct"] for r in self.rows)

    @property
    def asked(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        lines = [f"{'item':<28} {'kind':<8} {'result':<8} model answer"]
        for r in self.rows:
            result = "skipped" if r["answer"] in (None, "") else ("right" if r["correct"]
                                                                 else "wrong")
            model = r["model_answer"].splitlines()[0][:50]
            lines.append(f"{r['id']:<28} {r['kind']:<8} {result:<8} {model}")
        lines.append(f"score: {self.correct}/{self.asked}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:   # a notebook shows the same table
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def score(items, answers) -> Scorecard:
    """Check `answers` (a list in the items' order, or a dict by item id; None or '' skips)
    against `items` and return the table."""
    items = list(items)
    if isinstance(answers, dict):
        answers = [answers.get(i.id) for i in items]
    answers = list(answers)
    if len(answers) != len(items):
        raise ValueError(f"{len(items)} items but {len(answers)} answers: give one per item "
                         f"(None to skip)")
    rows = []
    for item, answer in zip(items, answers):
        ok = answer not in (None, "") and item.check(answer)
        rows.append({"id": item.id, "topic": item.topic, "kind": item.kind, "answer": answer,
                     "correct": bool(ok), "model_answer": item.shown_answer()})
    return Scorecard(rows)
