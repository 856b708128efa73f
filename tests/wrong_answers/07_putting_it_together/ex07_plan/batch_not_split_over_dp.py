# wrong quantity: each replica sized and timed with the whole batch, not its ceil(batch/dp) share
def choose_deployment(target_ms, context, world=8, hw=H100, batches=BATCHES):
    best = None
    for tp, pp, dp in factorizations(world, LLAMA2_70B):
        if tp > hw.gpus_per_server:
            continue
        for batch in batches:
            need = decode_memory(LLAMA2_70B, tp, pp, batch, context)["total"]
            ms = decode_time(LLAMA2_70B, tp, hw, batch, context)["ms_per_token"]
            if need > hw.memory_bytes or ms > target_ms:
                continue
            key = (batch / ms * 1e3, -dp)
            if best is None or key > best[0]:
                best = (key, {"tp": tp, "pp": pp, "dp": dp, "batch": batch})
    return None if best is None else best[1]
