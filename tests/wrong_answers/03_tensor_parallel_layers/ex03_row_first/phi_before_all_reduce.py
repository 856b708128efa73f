# numbers wrong but traffic right: φ applied to each rank's partial product before the all-reduce
from tplab import comm
from tplab.tp import shard_sizes


def row_first_mlp(x_cols, a_rows, b_cols, hidden):
    activated = F.gelu(x_cols @ a_rows)        # φ(X_r A_r): but φ is not linear
    dist.all_reduce(activated)
    y_cols = activated @ b_cols
    return comm.all_gather(y_cols, shard_sizes(hidden, dist.get_world_size()), dim=-1)
