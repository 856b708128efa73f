# tp groups right, but dp groups strided by tp·pp (the pp stride) instead of tp
def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    if dp * pp * tp != world:
        raise ValueError(f"dp·pp·tp = {dp * pp * tp}, not {world}")

    def rank(p, d, t):
        return (p * dp + d) * tp + t

    return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
            "dp": [[b + d * tp * pp for d in range(dp)] for b in range(tp * pp)],
            "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}
