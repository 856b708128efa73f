# formula: interleaving divides the whole share of the step by v, (p-1)/(v(m+p-1)), instead of shortening the slots of the fill
def predict(schedule, p, m, v=1):
    total, ideal = Fraction(p - 1, v * (m + p - 1)), Fraction(p - 1, v * m)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = min(p, m), min(1, m)
    else:
        first = min(2 * (p - 1) + (v - 1) * p + 1, v * m)
        last = min((v - 1) * p + 1, v * m)
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
