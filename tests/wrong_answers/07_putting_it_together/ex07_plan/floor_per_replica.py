# sequences per replica rounded down (batch // dp): a replica may get 0
def choose_deployment(target_ms, context, world=8, hw=H100, batches=BATCHES):
    # the qualifying {"tp", "pp", "dp", "batch"} with the most tokens/s, or None
    best = None
    for tp, pp, dp in factorizations(world, LLAMA2_70B):
        if tp > hw.gpus_per_server:
            continue
        for batch in batches:
            b = batch // dp
            need = decode_memory(LLAMA2_70B, tp, pp, b, context)["total"]
            ms = decode_time(LLAMA2_70B, tp, hw, b, context)["ms_per_token"]
            if need > hw.memory_bytes or ms > target_ms:
                continue
            key = (batch / ms * 1e3, -dp)
            if best is None or key > best[0]:
                best = (key, {"tp": tp, "pp": pp, "dp": dp, "batch": batch})
    return None if best is None else best[1]
