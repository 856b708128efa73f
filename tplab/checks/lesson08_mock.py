"""Checks of exercises 08.4 and 08.5 (solutions/08_interview.ipynb): a mock interview of
numeric and choice items from the bank (`tplab.interview`).

Why these checks: each answer is judged by the item's own checker (`Item.check`: the stated
tolerance for a number, the letter for a choice), all or nothing. A failure message must teach
without handing over the answer: for a wrong number it names the formula the item needs and,
when the value is one of the usual slips (`SLIPS`, each worked out the wrong way) or a
percentage where a fraction is asked, it says which; it never prints the item's explanation,
which holds the value (the notebook shows it after a pass). For a wrong letter it gives that
option's reason, not the right letter. The choice items are chosen so that none of their text
states an answer of 08.4 (`test_checks_lesson08` checks it).

Why a looked-up answer fails although its value is right: the answers are constants the
exercise cell fills before the check runs, so the values alone cannot tell. Two witnesses can:

* the bank notes every read of an item's answer (`tplab.interview.ledger`: model_answer(),
  .correct, .explanation, .check(...) tried letter by letter, an option's reason), from any
  cell or helper; an item read before its check passed fails, whatever its value;
* the numbers are also computed by the library (the items' `Numeric.source`: tplab.cost,
  tplab.zero, tplab.pp) and by this module's own constants: the cells the kernel has run (its
  input history, as the grader's kernel saw them) must not use those modules (`_library_uses`).

After a pass the items count as earned: the notebook prints their explanations, and the check
runs again. A fresh kernel, such as the grader's, has read nothing. What this cannot stop: code
that clears the notes or hides a module's name on purpose (it is one process, not a sandbox).
"""
from __future__ import annotations

import io
import re
import tokenize

from tplab.interview import by_id, ledger, score
from tplab.interview.items import LETTERS, parse_number

__all__ = ["NUMBERS", "CHOICES", "FORMULAS", "SLIPS", "show", "check_numbers", "check_choices"]

# one item per topic an interviewer computes with: ring all-reduce time, ZeRO memory, TP
# traffic per layer, the pipeline bubble, KV-cache bytes, 70B decode time on 8×H100
NUMBERS = ("dp-grad-all-reduce", "dp-zero3-70b", "tp-decode-comm", "pp-bubble", "mt-kv-batch",
           "mt-decode-ms")
CHOICES = ("coll-halves", "coll-ring-scaling", "tp-f-g", "pp-1f1b-vs-gpipe",
           "sv-continuous-batching", "mt-memory-bound")

# what each numeric item needs, without its value
FORMULAS = {
    "dp-grad-all-reduce": "a bandwidth-bound ring all-reduce takes 2(n-1)/n · N bytes / the bus "
                          "bandwidth (its microsecond start and step terms are negligible here)",
    "dp-zero3-70b": "ZeRO-3 shards all of the state: (2 + 2 + K)·Ψ/N bytes per GPU, K = 12, "
                    "in GB of 10^9 bytes",
    "tp-decode-comm": "2 all-reduces per layer × 80 layers, each t0 + 2(n-1)·α + 2(n-1)/n · "
                      "(8192 values × 2 bytes)·β: at 16 KB the start and step terms dominate",
    "pp-bubble": "each rank idles p - 1 of the m + p - 1 slots of a step",
    "mt-kv-batch": "per token 2 (K and V) × layers × KV heads × head dimension × 2 bytes, × the "
                   "sequences × their tokens, divided over the ranks that split the KV heads",
    "mt-decode-ms": "each GPU reads its share of the bf16 weights (Ψ·2/n bytes) at the achieved "
                    "bandwidth (3.35 TB/s × 0.685), then the token waits for the all-reduces of "
                    "tp-decode-comm",
}

