"""Exercises and their grading: one source (`solutions/`), everything else derived.

* `tplab.grading.cells`: the notebook conventions (solution markers, check cells, stubs, cell ids);
* `tplab.grading.build`: `tplab build`, writes `exercises/` from `solutions/`;
* `tplab.grading.grade`: `tplab grade`, runs a learner's notebook with the reference checks and
  scores it;
* `tplab.grading.restore`, `worker`, `report`: the steps of grading, one file each.
"""
# Only names that differ from the submodules: `tplab.grading.build` stays the module.
from tplab.grading.grade import GradingError, grade_notebook

__all__ = ["grade_notebook", "GradingError"]
