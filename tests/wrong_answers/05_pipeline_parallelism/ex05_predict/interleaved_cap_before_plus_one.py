# off by one at a cap: interleaved peak = min(warm-up, v·m) + 1 (the cap applied before the steady state's one)
from fractions import Fraction


def predict(schedule, p, m, v=1):
    total, ideal = Fraction(p - 1, v * m + p - 1), Fraction(p - 1, v * m)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = min(p, m), min(1, m)
    else:
        first = min(2 * (p - 1) + (v - 1) * p, v * m) + 1
        last = min((v - 1) * p, v * m) + 1
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
