# off by one: the in-flight peak taken as the warm-up alone (the steady state's forward comes before the first backward)
def predict(schedule, p, m, v=1):
    total, ideal = Fraction(p - 1, v * m + p - 1), Fraction(p - 1, v * m)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = min(p - 1, m), 0
    else:
        first = min(2 * (p - 1) + (v - 1) * p, v * m)
        last = min((v - 1) * p, v * m)
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
