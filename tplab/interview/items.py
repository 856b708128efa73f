"""One interview question as data, and the rule that checks an answer to it.

Why a frozen dataclass and not free text: a bank that a machine grades must say exactly what
counts as right. Each kind carries its own evidence:

* numeric: the model answer is *computed* by a tested tplab function, recorded by its dotted
  path (`Numeric.source`), never typed in, and accepted within a stated relative tolerance;
* choice (and true/false): one correct letter, and a reason for every option, so a wrong pick
  is explained, not just marked;
* code: a buggy rank function (tplab.interview.bugs) the learner fixes; the fixed source is
  run on real ranks under a short deadline against a single-process reference, so a fix that
  still deadlocks is rejected by the deadline instead of hanging the grader.

Every item lists `wrong_answers` its checker must reject: the bank's test proves the checker
can fail.

Why items note who reads their answers: reading an attribute or method of `ANSWERS` (or an
option's `why`, or what of a `Numeric` computes its value: `NUMERIC_ANSWERS`) is noted in
`tplab.interview.ledger`, so the mock interview's check can refuse an answer that was looked up
rather than worked out (see that module). What the question states is not noted: a numeric
item's `unit` and tolerance (`rtol`) say what answer is wanted, not what it is.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import re
from typing import Any

from tplab.interview import ledger

__all__ = ["Item", "Option", "Numeric", "Code", "KINDS", "TOPICS", "ANSWERS", "NUMERIC_ANSWERS",
           "resolve", "parse_number"]

KINDS = ("numeric", "choice", "code")
TOPICS = ("collectives", "data_parallel", "tensor_parallel", "pipeline", "serving",
          "memory_time", "debugging")
LETTERS = "ABCDEFGH"
# what of an Item holds or reveals its answer: reading it is noted (ledger.note)
ANSWERS = frozenset({"correct", "explanation", "explanation_zh", "wrong_answers",
                     "model_answer", "shown_answer", "check", "explain", "option_reason"})
# what of a Numeric computes its value (reading it is noted for its item); unit and rtol are not
NUMERIC_ANSWERS = frozenset({"value", "source", "args", "kwargs", "pick", "scale"})
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def resolve(dotted: str):
    """The object at a dotted path such as 'tplab.cost.model.ModelShape.kv_bytes_per_token':
    the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"nothing importable in {dotted!r}")


