"""`tplab generate`: help that keeps its examples apart, and a report that says what ran (ranks,
threads per rank, load time) beside how fast it decoded, so speeds at different --tp compare
fairly."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tplab import cli
from tplab.models.generate_command import default_threads, summary, usable_cores

EXAMPLES = [
    'tplab generate "What is tensor parallelism?"',
    'tplab generate --tp 3 --max-new-tokens 40 "What is tensor parallelism?"',
    'tplab generate --no-chat --temperature 0.8 --seed 1 "Once upon a time"',
]


def test_help_shows_each_example_on_its_own_line_and_the_threads_option(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["generate", "--help"])
    assert done.value.code == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    for example in EXAMPLES:
        assert example in lines, f"{example!r} is not a line of its own"
    assert any(line.startswith("--threads N") for line in lines)
    assert "[load 6.1 s; weights per rank 274, 240 MiB]" in lines  # the sample report, line by line


def test_threads_default_to_the_cores_shared_out_between_ranks():
    assert [default_threads(tp, 2) for tp in (1, 2, 3)] == [2, 1, 1]
    assert [default_threads(tp, 8) for tp in (1, 2, 3, 9)] == [8, 4, 2, 1]


def stats(tokens, *bytes_per_rank):
    return [{"tokens": tokens, "load_s": 5.0 + r, "prefill_s": 0.25, "decode_s": 3.5,
             "bytes": b * 2**20,
             "threads": 1} for r, b in enumerate(bytes_per_rank)]


def test_the_report_names_ranks_threads_load_and_decode_speed():
    assert summary(2, 1, 2, True, 31, stats(64, 274, 240)) == (
        "[tp=2: 2 ranks x 1 thread each = 2 threads on 2 cores (default: cores / ranks)]\n"
        "[load 6.0 s; weights per rank 274, 240 MiB]\n"  # the slowest rank's load
        "[prompt 31 tokens in 0.25 s; decode 63 tokens in 3.50 s = 18.0 tok/s]")
    assert summary(1, 2, 2, False, 1, stats(8, 513)).splitlines()[0] == (
        "[tp=1: 1 rank x 2 threads = 2 threads on 2 cores]")
    assert "more threads than cores" in summary(3, 1, 2, True, 5, stats(8, 1, 1, 1)).splitlines()[0]
    assert summary(1, 1, 1, False, 3, stats(1, 513)).splitlines()[2] == (
        "[prompt 3 tokens in 0.25 s; decode: none (it stopped at the first token, so no tok/s)]")


def test_generate_prints_the_completion_and_the_report():
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", "--max-new-tokens", "3",
                           "What is a GPU?"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "no completion streamed to stdout"
    threads, cores = default_threads(1, usable_cores()), usable_cores()
    s = "" if threads == 1 else "s"
    report = done.stderr.strip().splitlines()[-3:]
    cores_s = "" if cores == 1 else "s"
    assert report[0] == (f"[tp=1: 1 rank x {threads} thread{s} = {threads} thread{s} on {cores} "
                         f"core{cores_s} (default: cores / ranks)]")
    assert re.fullmatch(r"\[load \d+\.\d s; weights per rank \d+ MiB\]", report[1]), report[1]
    assert re.fullmatch(r"\[prompt \d+ tokens in \d+\.\d\d s; "
                        r"decode 2 tokens in \d+\.\d\d s = \d+\.\d tok/s\]",
                        report[2]), report[2]


def test_the_report_of_a_pipeline_names_its_stages_and_several_prompts_speed():
    lines = summary(2, 1, 2, True, 31, stats(64, 300, 300, 311, 311), 2, [(0, 15), (15, 30)])
    assert lines.splitlines()[:2] == [
        "[pp=2 x tp=2: 4 ranks x 1 thread each = 4 threads on 2 cores (default: cores / ranks)"
        "; more threads than cores: they take turns, which slows every rank]",
        "[load 8.0 s; weights per rank 300, 300, 311, 311 MiB; stages hold layers 0-14 | 15-29]"]
    several = stats(5, 311, 311)
    several[0]["served"] = {"tokens": [[1] * 5, [1] * 3, [1] * 4], "elapsed_s": 2.0,
                            "first_token_s": [0.5, 0.25, 0.75], "latency_s": [2.0, 1.0, 1.5]}
    lines = summary(1, 1, 2, False, [31, 12, 20], several, 2, [(0, 15), (15, 30)])
    assert lines.splitlines()[2] == (
        "[3 prompts (31, 12, 20 tokens) in flight: first tokens after 0.25-0.75 s; "
        "12 tokens in 2.00 s = 6.0 tok/s; latency median 1.50 s, max 2.00 s]")


def test_a_pipeline_of_two_stages_serves_two_prompts_and_reports_it():
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", "--pp", "2", "--threads",
                           "1", "--max-new-tokens", "3", "--prompt", "What is a GPU?",
                           "--prompt", "Why is the sky blue?"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # each completion whole, numbered, as it ends
    assert sorted(line[:4] for line in done.stdout.splitlines()) == ["[1] ", "[2] "], done.stdout
    report = done.stderr.strip().splitlines()[-3:]
    cores = usable_cores()
    assert report[0].startswith(f"[pp=2 x tp=1: 2 ranks x 1 thread each = 2 threads on "
                                f"{cores} core"), report[0]
    assert re.fullmatch(r"\[load \d+\.\d s; weights per rank \d+, \d+ MiB; "
                        r"stages hold layers 0-14 \| 15-29\]", report[1]), report[1]
    assert re.fullmatch(r"\[2 prompts \(\d+, \d+ tokens\) in flight: first tokens after "
                        r"\d+\.\d\d-\d+\.\d\d s; 6 tokens in \d+\.\d\d s = \d+\.\d tok/s; "
                        r"latency median \d+\.\d\d s, max \d+\.\d\d s\]", report[2]), report[2]


@pytest.mark.parametrize("argv, message", [
    (["--pp", "0"], "--pp must be at least 1"),
    (["--pp", "31"], "--pp must be from 1 to 30 (the model has 30 layers"),
    (["--pp", "2", "--tp", "10"], "--tp must be from 1 to 9"),
])
def test_a_bad_layout_is_one_line_and_status_2(argv, message):
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", *argv, "hi"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr
