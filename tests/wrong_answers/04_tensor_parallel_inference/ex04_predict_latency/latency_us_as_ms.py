# formula units: the latency in microseconds added as if it were milliseconds
def predict_ms_per_token(bytes_per_token, bandwidth_gbs, allreduces_per_token, latency_us):
    return bytes_per_token / (bandwidth_gbs * 1e9) * 1e3 + allreduces_per_token * latency_us
