# shard edges: query heads split evenly over the ranks (5 + 4 on 2), ignoring the KV groups
def attention_slices(f, layer, t, rank):
    cfg, d = f.config, f.config.head_dim
    q0, q1 = shard_range(cfg.n_heads, t, rank)          # query heads shared out as evenly as possible
    kv0, kv1 = shard_range(cfg.n_kv_heads, t, rank)     # and KV heads too
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
