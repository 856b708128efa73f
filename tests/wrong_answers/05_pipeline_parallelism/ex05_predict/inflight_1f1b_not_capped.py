# edge case: 1F1B's in-flight p - rank not capped at m (with fewer micro-batches than stages)
def predict(schedule, p, m, v=1):
    total, ideal = Fraction(p - 1, v * m + p - 1), Fraction(p - 1, v * m)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = p, 1
    else:
        first = min(2 * (p - 1) + (v - 1) * p + 1, v * m)
        last = min((v - 1) * p + 1, v * m)
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
