# forbidden shortcut: reaches the plan through a module imported inside the answer
def attention_slices(f, layer, t, rank):
    from tplab.viz.decode import shard_plan
    slices = shard_plan(f.config, t)[rank].layer
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=slices["attn.q"].rows)
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=slices["attn.k"].rows)
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=slices["attn.v"].rows)
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=slices["attn.o"].cols)
    return q, k, v, o
