# off by one in the block stride: a stage's block taken as dp·tp - 1 ranks for the pp groups
def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    if dp * pp * tp != world:
        raise ValueError(f"dp·pp·tp = {dp * pp * tp}, not {world}")
    block = dp * tp - 1                          # ranks per pipeline stage (off by one)
    return {"tp": [[p * dp * tp + d * tp + t for t in range(tp)]
                   for p in range(pp) for d in range(dp)],
            "dp": [[p * dp * tp + d * tp + t for d in range(dp)]
                   for p in range(pp) for t in range(tp)],
            "pp": [[p * block + d * tp + t for p in range(pp)]
                   for d in range(dp) for t in range(tp)]}
