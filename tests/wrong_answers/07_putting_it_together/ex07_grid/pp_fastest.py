# pp varies fastest (rank = (d·tp + t)·pp + p): stages of a replica side by side
def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    if dp * pp * tp != world:
        raise ValueError(f"dp·pp·tp = {dp * pp * tp}, not {world}")

    def rank(p, d, t):
        return (d * tp + t) * pp + p

    return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
            "dp": [[rank(p, d, t) for d in range(dp)] for p in range(pp) for t in range(tp)],
            "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}
