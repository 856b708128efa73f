# forbidden shortcut: takes the head ranges from tplab's head_plan (the answer) instead of working them out
from tplab.tp import head_plan


def attention_slices(f, layer, t, rank):
    cfg, d = f.config, f.config.head_dim
    plan = head_plan(cfg.n_heads, cfg.n_kv_heads, t)[rank]
    (q0, q1), (kv0, kv1) = plan["q"], plan["kv"]
    q = f.tensor(f"blk.{layer}.attn_q.weight", rows=(q0 * d, q1 * d))
    k = f.tensor(f"blk.{layer}.attn_k.weight", rows=(kv0 * d, kv1 * d))
    v = f.tensor(f"blk.{layer}.attn_v.weight", rows=(kv0 * d, kv1 * d))
    o = f.tensor(f"blk.{layer}.attn_output.weight", cols=(q0 * d, q1 * d))
    return q, k, v, o
