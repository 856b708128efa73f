# numbers wrong, shapes right: o's rows read and transposed, instead of its columns (row-parallel)
def attention_slices(f, layer, t, rank):
    cfg, d = f.config, f.config.head_dim
    per_group = cfg.n_heads // cfg.n_kv_heads
    kv0, kv1 = shard_range(cfg.n_kv_heads, t, rank)
    q0, q1 = kv0 * per_group, kv1 * per_group
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", rows=(q0 * d, q1 * d)).T   # [576, 64·q_r], as the table says
    return q, k, v, o
