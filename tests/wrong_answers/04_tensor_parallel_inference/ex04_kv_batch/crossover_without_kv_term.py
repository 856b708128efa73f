# ignores the KV term in the crossover: batching amortises the weights only, so F/BW-like always
import math


def kv_cache_bytes(config, bytes_per_value, context, batch):
    per_token = 2 * config.n_layers * config.n_kv_heads * config.head_dim * bytes_per_value
    return per_token * context * batch


def compute_bound_batch(params, weight_bytes_per_param, kv_bytes_per_seq, flops, bandwidth):
    weights_read = params * weight_bytes_per_param / bandwidth
    return math.ceil(weights_read / (2 * params / flops))
