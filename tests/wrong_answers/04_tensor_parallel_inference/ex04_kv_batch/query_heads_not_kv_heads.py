# caches every query head: n_heads instead of n_kv_heads (no grouped-query attention)
import math


def kv_cache_bytes(config, bytes_per_value, context, batch):
    per_token = 2 * config.n_layers * config.n_heads * config.head_dim * bytes_per_value
    return per_token * context * batch


def compute_bound_batch(params, weight_bytes_per_param, kv_bytes_per_seq, flops, bandwidth):
    room = 2 * params / flops - kv_bytes_per_seq / bandwidth
    if room <= 0:
        return math.inf
    return math.ceil(params * weight_bytes_per_param / bandwidth / room)

