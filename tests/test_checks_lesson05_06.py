"""Checks of lessons 05 and 06: the library's answers raise however a notebook holds them, and a
right answer's harmless form (1F1B items as lists) is accepted.

Why: `forbidden` swaps names, defaults and closures, not values kept in a dict or a class
subclassed before the check; each answer it hides therefore calls `forbid.guard` with the key
`forbidden` registers (module + qualname), and these tests hold every hidden answer to that.
Fast: no ranks are launched (the wrong-answer rounds grade the notebooks).
"""
import inspect
import sys
import types
from pathlib import Path

import pytest

from tplab.checks import lesson05, lesson05_predict, lesson05_schedule, lesson06
from tplab.checks.forbid import forbidden
from tplab.serve import Request, SleepEngine, serve, serve_ray

OK_LISTS = '''
def my_1f1b(p, m, rank):
    # correct order, items as lists ["F", i] rather than tuples
    warmup = min(p - rank - 1, m)
    acts = [["F", i] for i in range(warmup)]
    for i in range(m - warmup):
        acts += [["F", warmup + i], ["B", i]]
    return acts + [["B", i] for i in range(m - warmup, m)]
'''


def _answers():
    """Every answer lesson 05's and 06's checks hide from the learner's function."""
    found = dict(lesson05_predict.ANSWERS_PREDICT)
    found.update(lesson05_schedule.answers_1f1b())
    found.update(lesson05.NOT_RUN_STEP)
    for obj in (lesson06.reference_schedule, lesson06.makespan, lesson06.Scheduler, serve,
                serve_ray):
        found[obj] = f"{obj.__qualname__} is hidden"
    return {a: m for a, m in found.items() if a.__module__.startswith("tplab")}


@pytest.mark.parametrize("answer", [a for a in _answers() if a not in (serve, serve_ray)],
                         ids=lambda a: a.__qualname__)   # those two build a Scheduler first
def test_each_hidden_answer_guards_with_forbiddens_key(answer):
    code = answer.__init__ if isinstance(answer, type) else answer
    key = f"{answer.__module__}.{answer.__qualname__}"
    assert f'guard("{key}")' in inspect.getsource(code), f"{key} does not call guard({key!r})"


CALLS = {   # an answer held in a dict, called with valid arguments while hidden
    "one_f_one_b": lambda f: f(2, 3, 0), "gpipe": lambda f: f(2, 3, 0),
    "interleaved_1f1b": lambda f: f(2, 2, 2, 0), "schedule": lambda f: f("1f1b", 2, 3, 0),
    "peak_inflight": lambda f: f([]), "bubble": lambda f: f(2, 3),
    "inflight_formula": lambda f: f("1f1b", 2, 3, 0), "bubble_measured": lambda f: f([]),
    "run_step": lambda f: f([], [], recv_shape=(1,)),
    "reference_schedule": lambda f: f([2, 1], 1), "makespan": lambda f: f([(0, 0, 1)]),
    "Scheduler": lambda f: f([], 1, "dynamic", "fifo"),
    "serve": lambda f: f([Request(0, "", (1,), 1)], SleepEngine(0.01), workers=1),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_hidden_answer_held_in_a_dict_raises(name):
    held = {a.__qualname__: a for a in _answers()}
    answers = {a: f"{a.__qualname__} is hidden" for a in _answers()}
    with forbidden({}, answers), pytest.raises(AssertionError, match="is hidden"):
        CALLS[name](held[name])
    if name not in ("run_step", "serve", "bubble_measured"):   # given back (no ranks here)
        CALLS[name](held[name])


def test_scheduler_rule_and_subclass_raise_while_hidden():
    scheduler = lesson06.Scheduler

    class Sim(scheduler):   # made before the check, as a notebook cell would
        def hand_out(self, w, request):
            pass

    with forbidden({}, {scheduler: "hidden"}):
        with pytest.raises(AssertionError, match="hidden"):
            Sim([Request(0, "", (1,), 1)], 1, "dynamic", "fifo")
        with pytest.raises(AssertionError, match="hidden"):
            scheduler.next_for(types.SimpleNamespace(), 0, 0.0)
    Sim([Request(0, "", (1,), 1)], 1, "dynamic", "fifo").dispatch(0.0)


def test_library_in_a_dict_earns_nothing_in_lesson05_checks():
    ns = {"__name__": "__main__"}
    exec("from tplab.pp.schedules import one_f_one_b\n_LIB = {'x': one_f_one_b}\n"
         "def my_1f1b(p, m, rank):\n    return list(_LIB['x'](p, m, rank))\n", ns)
    with pytest.raises(AssertionError, match="my_1f1b called tplab.pp.one_f_one_b"):
        lesson05_schedule.check_orders(ns["my_1f1b"], ns)


def test_1f1b_items_as_lists_pass():
    ns = {"__name__": "__main__"}
    exec(OK_LISTS, ns)
    lesson05_schedule.check_orders(ns["my_1f1b"], ns)
    assert lesson05_schedule.as_pairs([["F", 0], ("B", 0), ["F", 1, 0]], "x") == [
        ("F", 0), ("B", 0), ("F", 1)]


@pytest.mark.parametrize("item", ["F0", ["F"], ["F", 0, 1], ["X", 0], ["F", 0.0], ("F", True)])
def test_malformed_items_still_refused(item):
    with pytest.raises(AssertionError, match="each item is a pair"):
        lesson05_schedule.as_pairs([item], "my_1f1b(2, 1, 0)")


def test_torch_1f1b_closed_while_the_list_is_asked_for():
    pytest.importorskip("torch.distributed.pipelining")
    cls = sys.modules["torch.distributed.pipelining"].Schedule1F1B
    held = {"s": cls}
    with lesson05_schedule.torch_1f1b_closed():
        with pytest.raises(AssertionError, match="Schedule1F1B"):
            held["s"]._get_pipeline_order(types.SimpleNamespace(_num_stages=2,
                                                                _n_microbatches=2))
    order = cls._get_pipeline_order(types.SimpleNamespace(_num_stages=2, _n_microbatches=2))
    assert len(order) == 2


def test_audited_scheduler_answer_fails_with_the_checks_message():
    ns = {"__name__": "__main__"}
    path = "wrong_answers/06_task_parallelism/ex06_schedule/library_scheduler.py"
    exec((Path(__file__).parent / path).read_text(), ns)
    with pytest.raises(AssertionError, match="simulate_pool used tplab.serve's Scheduler"):
        lesson06.check_schedules(ns["simulate_pool"], ns)
