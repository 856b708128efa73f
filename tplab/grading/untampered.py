"""Refuse to grade with check functions the learner's code replaced.

Restoring the check cells (`restore.py`) keeps a learner from editing a check, but a check cell
imports its functions from `tplab.checks` at run time, in the learner's kernel: a cell that
assigns `tplab.checks.lesson08.check_numbers = lambda *a: None` would make the restored check
import the stand-in. So each restored check cell first calls `verify` on the names it imports:
every function or class must still be the one defined in the course's own files (under the
`tplab` package), else the check fails with a message that says why. Values that are not
callables (tables of cases, constants) are not checked here; a check that trusts such a value
keeps its own copy.

This is a guard against a one-line patch, not a sandbox: code in the same process can always
reach further (torch itself); the grader's isolation is the subprocess and the deadline.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
import types
from pathlib import Path

__all__ = ["verify", "guard_line"]

PACKAGE = Path(__file__).resolve().parents[1]  # .../tplab
_IMPORT = re.compile(r"^[ \t]*from[ \t]+(tplab\.checks(?:\.\w+)*)[ \t]+import[ \t]+"
                     r"(?:\(([^)]*)\)|([^\n#;]+))", re.M)


def _defined_in(obj):
    """The file a callable was defined in; None for a builtin (no notebook cell defines one)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    obj = inspect.unwrap(obj)
    if getattr(obj, "__module__", None) == "__main__":
        return "a notebook cell"
    try:
        return inspect.getsourcefile(obj) or "an unknown file"
    except TypeError:
        return None


def _replaced(obj, strict: bool) -> bool:
    """Whether `obj` was put there by the learner. `strict`: it must come from tplab's files (a
    name a check cell imports); else only what a notebook defined counts (a check module's
    other attributes include torch's and Python's functions)."""
    if not callable(obj) or isinstance(obj, types.ModuleType):
        return False
    where = _defined_in(obj)
    if where is None:  # a builtin: never what a check module defines under a check's name
        return strict
    if where == "a notebook cell":
        return True
    return strict and not Path(where).resolve().is_relative_to(PACKAGE)


def verify(module: str, names) -> None:
    """Raise AssertionError when `module.name` (a function or class a check cell imports) was
    not defined in tplab's files; for a name that is itself a check module, when any of its
    attributes was defined in the notebook."""
    loaded = importlib.import_module(module)
    for name in names:
        obj = getattr(loaded, name, None)
        if isinstance(obj, types.ModuleType):
            bad = [f"{obj.__name__}.{k}" for k, v in vars(obj).items() if _replaced(v, False)]
        else:
            bad = [f"{module}.{name}"] if _replaced(obj, True) else []
        if bad:
            raise AssertionError(
                f"{', '.join(bad)} replaced by code in this notebook: grading uses the course's "
                f"own checks. Remove the cell that assigns to {bad[0]}.")


def guard_line(source: str) -> str:
    """The line a restored check cell starts with: `verify` for each `from tplab.checks.X
    import ...` in `source`; '' when it imports nothing from tplab.checks."""
    calls = []
    for module, wrapped, names in _IMPORT.findall(source):
        parts = re.sub(r"#[^\n]*", "", wrapped or names).replace("\n", " ").split(",")
        listed = tuple(n.split()[0] for n in parts if n.strip())  # "name as alias": name
        calls.append(f"verify({module!r}, {listed!r})")
    if not calls:
        return ""
    return ("from tplab.grading.untampered import verify; " + "; ".join(calls)
            + "  # tplab grade: the course's own checks\n")
