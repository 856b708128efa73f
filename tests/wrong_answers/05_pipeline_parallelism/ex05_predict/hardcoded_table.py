# hard-coded values that only fit the checked configuration: predict's values at the fixed points
# pasted in from a run of tplab.pp's formulas, nothing computed (a drawn point is not in the table)
# expect: error
from fractions import Fraction as F

_TABLE = {
    ('gpipe', 1, 1, 1): (F(0, 1), F(0, 1), 1, 1),
    ('gpipe', 1, 4, 1): (F(0, 1), F(0, 1), 4, 4),
    ('gpipe', 2, 1, 1): (F(1, 2), F(1, 1), 1, 1),
    ('gpipe', 2, 3, 1): (F(1, 4), F(1, 3), 3, 3),
    ('gpipe', 3, 2, 1): (F(1, 2), F(1, 1), 2, 2),
    ('gpipe', 4, 3, 1): (F(1, 2), F(1, 1), 3, 3),
    ('gpipe', 4, 4, 1): (F(3, 7), F(3, 4), 4, 4),
    ('gpipe', 4, 9, 1): (F(1, 4), F(1, 3), 9, 9),
    ('gpipe', 5, 7, 1): (F(4, 11), F(4, 7), 7, 7),
    ('gpipe', 8, 32, 1): (F(7, 39), F(7, 32), 32, 32),
    ('1f1b', 1, 1, 1): (F(0, 1), F(0, 1), 1, 1),
    ('1f1b', 1, 4, 1): (F(0, 1), F(0, 1), 1, 1),
    ('1f1b', 2, 1, 1): (F(1, 2), F(1, 1), 1, 1),
    ('1f1b', 2, 3, 1): (F(1, 4), F(1, 3), 2, 1),
    ('1f1b', 3, 2, 1): (F(1, 2), F(1, 1), 2, 1),
    ('1f1b', 4, 3, 1): (F(1, 2), F(1, 1), 3, 1),
    ('1f1b', 4, 4, 1): (F(3, 7), F(3, 4), 4, 1),
    ('1f1b', 4, 9, 1): (F(1, 4), F(1, 3), 4, 1),
    ('1f1b', 5, 7, 1): (F(4, 11), F(4, 7), 5, 1),
    ('1f1b', 8, 32, 1): (F(7, 39), F(7, 32), 8, 1),
    ('interleaved', 1, 3, 2): (F(0, 1), F(0, 1), 2, 2),
    ('interleaved', 2, 2, 2): (F(1, 5), F(1, 4), 4, 3),
    ('interleaved', 2, 6, 3): (F(1, 19), F(1, 18), 7, 5),
    ('interleaved', 3, 3, 2): (F(1, 4), F(1, 3), 6, 4),
    ('interleaved', 4, 4, 2): (F(3, 11), F(3, 8), 8, 5),
    ('interleaved', 4, 8, 2): (F(3, 19), F(3, 16), 11, 5),
    ('interleaved', 4, 12, 3): (F(1, 13), F(1, 12), 15, 9),
}


def predict(schedule, p, m, v=1):
    total, ideal, first, last = _TABLE[schedule, p, m, v]
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
