# formula units: bandwidth taken in GiB/s (2**30 bytes per second) instead of GB/s (10**9)
def predict_ms_per_token(bytes_per_token, bandwidth_gbs, allreduces_per_token, latency_us):
    bytes_ms = bytes_per_token / (bandwidth_gbs * 2**30) * 1000
    return bytes_ms + allreduces_per_token * latency_us / 1000
