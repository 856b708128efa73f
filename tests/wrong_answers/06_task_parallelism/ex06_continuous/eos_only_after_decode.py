# the end-of-turn test only on decoded tokens: a request whose prefill (first) token is end-of-turn runs on to max_new_tokens
def continuous_step(model, waiting, running, max_batch):
    # one iteration: admit, decode, retire; returns the sequences that finished in this step
    eos = model.config.eos_id
    admitted = []
    while waiting and len(running) + len(admitted) < max_batch:
        seq = Sequence(model, waiting.popleft())
        logits = model(torch.tensor([list(seq.request.prompt_ids)]), seq.cache)
        seq.tokens.append(int(logits[0, -1].argmax()))
        admitted.append(seq)
    finished = []
    if running:
        logits = decode_step(model, [s.tokens[-1] for s in running],
                             [s.cache for s in running], [s.rope for s in running])
        for seq, row in zip(running, logits):
            token = int(row.argmax())
            seq.tokens.append(token)
            if token == eos or len(seq.tokens) == seq.request.max_new_tokens:
                finished.append(seq)
    finished += [s for s in admitted if len(s.tokens) == s.request.max_new_tokens]
    running[:] = [s for s in running + admitted if s not in finished]
    return finished
