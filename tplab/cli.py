"""`tplab` on the command line: one subcommand per job, each living beside the idea it runs.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`; this
file only wires them up, so `tplab --help` lists the whole tool.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "build": ("tplab.grading.build", "write exercises/ from solutions/ (--check: fail if stale)"),
    "grade": ("tplab.grading.grade",
              "grade exercise notebooks against the reference checks (--csv: a gradebook)"),
    "lab": ("tplab.lab", "open JupyterLab on the course (127.0.0.1, token on)"),
    "doctor": ("tplab.doctor", "check the set-up: torch, the course model, the package"),
    "generate": ("tplab.models.generate_command",
                 "SmolLM2-135M writes text across tensor-parallel ranks"),
    "interview": ("tplab.interview.cli",
                  "practise interview questions: asks, checks, explains, keeps a score"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tplab",
                                     description="tplab: parallelism for LLMs, hands on.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        # Raw: a command's description is its module docstring, whose line breaks (examples,
        # lists) are meant; the default formatter would run them into one paragraph.
        sp = sub.add_parser(name, help=help_text, description=help_text,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:  # import only the command asked for: a fast --help, no stray failures
            module = importlib.import_module(module_name)
            sp.description = (module.__doc__ or help_text).strip()
            module.add_arguments(sp)
    args = parser.parse_args(argv)
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
