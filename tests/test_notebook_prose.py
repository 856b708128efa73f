"""The lessons' prose never quotes a measurement that the run did not produce.

Timings, bandwidths, throughputs, speed-ups and shares change from machine to machine and run to
run, while a markdown cell is written once. So a lesson states such a figure in one of two ways:

* **rendered from the run**: a code cell computes the sentence from the values it measured and
  displays it (`IPython.display.Markdown`); its output is tagged ``nbval-ignore-output`` when it
  holds a timing, since it changes run to run. The figure and the run cannot disagree.
* **cited**: a figure from elsewhere (a paper, a README, a data sheet, or a range observed over
  runs of a named benchmark) sits in a sentence that names its source as ``(source: ...)``.

A markdown cell may therefore not contain a *measured-looking figure* outside a cited sentence:
a number with a unit of time (µs, ms, s), bandwidth (GB/s, ...), throughput (tokens/s, rows/s,
tok/s), a percentage or a ratio (``1.5×``, ``2x``), or a time in words ("tens of microseconds",
"under a millisecond"). A figure that is not a measurement (a target, a definition, arithmetic on
the model's shape) is declared in the cell with an invisible comment that lists it verbatim:
``<!-- not measured: 1.5× (the target); 21% (28.3 M of 134.5 M parameters) -->`` — each entry up
to its parenthesis must occur in the cell, so a stale declaration fails too.

What this cannot see: qualitative claims about a measurement ("hardly faster, if at all") carry no
number to check. They belong in rendered cells as well; review catches the rest.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_NUMBER = r"(?<![\w.])~?\d+(?:[.,]\d+)*(?:\s*(?:–|-|to)\s*~?\d+(?:[.,]\d+)*)?"
_UNIT = (r"(?:µs|us|ms|s|seconds?|minutes?|"
         r"[KMGT]i?B/s|tokens?/s|tok/s|rows/s|messages/s|"
         r"%|per\s*cent|percent)")
MEASURED = re.compile(
    # a number with a unit: 152 µs, 40–55 ms, ~20 GB/s, 250 tokens/s, 85 %, 25 s
    rf"{_NUMBER}\s*{_UNIT}(?![\w/])"
    # a ratio: 1.5×, 2x, 1.2-1.4× (not the multiplication sign of "2 × 30")
    rf"|{_NUMBER}[×x](?![\w\d])(?!\s*\d)"
    # a time in words: tens of microseconds, under a millisecond, a few seconds, two minutes
    r"|\b(?:a|an|one|two|three|four|five|ten|a\s+few|some|tens\s+of|hundreds\s+of|several)\s+"
    r"(?:(?:micro|milli|nano)seconds?|seconds|minutes?)\b",   # not "a second core"
    re.IGNORECASE)
CITED = re.compile(r"\(source:[^)]*\)", re.IGNORECASE)
DECLARED = re.compile(r"<!--\s*not measured:(.*?)-->", re.DOTALL | re.IGNORECASE)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _prose(markdown: str) -> str:
    """The running text of a markdown cell: no code, LaTeX, HTML comments or links' targets."""
    text = DECLARED.sub(" ", markdown)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"`[^`]*`", " CODE ", text)
    text = re.sub(r"\$\$.*?\$\$", " MATH ", text, flags=re.DOTALL)
    text = re.sub(r"\$[^$]*\$", " MATH ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text


def _sentences(text: str) -> list[str]:
    """Sentences, list items and table rows: the scope in which a figure must name its source."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[*\-+]|\d+\.|\|)\s)", text):
        out += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])", " ".join(block.split())) if s]
    return out


def declared_figures(markdown: str) -> list[str]:
    """The figures a cell declares not measured, each as written (its explanation removed)."""
    figures = []
    for body in DECLARED.findall(markdown):
        for entry in body.split(";"):
            figure = entry.split("(", 1)[0].strip()
            if figure:
                figures.append(figure)
    return figures


def uncited_figures(markdown: str) -> list[str]:
    """Measured-looking figures in a markdown cell that are neither cited nor declared not measured.

    Returns one line per figure: the figure and the sentence it stands in.
    """
    problems = []
    text = _prose(markdown)
    for figure in declared_figures(markdown):
        if figure not in text:
            problems.append(f"declared not measured but absent from the cell: {figure!r}")
        text = text.replace(figure, " DECLARED ", 1)  # one declaration excuses one figure
    for sentence in _sentences(text):
        if CITED.search(sentence):
            continue
        for match in MEASURED.finditer(sentence):
            problems.append(f"{match.group(0).strip()!r} in: {sentence[:200]}")
    return problems


def _outputs_text(cell: dict, mime: str) -> str:
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if mime in data:
            value = data[mime]
            parts.append("".join(value) if isinstance(value, list) else value)
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_quotes_no_measurement(path):
    """A lesson's markdown holds no uncited measured figure: measurements come from the run."""
    problems = []
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "markdown":
            figures = uncited_figures("".join(cell["source"]))
            problems += [f"cell {i} ({cell.get('id')}): {p}" for p in figures]
    assert not problems, (
        f"{path.name}: measured-looking figures in markdown. "
        "Render them from the run in a code cell "
        "(display(Markdown(...)), tagged nbval-ignore-output if it is a timing), cite them with "
        "'(source: ...)' in the same sentence, or declare a figure that is no measurement with "
        "<!-- not measured: FIGURE (why) -->:\n  " + "\n  ".join(problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_rendered_timings_are_ignored_by_nbval(path):
    """Rendered prose that quotes a timing changes run to run: nbval must not compare it."""
    problems = []
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        rendered = _outputs_text(cell, "text/markdown")
        tags = cell.get("metadata", {}).get("tags", [])
        if rendered and MEASURED.search(_prose(rendered)) and "nbval-ignore-output" not in tags:
            figure = MEASURED.search(_prose(rendered)).group(0)
            problems.append(f"cell {i} ({cell.get('id')}) renders {figure!r}")
    assert not problems, (
        f"{path.name}: tag these cells nbval-ignore-output:\n  " + "\n  ".join(problems))


# The checker itself, on sentences lessons once printed next to outputs that contradicted them.
CONTRADICTED = [
    # lesson 04, next to 5.0 ms of communication per token printed
    "TP 2 only adds the all-reduce term — under a millisecond with the fast all-reduce "
    "(63 × its latency of about ten microseconds), tens of milliseconds with gloo "
    "(63 × some 0.5 ms).",
    # lesson 04, next to 15.5 GB/s and 58.7 ms printed
    "At this machine's ~20 GB/s that alone takes 25–30 ms, so with transformers at some "
    "40–55 ms per token, 1.5× leaves tplab only the few milliseconds printed above.",
    # lesson 00, next to 152-1949 µs printed
    "And a barrier already costs tens of microseconds or more on CPU ranks.",
    # lesson 04
    "It takes about two minutes (loading transformers alone is 25 s).",
    # lesson 02
    "we have seen two ranks come out anywhere from slower than one rank to about 1.4× faster",
]


@pytest.mark.parametrize("sentence", CONTRADICTED)
def test_checker_flags_uncited_measurements(sentence):
    assert uncited_figures(sentence)


def test_checker_accepts_cited_declared_and_non_measured_numbers():
    assert not uncited_figures(
        "gpt-fast measured 104.9 tokens/s on one GPU (source: gpt-fast's README).")
    assert not uncited_figures(
        "30 layers × 2 × 3 heads × 64 × 4 bytes = 46 KB per token; 2 × 30 = 60 all-reduces.")
    assert not uncited_figures(
        "The target is 1.5× transformers.\n<!-- not measured: 1.5× (the target) -->")
    assert not uncited_figures(
        "Time it with `x = 2.5 ms` in code and $T = 2\\alpha$ in math: nothing measured.")
    # a stale declaration
    assert uncited_figures("<!-- not measured: 3× (gone) --> nothing here")
    # the source is per sentence
    assert uncited_figures("It takes 25 s. Another sentence cites (source: a paper).")


# "0.21× faster" says the opposite of what it measured: a rendered ratio below 1 must change its
# word ("4.68× slower"), as lessons render them with a helper that picks it.
BACKWARDS = re.compile(r"(?<![\w.])0\.\d+\s*[×x]\s+(faster|slower|quicker|more|less)\b")


def backwards_ratios(text: str) -> list[str]:
    return [m.group(0) for m in BACKWARDS.finditer(text)]


SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_ratio_below_one_reads_as_faster_or_slower(path):
    problems = []
    for i, cell in enumerate(_load(path)["cells"]):
        texts = ["".join(cell["source"])] if cell["cell_type"] == "markdown" else [
            _outputs_text(cell, "text/markdown"), _outputs_text(cell, "text/plain"),
            "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))]
        problems += [f"cell {i}: {r!r}" for t in texts for r in backwards_ratios(t)]
    assert not problems, (f"{path.name}: a ratio below 1 with 'faster'/'slower' reads backwards; "
                          f"invert it and change the word:\n  " + "\n  ".join(problems))


def test_backwards_ratio_checker():
    assert backwards_ratios("TP 1's second thread made it 0.21× faster than one thread")
    assert not backwards_ratios("made it 4.68× slower than one thread; 1.05× faster; 0.5× the time")