_N, _P, _GB = 8, 68.98e9, 1e9
_AR16K = 3.6e-6 + 2 * 7 * 0.47e-6 + 2 * 7 / 8 * 8192 * 2 / 370e9      # s, one TP all-reduce
_KV = 2 * 80 * 8 * 128 * 2 * 16 * 4096                                  # bytes, all ranks
_WEIGHTS_S = _P * 2 / _N / (3.35e12 * 0.685)                            # s, bf16 per GPU
# each numeric item's usual slips, worked out the wrong way: {item: {slip: value}}
SLIPS = {
    "dp-grad-all-reduce": {"the 2 of 2(n-1)/n forgotten": 7 / 8 * 14e9 / 370e9 * 1e3,
                           "2N, the (n-1)/n forgotten": 2 * 14e9 / 370e9 * 1e3,
                           "N bytes once, as if one copy": 14e9 / 370e9 * 1e3},
    "dp-zero3-70b": {"GiB (2^30 bytes) for GB": 16 * _P / _N / 2**30,
                     "K = 8: no fp32 master weights": 12 * _P / _N / _GB,
                     "ZeRO-1's formula": (4 + 12 / _N) * _P / _GB,
                     "fp32 weights and gradients": 20 * _P / _N / _GB},
    "tp-decode-comm": {"one all-reduce per layer": 80 * _AR16K * 1e3,
                       "four all-reduces per layer (training counts backward too)":
                           320 * _AR16K * 1e3,
                       "(n-1) steps, not 2(n-1)": 160 * (3.6 + 7 * 0.47) * 1e-3,
                       "NCCL's fixed start t0 forgotten": 160 * 14 * 0.47e-3},
    "pp-bubble": {"(p-1)/m: idle over the ideal time, not the step": 3 / 8,
                  "(p-1)/(m+p)": 3 / 12, "p/(m+p)": 4 / 12},
    "mt-kv-batch": {"K without V": _KV / 2 / _N / _GB, "GiB (2^30 bytes) for GB": _KV / _N / 2**30,
                    "fp32 values": _KV * 2 / _N / _GB, "not split over the TP ranks": _KV / _GB},
    "mt-decode-ms": {"fp32 weights": 2 * _WEIGHTS_S * 1e3 + 160 * _AR16K * 1e3,
                     "the peak bandwidth, not the achieved": _WEIGHTS_S * 0.685 * 1e3
                     + 160 * _AR16K * 1e3,
                     "the all-reduces forgotten": _WEIGHTS_S * 1e3},
}


def show(ids, lang: str = "both") -> None:
    """Print each item's question (English, then Chinese) and a choice item's options."""
    for number, item in enumerate(by_id(i) for i in ids):
        print(f"[{item.id}]")
        for text in ([item.question_en, item.question_zh] if lang == "both"
                     else [item.question(lang)]):
            print(f"  {text}")
        for letter, option in zip(LETTERS, item.options):
            print(f"    {letter}) {option.text_en}  /  {option.text_zh}")
        if number < len(ids) - 1:
            print()


_RESTART = ("Remove the look-up, restart the kernel (it remembers what was run and read) and run "
            "the notebook again from the top.")


def _executed_sources() -> list[str]:
    """The source of every cell this kernel has run, as it ran them (IPython's input history);
    [] outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return [] if shell is None else list(shell.history_manager.input_hist_raw)


def _code_lines(source: str) -> list[str]:
    """`source`'s lines without their comments (a comment may name a module it does not use)."""
    lines = source.splitlines()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                row, col = token.start
                lines[row - 1] = lines[row - 1][:col]
    except (tokenize.TokenError, SyntaxError):   # an IPython magic, an unfinished cell
        pass
    return lines


