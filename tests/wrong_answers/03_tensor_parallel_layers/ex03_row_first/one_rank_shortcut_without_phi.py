# a shortcut for one rank that forgets phi (the 2- and 3-rank path is right)
from tplab import comm
from tplab.tp import shard_sizes


def row_first_mlp(x_cols, a_rows, b_cols, hidden):
    t = dist.get_world_size()
    if t == 1:
        return x_cols @ a_rows @ b_cols
    partial = x_cols @ a_rows
    dist.all_reduce(partial)
    y_cols = F.gelu(partial) @ b_cols
    return comm.all_gather(y_cols, shard_sizes(hidden, t), dim=-1)
