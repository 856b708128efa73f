"""SmolLM2-135M decoding side by side: transformers, tplab TP=1, TP=2 (fast and gloo all-reduce).

    python bench/decode.py            # ~2 min on 2 cores
    python bench/decode.py --quick    # fewer repeats

Prints one JSON object per line: {"impl", "tp", "metric", "value"}
  impl  "hf" (transformers, fp32), "tplab" (tplab's fast all-reduce), "tplab-gloo" (gloo's),
        "machine"
  metric
    prefill_tok_s  tokens/s for a forward over a 128-token prompt
    decode_tok_s   tokens/s over 64 new tokens, one forward each, reading the KV cache
    ms_per_token   decode time per token (TP=2)
    comm_share     fraction of decode time spent communicating (TP=2): per all-reduce, the time
                   the last rank to arrive spends inside it (what an instantaneous all-reduce
                   would save); the larger of the two ranks' shares
    wait_share     fraction of decode time a rank spends inside all-reduces waiting for the
                   other to arrive (load imbalance: 6 + 3 heads at TP=2); the larger of the two
    weight_gbs     weights read per token / time per token (TP=1): achieved bandwidth
    mem_read_gbs   the machine: GB/s summing a 512 MiB float32 tensor (the median of 5 sums,
                   `tplab.timing.read_bandwidth_gbs`)

Method: the same prompt and threads for hf and tplab TP=1 (all cores); TP=2 runs two ranks
of one thread each. Both models run the same loop (prefill, then 64 single-token
forwards with the cache; greedy), so the comparison is of the models, not of their
generate() wrappers. Each figure is the median of several repeats, and hf and tplab
alternate so noise hits both.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

import tplab
from tplab import comm
from tplab.models.generate import TokenPicker
from tplab.models.loading import load_llama, load_llama_tp, parameter_bytes, vocab_start
from tplab.models.locate import find_gguf
from tplab.models.tokenizer import SmolTokenizer
from tplab.timing import median, read_bandwidth_gbs, stopwatch

PROMPT_TOKENS, NEW_TOKENS = 128, 64
TEXT = ("Tensor parallelism splits each layer's weight matrices across devices, so that every "
        "device holds a slice of the model and computes a slice of every layer; the slices are "
        "combined with all-reduce operations after the attention and the MLP blocks. ")


def prompt_ids() -> list[int]:
    ids = SmolTokenizer().encode(TEXT * 8)
    assert len(ids) >= PROMPT_TOKENS
    return ids[:PROMPT_TOKENS]


def time_tplab(model, ids, clock=None) -> tuple[float, float]:
    """(prefill seconds, decode seconds for NEW_TOKENS tokens); `clock`, if given, is reset
    after the prefill."""
    pick = TokenPicker(model.config.vocab_size, vocab_start(model))
    cache = model.new_cache(1, len(ids) + NEW_TOKENS)
    with stopwatch() as prefill:
        logits = model(torch.tensor([ids]), cache)
    if clock is not None:
        clock.reset()
    with stopwatch() as decode:
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([[pick(logits[0, -1])]]), cache)
    return prefill.seconds, decode.seconds


@torch.no_grad()
def time_hf(model, ids) -> tuple[float, float]:
    with stopwatch() as prefill:
        out = model(torch.tensor([ids]), use_cache=True)
    with stopwatch() as decode:
        for _ in range(NEW_TOKENS):
            token = out.logits[0, -1].argmax().view(1, 1)
            out = model(token, past_key_values=out.past_key_values, use_cache=True)
    return prefill.seconds, decode.seconds


def tp_worker(ids, repeats, route):
    """On each rank: median ms per decoded token, and the shares of it spent communicating and
    waiting for the other rank inside all-reduces (`tplab.comm.AllReduceClock`)."""
    if route == "gloo":
        comm.use_torch_route()  # torch.distributed's all-reduce (gloo) for this process group
    model = load_llama_tp()
    time_tplab(model, ids)  # warm-up
    per_token, comm_shares, wait_shares = [], [], []
    for _ in range(repeats):
        with comm.AllReduceClock() as clock:
            _, decode = time_tplab(model, ids, clock)
        split = clock.split()  # decode's all-reduces only
        per_token.append(decode / NEW_TOKENS * 1e3)
        comm_shares.append(split["comm_s"] / decode)
        wait_shares.append(split["wait_s"] / decode)
    return median(per_token), median(comm_shares), median(wait_shares)


def emit(impl, tp, metric, value):
    row = {"impl": impl, "tp": tp, "metric": metric, "value": round(value, 4)}
    print(json.dumps(row), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for hf and tplab TP=1")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 3
    torch.set_num_threads(args.threads)
    ids = prompt_ids()

    import transformers
    path = find_gguf()
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                          dtype=torch.float32).eval()
    ours = load_llama()
    time_hf(hf, ids), time_tplab(ours, ids)  # warm-up
    runs = {"hf": [], "tplab": []}
    for _ in range(repeats):
        runs["hf"].append(time_hf(hf, ids))
        runs["tplab"].append(time_tplab(ours, ids))
    for impl, times in runs.items():
        emit(impl, 1, "prefill_tok_s", PROMPT_TOKENS / median(t[0] for t in times))
        emit(impl, 1, "decode_tok_s", NEW_TOKENS / median(t[1] for t in times))
    seconds_per_token = median(t[1] for t in runs["tplab"]) / NEW_TOKENS
    emit("tplab", 1, "weight_gbs", parameter_bytes(ours) / seconds_per_token / 1e9)
    emit("machine", 1, "mem_read_gbs", read_bandwidth_gbs(512, 5, stat=median))
    del hf, ours
    for impl, route in (("tplab", "shm"), ("tplab-gloo", "gloo")):
        results = tplab.launch(tp_worker, 2, ids, repeats, route, timeout=600)
        emit(impl, 2, "ms_per_token", max(r[0] for r in results))
        emit(impl, 2, "comm_share", max(r[1] for r in results))
        emit(impl, 2, "wait_share", max(r[2] for r in results))


if __name__ == "__main__":
    main()
