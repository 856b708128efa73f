# the ring all-reduce's bytes as (n-1)/n·N: the 2 of 2(n-1)/n forgotten
answers = {"dp-grad-all-reduce": None, "dp-zero3-70b": None, "tp-decode-comm": None,
           "pp-bubble": None, "mt-kv-batch": None, "mt-decode-ms": None}
GB, n = 1e9, 8
answers["dp-grad-all-reduce"] = (n - 1) / n * 14 * GB / (370 * GB) * 1e3
answers["dp-zero3-70b"] = (2 + 2 + 12) * 68.98e9 / n / GB
all_reduce_16k = 3.6e-6 + 2 * (n - 1) * 0.47e-6 + 2 * (n - 1) / n * 8192 * 2 / 370e9
answers["tp-decode-comm"] = 2 * 80 * all_reduce_16k * 1e3
answers["pp-bubble"] = (4 - 1) / (8 + 4 - 1)
kv_per_token = 2 * 80 * 8 * 128 * 2
answers["mt-kv-batch"] = kv_per_token / 8 * 16 * 4096 / GB
weights_per_gpu = 68.98e9 * 2 / n
answers["mt-decode-ms"] = weights_per_gpu / (3.35e12 * 0.685) * 1e3 + answers["tp-decode-comm"]
