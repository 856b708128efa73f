# forbidden shortcut: tplab.tp.plan reloaded inside the answer
def attention_slices(f, layer, t, rank):
    import importlib

    import tplab.tp.plan
    c = f.config
    shard = importlib.reload(tplab.tp.plan).attention_shards(c.n_heads, c.n_kv_heads, c.head_dim, t)[rank]
    (q0, q1), (kv0, kv1), d = shard.q_heads, shard.kv_heads, c.head_dim
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
