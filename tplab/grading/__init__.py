"""Exercises and their grading: one source (`solutions/`), everything else derived.

* `tplab.grading.cells`: the notebook conventions (solution markers, check cells, stubs, cell ids);
* `tplab.grading.build`: `tplab build`, writes `exercises/` from `solutions/`;
* `tplab.grading.grade`: `tplab grade`, runs a learner's notebook with the reference checks and
  scores it;
* `tplab.grading.restore`, `worker`, `report`: the steps of grading, one file each.
"""
# Only names that differ from the submodules: `tplab.grading.build` stays the module. Loaded on
# first use: a graded kernel imports `tplab.grading.untampered` before every check, and
# `grade` pulls in nbformat and nbclient (2.5 s), which a kernel never needs.
__all__ = ["grade_notebook", "GradingError"]


def __getattr__(name):
    if name in __all__:
        from tplab.grading import grade
        return getattr(grade, name)
    raise AttributeError(f"module 'tplab.grading' has no attribute {name!r}")
