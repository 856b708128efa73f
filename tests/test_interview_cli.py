"""`tplab interview` driven with scripted input: it asks the seeded questions, checks each
answer, explains, and prints the score; code questions take a file path and run it on ranks."""
from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

from tplab.interview import quiz
from tplab.interview.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _right(item, tmp_path) -> str:
    """What a learner types to answer `item` correctly (a code answer is a file's path)."""
    if item.kind == "code":
        path = tmp_path / f"{item.id}.py"
        path.write_text(item.model_answer())
        return str(path)
    answer = item.model_answer()
    return f"{answer:.4g}" if item.kind == "numeric" else answer.lower()


def _run(argv, script: str) -> str:
    out = StringIO()
    assert main(argv, stdin=StringIO(script), stdout=out) == 0
    return out.getvalue()


def test_three_seeded_questions_right_wrong_skipped(tmp_path):
    items = quiz(3, seed=1)
    wrong = items[1].wrong_answers[0]
    if items[1].kind == "code":   # a wrong fix, in a file
        (tmp_path / "wrong.py").write_text(wrong)
        wrong = str(tmp_path / "wrong.py")
    text = _run(["--n", "3", "--seed", "1"], f"{_right(items[0], tmp_path)}\n{wrong}\n\n")
    assert "seed 1" in text and text.count("\n[") == 3
    for item in items:
        assert item.question_en in text and item.explain("en") in text
        assert f"model answer: {item.shown_answer()}" in text or item.kind == "code"
    verdicts = [line for line in text.splitlines() if line.startswith(("right", "wrong",
                                                                       "skipped"))]
    assert [v.split(".")[0].split(":")[0] for v in verdicts] == ["right", "wrong", "skipped"]
    assert text.rstrip().endswith("score: 1/3")
    if items[1].kind == "choice":   # a wrong choice is told why it is wrong
        assert f"your choice {wrong}: Wrong" in text


def test_chinese_and_end_of_input():
    items = quiz(2, seed=4)
    text = _run(["--n", "2", "--seed", "4", "--lang", "zh"], "")   # no answers at all
    assert items[0].question_zh in text and items[1].question_zh in text
    assert text.count("跳过。") == 2 and text.rstrip().endswith("得分: 0/2")


def test_code_questions_take_a_file_and_run_it_on_ranks(tmp_path):
    items = quiz(7, seed=0, topic="debugging")
    code = [i for i in items if i.kind == "code"]
    assert len(code) == 2
    script = "".join(_right(i, tmp_path) + "\n" for i in items)
    text = _run(["--topic", "debugging", "--n", "7", "--seed", "0"], script)
    assert text.count("right: all 2 ranks equal the one-process reference") == 2
    assert "def buggy_pass_right" in text   # the bug is shown
    assert text.rstrip().endswith("score: 7/7")
    missing = _run(["--topic", "debugging", "--n", "7", "--seed", "0"],
                   "\n".join(str(tmp_path / "absent.py") if i.kind == "code" else "x"
                             for i in items) + "\n")
    assert missing.count("cannot read") == 2 and missing.rstrip().endswith("score: 0/7")


def test_bad_arguments_and_the_terminal_entry_point():
    assert "between 1 and" in _bad(["--n", "500"])
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "tplab.interview.cli", "--n", "1", "--seed",
                           "3"], input="A\n", capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "score: " in done.stdout and "[1/1]" in done.stdout


def _bad(argv) -> str:
    out = StringIO()
    assert main(argv, stdin=StringIO(""), stdout=out) == 2
    return out.getvalue()
