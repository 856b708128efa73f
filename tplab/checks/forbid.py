"""Hiding the answer while a learner's function runs: the one helper every exercise uses.

Why. Some exercises ask for what tplab already computes (lesson 04's sharding plan, lesson 05's
schedules and formulas): a check that called the learner's function with tplab's answer within
reach could be passed by handing that answer over. `forbidden` makes each answer raise an
AssertionError that says so, under every name that holds it while the block runs: in the
notebook's globals, in the default arguments of the notebook's functions
(`def f(p, m, _answer=one_f_one_b)`), and in every loaded tplab or
torch.distributed.pipelining module (so `from tplab.tp.blocks import attention_shards` or an
import inside the answer finds the stand-in too). Afterwards every such name gets its function
back, also in a module first imported meanwhile (it bound the stand-in).

    with forbidden(globals(), {one_f_one_b: "my_1f1b called tplab.pp.one_f_one_b, ..."}):
        lists = my_1f1b(4, 8, 0)
"""
from __future__ import annotations

import contextlib
import sys
import types

__all__ = ["forbidden"]

MODULES = ("tplab", "torch.distributed.pipelining")   # module names whose own names are swapped


def _spaces(namespace: dict) -> list[dict]:
    return [namespace] + [vars(module) for name, module in list(sys.modules.items())
                          if module is not None
                          and any(name == top or name.startswith(top + ".") for top in MODULES)]


def _raising(message: str):
    def stand_in(*args, **kwargs):
        raise AssertionError(message)
    return stand_in


def _swap(namespace: dict, swaps: dict) -> None:
    """Replace every value whose id is a key of `swaps` by swaps[id]: module names, notebook
    names, and the notebook's functions' default arguments."""
    for space in _spaces(namespace):
        for name, value in list(space.items()):
            if id(value) in swaps:
                space[name] = swaps[id(value)]
    for fn in list(namespace.values()):
        if not isinstance(fn, types.FunctionType):
            continue
        if fn.__defaults__ and any(id(d) in swaps for d in fn.__defaults__):
            fn.__defaults__ = tuple(swaps.get(id(d), d) for d in fn.__defaults__)
        if fn.__kwdefaults__ and any(id(d) in swaps for d in fn.__kwdefaults__.values()):
            fn.__kwdefaults__ = {k: swaps.get(id(d), d) for k, d in fn.__kwdefaults__.items()}


@contextlib.contextmanager
def forbidden(namespace: dict, answers: dict):
    """While the block runs, each function in `answers` ({function: message}) raises an
    AssertionError with its message, under every name that holds it (see the module's
    docstring); afterwards each gets its function back."""
    stand_ins = {id(answer): _raising(message) for answer, message in answers.items()}
    originals = {id(stand_ins[id(answer)]): answer for answer in answers}
    _swap(namespace, stand_ins)
    try:
        yield
    finally:
        _swap(namespace, originals)
