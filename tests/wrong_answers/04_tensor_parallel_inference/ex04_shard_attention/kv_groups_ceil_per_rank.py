# shard edges: ceil(n_kv/t) KV groups per rank (the last ranks short or empty: 2+2+0 for 4 groups on 3 ranks), equal to the balanced split only for SmolLM2's 3 groups on t <= 3
def attention_slices(f, layer, t, rank):
    cfg, d = f.config, f.config.head_dim
    per_group = cfg.n_heads // cfg.n_kv_heads
    per_rank = -(-cfg.n_kv_heads // t)
    kv0 = min(rank * per_rank, cfg.n_kv_heads)
    kv1 = min(kv0 + per_rank, cfg.n_kv_heads)
    q0, q1 = kv0 * per_group, kv1 * per_group
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
