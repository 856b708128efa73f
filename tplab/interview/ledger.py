"""Which of the bank's answers this process has read: what lets exercise 08.4 and 08.5 tell a
worked answer from a looked-up one.

Why a ledger. The mock interview's answers are constants, and the bank is importable, so the
exercise cell could read every answer (`by_id(i).model_answer()`, `.correct`, `.check` tried
letter by letter) before any check runs, and no check of the values could tell. So every
read of what holds an item's answer (`items.ANSWERS`: its model answer, letter, explanation,
checker, the options' reasons, the wrong answers) is noted here, by item id, whatever cell or
helper made it; the check (`tplab.checks.lesson08_mock`) refuses items read before it. The
checkers read under `unrecorded()`, and an item counts as `earned` once its check passed, so
the notebook can print the explanations afterwards and the check can run again.

The lesson and `tplab interview` read answers freely: a note matters only to a later check in
the same process, and a fresh kernel (the grader's) starts with none. This is not a sandbox:
code in the same process can clear the notes on purpose; it catches a look-up, not a forgery.
The notes survive `importlib.reload` of this module.
"""
from __future__ import annotations

import contextlib

__all__ = ["note", "unrecorded", "looked_up", "earned"]

_READ: dict[str, set[str]] = globals().get("_READ", {})      # item id -> what was read
_EARNED: set[str] = globals().get("_EARNED", set())          # ids whose check passed
_QUIET: list[int] = globals().get("_QUIET", [0])             # depth of unrecorded() blocks


def note(item_id: str, what: str) -> None:
    """Record that `what` of item `item_id` (an answer-bearing attribute) was read."""
    if not _QUIET[0] and item_id not in _EARNED:
        _READ.setdefault(item_id, set()).add(what)


@contextlib.contextmanager
def unrecorded():
    """Reads inside the block are not noted (a checker's own, the bank's construction)."""
    _QUIET[0] += 1
    try:
        yield
    finally:
        _QUIET[0] -= 1


def looked_up(ids) -> dict[str, list[str]]:
    """{item id: what of it was read} for the items of `ids` read before they were earned."""
    return {i: sorted(_READ[i]) for i in ids if _READ.get(i) and i not in _EARNED}


def earned(ids) -> None:
    """The items of `ids` passed their check: later reads (their explanations) are fine."""
    _EARNED.update(ids)
    for i in ids:
        _READ.pop(i, None)
