"""`tplab interview`: practise the interview bank in a terminal, scored as you go.

    tplab interview                      5 random questions, in English
    tplab interview --lang zh --n 10     10 questions, in Chinese
    tplab interview --topic pipeline --seed 3

Each question is asked, your answer read from standard input, checked, and explained; the
score is printed at the end. Numbers may carry units or be fractions ('1.75 GB', '3/11',
'27%'); choices are a letter. A code question shows a buggy rank function: fix it in a file
and type the file's path (it runs on 2 real ranks under a short deadline), or press Enter to
skip. The same seed asks the same questions.
"""
from __future__ import annotations

import argparse
import random
import sys

from tplab.interview import TOPICS, quiz
from tplab.interview.items import LETTERS

__all__ = ["add_arguments", "run", "main"]

LABELS = {
    "en": {"answer": "your answer", "right": "right", "wrong": "wrong", "skipped": "skipped",
           "model": "model answer", "why": "why", "score": "score", "lesson": "lesson",
           "numeric": "a number in {unit}, within ±{tol}", "choice": "a letter",
           "code": "path to your fixed file (Enter: skip)", "running": "running your fix on "
           "{world} ranks (deadline {t:.0f} s)…", "nofile": "cannot read {path}: {err}",
           "you": "your choice", "stop": "."},
    "zh": {"answer": "你的答案", "right": "正确", "wrong": "错误", "skipped": "跳过",
           "model": "参考答案", "why": "解析", "score": "得分", "lesson": "对应课程",
           "numeric": "一个数（单位 {unit}，误差 ±{tol}）", "choice": "一个字母",
           "code": "修复后文件的路径（直接回车跳过）", "running": "在 {world} 个 rank "
           "上运行你的代码"
           "（时限 {t:.0f} 秒）…", "nofile": "无法读取 {path}：{err}", "you": "你的选择",
           "stop": "。"},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", choices=TOPICS, default=None, help="ask only this topic")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="question language")
    parser.add_argument("--n", type=int, default=5, help="how many questions (default 5)")
    parser.add_argument("--seed", type=int, default=None,
                        help="which questions (default: a new draw, printed so you can repeat it)")


def _ask(item, number: int, total: int, lang: str, stdin, out) -> str | None:
    text = LABELS[lang]
    out.write(f"\n[{number}/{total}] {item.id} · {item.topic} · {'★' * item.difficulty} · "
              f"{text['lesson']} {item.lesson}\n{item.question(lang)}\n")
    if item.kind == "choice":
        for letter, option in zip(LETTERS, item.options):
            out.write(f"  {letter}. {option.text_zh if lang == 'zh' else option.text_en}\n")
        hint = text["choice"]
    elif item.kind == "numeric":
        hint = text["numeric"].format(unit=item.numeric.unit or "-", tol=f"{item.numeric.rtol:.0%}")
    else:
        out.write("\n" + item.code.source(item.code.buggy) + "\n")
        hint = text["code"]
    out.write(f"{text['answer']} ({hint}): ")
    out.flush()
    line = stdin.readline()
    if not (hasattr(stdin, "isatty") and stdin.isatty()):
        out.write(line.strip() + "\n")   # scripted input: show it where a terminal echoes it
    return None if line == "" else line.strip()   # None: end of input


def _code_answer(item, path: str, lang: str, out) -> str | None:
    text = LABELS[lang]
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        out.write(text["nofile"].format(path=path, err=exc.strerror or exc) + "\n")
        return None
    out.write(text["running"].format(world=item.code.world, t=item.code.timeout) + "\n")
    out.flush()
    return source


def _verdict(item, answer, lang: str, out) -> bool:
    text = LABELS[lang]
    if answer in (None, ""):
        out.write(f"{text['skipped']}{text['stop']}\n")
        ok = False
    elif item.kind == "code":
        from tplab.interview.bugs import check_source
        result = check_source(item.code.task, answer, item.code.world, item.code.timeout)
        ok = result.ok
        out.write(f"{text['right'] if ok else text['wrong']}: {result.message}\n")
    else:
        ok = item.check(answer)
        out.write(f"{text['right'] if ok else text['wrong']}{text['stop']}\n")
        if item.kind == "choice" and not ok and item.option_reason(answer):
            out.write(f"{text['you']} {answer.upper()}: {item.option_reason(answer)}\n")
    if item.kind != "code" or not ok:
        out.write(f"{text['model']}: {item.shown_answer(lang)}\n")
    out.write(f"{text['why']}: {item.explain(lang)}\n")
    return ok


def main(argv: list[str] | None = None, stdin=None, stdout=None) -> int:
    """Run the quiz: arguments as on the command line, answers read from `stdin`, everything
    written to `stdout` (defaults: the terminal's). Returns 0."""
    parser = argparse.ArgumentParser(prog="tplab interview", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv), stdin, stdout)


def run(args: argparse.Namespace, stdin=None, stdout=None) -> int:
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if stdout is None else stdout
    seed = args.seed if args.seed is not None else random.randrange(10_000)
    try:
        items = quiz(args.n, seed, args.topic)
    except ValueError as exc:
        out.write(f"tplab interview: {exc}\n")
        return 2
    out.write(f"{len(items)} questions (seed {seed}; --seed {seed} asks them again)\n")
    right = 0
    for number, item in enumerate(items, 1):
        answer = _ask(item, number, len(items), args.lang, stdin, out)
        if item.kind == "code" and answer:
            answer = _code_answer(item, answer, args.lang, out)
        right += _verdict(item, answer, args.lang, out)
    out.write(f"\n{LABELS[args.lang]['score']}: {right}/{len(items)}\n")
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
