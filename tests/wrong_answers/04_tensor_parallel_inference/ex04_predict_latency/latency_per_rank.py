# formula: each all-reduce's latency counted once per rank (twice on 2 ranks), not once
def predict_ms_per_token(bytes_per_token, bandwidth_gbs, allreduces_per_token, latency_us):
    ranks = 2
    return bytes_per_token / (bandwidth_gbs * 1e9) * 1e3 + ranks * allreduces_per_token * latency_us / 1e3