def parse_number(text: Any) -> float | None:
    """A learner's number: '1.75', '1.75 GB', '2e-3', '3/11', '27.3%' (a percentage is divided
    by 100); None when there is none."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip().replace(",", "").replace("，", "")
    fraction = re.fullmatch(rf"\s*({_NUMBER.pattern})\s*/\s*({_NUMBER.pattern})\s*", s)
    if fraction:
        den = float(fraction.group(2))
        return float(fraction.group(1)) / den if den else None
    found = _NUMBER.search(s)
    if not found:
        return None
    value = float(found.group(0))
    return value / 100 if s[found.end():].lstrip().startswith("%") else value


@dataclasses.dataclass(frozen=True)
class Numeric:
    """How a numeric answer is computed: `source(*args, **kwargs)`, then `[pick]` when the
    function returns a dict, times `scale` (e.g. 1e-9 for bytes -> GB); in `unit`; accepted
    within `rtol` (relative)."""
    source: str
    args: tuple = ()
    kwargs: tuple = ()          # (name, value) pairs: a frozen item holds no dict
    pick: str | None = None
    scale: float = 1.0
    unit: str = ""
    rtol: float = 0.02

    def __getattribute__(self, name):
        if name in NUMERIC_ANSWERS:  # its value, or how it is computed: its item's answer
            owner = object.__getattribute__(self, "__dict__").get("_item")
            if owner is not None:
                ledger.note(owner, f"numeric.{name}")
        return object.__getattribute__(self, name)

    def value(self) -> float:
        result = resolve(self.source)(*self.args, **dict(self.kwargs))
        if self.pick is not None:
            result = result[self.pick]
        return float(result) * self.scale


@dataclasses.dataclass(frozen=True)
class Option:
    """One choice, in both languages, and why it is right or wrong (`why`, English)."""
    text_en: str
    text_zh: str
    why: str

    def __getattribute__(self, name):
        if name == "why":      # the reason says 'Right: ...': noted for the item holding it
            owner = object.__getattribute__(self, "__dict__").get("_item")
            if owner is not None:
                ledger.note(owner, "options' why")
        return object.__getattribute__(self, name)


@dataclasses.dataclass(frozen=True)
class Code:
    """A spot-the-bug task: `buggy` and `fixed` name functions in tplab.interview.bugs whose
    source is shown and checked; `task` names the harness there that runs a submission on
    `world` ranks and compares it with a one-process reference; `timeout` is the deadline."""
    task: str
    buggy: str
    fixed: str
    world: int = 2
    timeout: float = 10.0

    def source(self, name: str) -> str:
        import inspect

        from tplab.interview import bugs
        return inspect.getsource(getattr(bugs, name))


@dataclasses.dataclass(frozen=True)
class Item:
    """One question of the bank; `check(answer)` says whether an answer is right."""
    id: str
    topic: str
    difficulty: int
    question_en: str
    question_zh: str
    kind: str
    explanation: str
    lesson: str
    wrong_answers: tuple = ()
    explanation_zh: str = ""
    options: tuple = ()          # of Option (choice)
    correct: str = ""            # the right letter (choice)
    numeric: Numeric | None = None
    code: Code | None = None

    def __getattribute__(self, name):
        if name in ANSWERS:
            ledger.note(object.__getattribute__(self, "id"), name)
        return object.__getattribute__(self, name)

    def __post_init__(self):
        with ledger.unrecorded():
            self._validate()
        for option in self.options:
            object.__setattr__(option, "_item", self.id)    # its `why` is this item's answer
        if self.numeric is not None:                        # its value is this item's answer
            object.__setattr__(self.numeric, "_item", self.id)

    def _validate(self):
        problems = []
        if self.topic not in TOPICS:
            problems.append(f"topic {self.topic!r} is not one of {TOPICS}")
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if self.difficulty not in (1, 2, 3):
            problems.append(f"difficulty must be 1, 2 or 3, got {self.difficulty!r}")
        if self.kind == "numeric" and self.numeric is None:
            problems.append("a numeric item needs numeric=Numeric(source=...)")
        if self.kind == "choice" and (len(self.options) < 2 or self.correct not in
                                      LETTERS[:len(self.options)]):
            problems.append(f"a choice item needs >= 2 options and correct among "
                            f"{LETTERS[:len(self.options)]!r}, got {self.correct!r}")
        if self.kind == "code" and self.code is None:
            problems.append("a code item needs code=Code(...)")
        if not self.wrong_answers:
            problems.append("list at least one wrong answer the checker must reject")
        if problems:
            raise ValueError(f"item {self.id!r}: " + "; ".join(problems))

    def question(self, lang: str = "en") -> str:
        return self.question_zh if lang == "zh" else self.question_en

    def explain(self, lang: str = "en") -> str:
        return self.explanation_zh if lang == "zh" and self.explanation_zh else self.explanation

    def model_answer(self):
        """The answer the checker accepts: a number, a letter, or the fixed source."""
        if self.kind == "numeric":
            return self.numeric.value()
        if self.kind == "choice":
            return self.correct
        return self.code.source(self.code.fixed)

    def shown_answer(self, lang: str = "en") -> str:
        """The model answer as a learner reads it (a choice's text in `lang`)."""
        if self.kind == "numeric":
            value = self.model_answer()
            return f"{value:.4g} {self.numeric.unit}".strip() + f" (±{self.numeric.rtol:.0%})"
        if self.kind == "choice":
            option = self.options[LETTERS.index(self.correct)]
            return f"{self.correct}: {option.text_zh if lang == 'zh' else option.text_en}"
        return self.code.source(self.code.fixed)

    def check(self, answer, timeout: float | None = None) -> bool:
        """True when `answer` is right. Numeric: within rtol of the computed value; choice: the
        correct letter (any case); code: fixed source whose ranks match the reference before
        the deadline (`timeout`, default the item's own)."""
        if answer is None:
            return False
        if self.kind == "numeric":
            got = parse_number(answer)
            want = self.model_answer()
            return got is not None and math.isfinite(got) and \
                abs(got - want) <= self.numeric.rtol * abs(want)
        if self.kind == "choice":
            return str(answer).strip().upper().rstrip(".)") == self.correct
        from tplab.interview.bugs import check_source
        return check_source(self.code.task, str(answer), self.code.world,
                            timeout or self.code.timeout).ok

    def option_reason(self, letter: str) -> str:
        """Why option `letter` is right or wrong ('' for a letter that is not an option)."""
        letter = str(letter).strip().upper().rstrip(".)")
        if len(letter) == 1 and letter in LETTERS[:len(self.options)]:
            return self.options[LETTERS.index(letter)].why
        return ""
