"""Hiding the answer while a learner's function runs: the one helper every exercise uses.

Why. Some exercises ask for what tplab already computes (lesson 04's sharding plan, lesson 05's
schedules and formulas): a check that called the learner's function with tplab's answer within
reach could be passed by handing that answer over. `forbidden` makes each answer raise an
AssertionError that says so, under every name that holds it while the block runs: in the
notebook's globals, in the default arguments of the notebook's functions
(`def f(p, m, _answer=one_f_one_b)`, also inside a tuple, list or dict default:
`_lib=(Grid,)`), in their closures, and in every loaded tplab or
torch.distributed.pipelining module (so `from tplab.tp.blocks import attention_shards` or an
import inside the answer finds the stand-in too). Afterwards every such name gets its function
back, also in a module first imported meanwhile (it bound the stand-in).

A name swap cannot reach a module reloaded meanwhile (`importlib.reload(tplab.mesh).Grid` is a
new class): so the library's answers the checks hide (tplab.mesh.Grid, tplab.cost.plan_decode,
tplab.zero.ShardedOptimizer, ...) call `guard("<module>.<name>")` first, which raises while
a `forbidden` block hides that name. The registry survives a reload of this module too.

    with forbidden(globals(), {one_f_one_b: "my_1f1b called tplab.pp.one_f_one_b, ..."}):
        lists = my_1f1b(4, 8, 0)
"""
from __future__ import annotations

import contextlib
import sys
import types

__all__ = ["forbidden", "guard"]

MODULES = ("tplab", "torch.distributed.pipelining")   # module names whose own names are swapped


# "module.qualname" -> message, while a block hides it; kept across importlib.reload(forbid)
_HIDDEN: dict[str, str] = globals().get("_HIDDEN", {})


def guard(name: str) -> None:
    """Called first by a library answer (`guard("tplab.mesh.Grid")`): raises the check's
    AssertionError while a `forbidden` block hides `name`, whichever copy of the module runs."""
    message = _HIDDEN.get(name)
    if message is not None:
        raise AssertionError(message)


def _key(answer) -> str:
    return f"{getattr(answer, '__module__', '')}.{getattr(answer, '__qualname__', '')}"


def _spaces(namespace: dict) -> list[dict]:
    return [namespace] + [vars(module) for name, module in list(sys.modules.items())
                          if module is not None
                          and any(name == top or name.startswith(top + ".") for top in MODULES)]


def _raising(message: str):
    def stand_in(*args, **kwargs):
        raise AssertionError(message)
    return stand_in


def _swapped(value, swaps: dict):
    """`value` with swapped items: the stand-in itself, or a tuple, list or dict holding it
    (lists and dicts changed in place, a tuple rebuilt); other values unchanged."""
    if id(value) in swaps:
        return swaps[id(value)]
    if isinstance(value, tuple) and any(id(v) in swaps for v in value):
        return tuple(swaps.get(id(v), v) for v in value)
    if isinstance(value, list):
        value[:] = [swaps.get(id(v), v) for v in value]
    elif isinstance(value, dict):
        for k, v in list(value.items()):
            if id(v) in swaps:
                value[k] = swaps[id(v)]
    return value


def _swap_function(fn: types.FunctionType, swaps: dict) -> None:
    """A function's default arguments (and containers in them) and its closure's cells."""
    if fn.__defaults__:
        fn.__defaults__ = tuple(_swapped(d, swaps) for d in fn.__defaults__)
    if fn.__kwdefaults__:
        fn.__kwdefaults__ = {k: _swapped(d, swaps) for k, d in fn.__kwdefaults__.items()}
    for cell in fn.__closure__ or ():
        try:
            cell.cell_contents = _swapped(cell.cell_contents, swaps)
        except ValueError:                      # an empty cell
            pass


def _swap(namespace: dict, swaps: dict) -> None:
    """Replace every value whose id is a key of `swaps` by swaps[id]: module names, notebook
    names, and the notebook's functions' (and classes' methods') defaults and closures."""
    for space in _spaces(namespace):
        for name, value in list(space.items()):
            if id(value) in swaps:
                space[name] = swaps[id(value)]
    for value in list(namespace.values()):
        if isinstance(value, types.FunctionType):
            _swap_function(value, swaps)
        elif isinstance(value, type) and value.__module__ == namespace.get("__name__"):
            for method in list(vars(value).values()):
                method = getattr(method, "__func__", method)
                if isinstance(method, types.FunctionType):
                    _swap_function(method, swaps)


@contextlib.contextmanager
def forbidden(namespace: dict, answers: dict):
    """While the block runs, each function in `answers` ({function: message}) raises an
    AssertionError with its message, under every name that holds it (see the module's
    docstring); afterwards each gets its function back."""
    stand_ins = {id(answer): _raising(message) for answer, message in answers.items()}
    originals = {id(stand_ins[id(answer)]): answer for answer in answers}
    keys = {_key(answer): message for answer, message in answers.items()}
    _swap(namespace, stand_ins)
    _HIDDEN.update(keys)
    try:
        yield
    finally:
        for key in keys:
            _HIDDEN.pop(key, None)
        _swap(namespace, originals)
