# edge case: interleaved in-flight (Megatron's warm-up plus one) not capped at the v*m passes there are
def predict(schedule, p, m, v=1):
    total, ideal = Fraction(p - 1, v * m + p - 1), Fraction(p - 1, v * m)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = min(p, m), min(1, m)
    else:
        first = 2 * (p - 1) + (v - 1) * p + 1
        last = (v - 1) * p + 1
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
