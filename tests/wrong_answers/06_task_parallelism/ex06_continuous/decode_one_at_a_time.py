# right tokens by the wrong route: each running sequence decoded by its own model call (weights read once per sequence), not one batched decode_step
def continuous_step(model, waiting, running, max_batch):
    # one iteration: admit, decode, retire; returns the sequences that finished in this step
    eos = model.config.eos_id
    admitted = []
    while waiting and len(running) + len(admitted) < max_batch:      # admit into free slots
        seq = Sequence(model, waiting.popleft())
        logits = model(torch.tensor([list(seq.request.prompt_ids)]), seq.cache)   # prefill
        seq.tokens.append(int(logits[0, -1].argmax()))
        admitted.append(seq)
    for seq in running:                              # decode each sequence from its cache
        logits = model(torch.tensor([[seq.tokens[-1]]]), seq.cache)
        seq.tokens.append(int(logits[0, -1].argmax()))
    batch = running + admitted
    finished = [s for s in batch
                if len(s.tokens) == s.request.max_new_tokens or s.tokens[-1] == eos]
    running[:] = [s for s in batch if s not in finished]               # retire at once
    return finished
