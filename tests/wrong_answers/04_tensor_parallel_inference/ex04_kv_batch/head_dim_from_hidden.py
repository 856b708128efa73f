# head_dim taken as hidden // n_heads (true for Llama, not for models whose head_dim is set apart, e.g. Gemma-7B: hidden 3072, 16 heads of 256)
import math


def kv_cache_bytes(config, bytes_per_value, context, batch):
    head_dim = config.hidden // config.n_heads
    return 2 * config.n_layers * config.n_kv_heads * head_dim * bytes_per_value * context * batch


def compute_bound_batch(params, weight_bytes_per_param, kv_bytes_per_seq, flops, bandwidth):
    room = 2 * params / flops - kv_bytes_per_seq / bandwidth
    if room <= 0:
        return math.inf
    return math.ceil(params * weight_bytes_per_param / bandwidth / room)

