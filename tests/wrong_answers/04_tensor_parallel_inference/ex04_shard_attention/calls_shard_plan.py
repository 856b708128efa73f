# forbidden shortcut: reads its slices from tplab's shard_plan (the answer) instead of working them out
from tplab.tp import shard_plan


def attention_slices(f, layer, t, rank):
    slices = shard_plan(f.config, t)[rank].layer
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=slices["attn.q"].rows)
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=slices["attn.k"].rows)
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=slices["attn.v"].rows)
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=slices["attn.o"].cols)
    return q, k, v, o