def _library_uses(ids) -> list[str]:
    """The lines of the cells run so far that use a module computing the answers of `ids`
    (their `Numeric.source` packages, tplab.cost, tplab.zero, tplab.pp) or this module."""
    with ledger.unrecorded():
        packages = sorted({by_id(i).numeric.source.split(".")[1] for i in ids
                           if by_id(i).numeric is not None})
    if not packages:
        return []
    names = "|".join(map(re.escape, packages))
    used = re.compile(rf"\btplab\s*\.\s*({names})\b|\bfrom\s+tplab\s+import\s*\(?[\w\s,]*?"
                      rf"\b({names})\b|\b{__name__.rsplit('.', 1)[-1]}\b")
    found = []
    for source in _executed_sources():
        code = "\n".join(_code_lines(source))
        found += [code[:m.start()].rsplit("\n", 1)[-1] + code[m.start():].split("\n", 1)[0]
                  for m in used.finditer(code)]
    return [line.strip() for line in found]


def _not_looked_up(ids) -> None:
    """Fail when an answer of `ids` was read from the bank, or computed by the library, before
    its check passed."""
    read = ledger.looked_up(ids)
    assert not read, (
        f"your code read the interview bank's answer to {', '.join(read)} (through "
        f"{', '.join(sorted(set().union(*read.values())))}): in an interview the answer must be "
        f"worked out, not looked up. Work it out from the question and what the lessons "
        f"derive. " + _RESTART)
    uses = _library_uses(ids)
    assert not uses, (
        f"your code uses the library that computes these answers ({uses[0]!r}): in an "
        f"interview the answer must be worked out, not looked up. Work it out from the formulas "
        f"and constants above, with Python as a calculator. " + _RESTART)


def _check_items(answers, ids, wrong_line, what: str):
    assert isinstance(answers, dict), (
        f"answers should be a dict {{item id: {what}}}, got {type(answers).__name__}")
    unknown = sorted(set(answers) - set(ids))
    assert not unknown, f"answers has ids that are not in this interview: {unknown}"
    missing = [i for i in ids if answers.get(i) in (None, "")]
    assert not missing, f"no answer yet for {', '.join(missing)}: give a {what} for each"
    _not_looked_up(ids)
    with ledger.unrecorded():
        items = [by_id(i) for i in ids]
        wrong = [item for item in items if not item.check(answers[item.id])]
        assert not wrong, (f"{len(wrong)} of {len(items)} answers are wrong:\n"
                           + "\n".join(wrong_line(item, answers[item.id]) for item in wrong))
        card = score(items, answers)
    ledger.earned(ids)
    return card


def _number_slip(item, value: float) -> str:
    """What a wrong value looks like: a listed slip, or a percentage where a fraction is
    asked ('' when neither)."""
    rtol = item.numeric.rtol
    near = sorted((abs(value - wrong) / abs(wrong), slip)
                  for slip, wrong in SLIPS.get(item.id, {}).items())
    if near and near[0][0] <= rtol:
        return f" That is the value with this slip: {near[0][1]}."
    if item.check(value / 100):
        return (" That looks like a percentage: the question asks for a fraction (write 0.5 "
                "for 50%, or the text '50%').")
    return ""


def _number_line(item, answer) -> str:
    value = parse_number(answer)
    if value is None:
        return f"- {item.id}: you gave {answer!r}, not a number. Needed: {FORMULAS[item.id]}."
    return (f"- {item.id}: you gave {value:.4g} {item.numeric.unit}".rstrip()
            + f" (accepted within ±{item.numeric.rtol:.0%} of the answer)."
            + _number_slip(item, value) + f" Needed: {FORMULAS[item.id]}.")


def _choice_line(item, answer) -> str:
    reason = item.option_reason(answer) or (f"not one of the options "
                                            f"{', '.join(LETTERS[:len(item.options)])}")
    return f"- {item.id}: you chose {str(answer).strip()!r}: {reason}"


def check_numbers(answers, ids=NUMBERS):
    """Every numeric item of `ids` answered (a number, or text such as '1.75 GB') within its
    tolerance; returns the score card."""
    return _check_items(answers, ids, _number_line, "number")


def check_choices(answers, ids=CHOICES):
    """Every choice item of `ids` answered with its correct letter; returns the score card."""
    return _check_items(answers, ids, _choice_line, "letter")
