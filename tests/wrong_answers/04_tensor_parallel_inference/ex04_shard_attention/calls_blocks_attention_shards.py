# forbidden shortcut: reaches the plan through another module (tplab.tp.blocks.attention_shards)
import tplab.tp.blocks


def attention_slices(f, layer, t, rank):
    c = f.config
    slices = tplab.tp.blocks.attention_shards(c.n_heads, c.n_kv_heads, c.head_dim, t)[rank].slices
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=slices["q"].rows)
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=slices["k"].rows)
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=slices["v"].rows)
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=slices["o"].cols)
    return q, k, v, o
