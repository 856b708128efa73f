# memory in GB rounded to 1 decimal (as the tables print it) before comparing
def choose_deployment(target_ms, context, world=8, hw=H100, batches=BATCHES):
    # the qualifying {"tp", "pp", "dp", "batch"} with the most tokens/s, or None
    best = None
    for tp, pp, dp in factorizations(world, LLAMA2_70B):
        if tp > hw.gpus_per_server:
            continue
        for batch in batches:
            b = math.ceil(batch / dp)
            need = decode_memory(LLAMA2_70B, tp, pp, b, context)["total"]
            ms = decode_time(LLAMA2_70B, tp, hw, b, context)["ms_per_token"]
            if round(need / 1e9, 1) > round(hw.memory_bytes / 1e9, 1) or ms > target_ms:
                continue
            key = (batch / ms * 1e3, -dp)
            if best is None or key > best[0]:
                best = (key, {"tp": tp, "pp": pp, "dp": dp, "batch": batch})
    return None if best is None else best[1]
