# off-by-one at the limit: admits while running + admitted <= max_batch, one sequence too many
def continuous_step(model, waiting, running, max_batch):
    # one iteration: admit, decode, retire; returns the sequences that finished in this step
    eos = model.config.eos_id
    admitted = []
    while waiting and len(running) + len(admitted) <= max_batch:      # admit into free slots
        seq = Sequence(model, waiting.popleft())
        logits = model(torch.tensor([list(seq.request.prompt_ids)]), seq.cache)   # prefill
        seq.tokens.append(int(logits[0, -1].argmax()))
        admitted.append(seq)
    if running:                                      # one decode step for the whole batch
        logits = decode_step(model, [s.tokens[-1] for s in running],
                             [s.cache for s in running], [s.rope for s in running])
        for seq, row in zip(running, logits):
            seq.tokens.append(int(row.argmax()))
    batch = running + admitted
    finished = [s for s in batch
                if len(s.tokens) == s.request.max_new_tokens or s.tokens[-1] == eos]
    running[:] = [s for s in batch if s not in finished]               # retire at once
    return finished
