"""SmolLM2-135M decoding side by side: transformers, tplab TP=1 (default, threads, compiled,
bf16, bf16 compiled), TP=2 (fast and gloo all-reduce), and the issue-17 targets as ratios.

    python bench/decode.py            # ~3 min on 2 cores (the saved run: 2 min 38 s; compiling
                                      # the steps cold adds ~1 min, warm ~10 s)
    python bench/decode.py --quick    # fewer repeats
    python bench/decode.py --no-compile --no-tp2   # the eager rows only

Prints one JSON object per line: {"impl", "tp", "metric", "value"}
  impl  "hf" (transformers, fp32), "tplab" (tplab's default decoder; at TP=2 its fast
        all-reduce), "tplab-gloo" (TP=2, gloo's), "machine", and `tplab.models.fast_decode`'s
        FastDecoder at TP=1 (static KV cache; eager fp32: Wᵀ stored, big products split over
        --threads threads):
        "tplab-threads" (fp32, eager), "tplab-compiled" (fp32, torch.compile'd step: on a CPU
        inductor generates its GEMVs over every thread), "tplab-bf16" (bf16 weights and
        activations, eager: labelled, never the default), "tplab-bf16-compiled" (the same,
        compiled);
        "target": the issue's two targets, computed from this run
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
    mem_read_gbs   the machine: GB/s summing a 512 MiB float32 tensor (`x.sum()`, measured
                   after every timed row, median of them all: on a shared VM the bandwidth
                   drifts by ±20 % within minutes; on a GPU, a 1 GiB tensor on it)
    compile_s      seconds compiling the decode step (compiled rows; apart from decode_tok_s);
                   compile_failed (1) instead where compiling failed and the row ran eagerly
    same_tokens    FastDecoder's fp32 rows: 1 if the timed run's 64 greedy tokens equal
                   transformers', else 0
    agreement      bf16 rows: the share of greedy tokens equal to fp32's over the held-out
                   prompts (tplab.serve.prompts.PROMPTS[:8], 32 tokens each, teacher-forced:
                   each position after fp32's own prefix, so one early difference counts once)
    product_gbs    the best fp32 row's bandwidth per product kind ("product": qkv, o, gate_up,
                   down, head), each timed over its 30 layers in a row (weights from memory),
                   compiled as the step is if the row is compiled
    roofline_share target: the best fp32 TP=1 weight_gbs / mem_read_gbs (issue: >= 0.70)
    tp1_vs_hf      target: the best fp32 TP=1 decode_tok_s / hf's, same threads (issue: >= 1.5)
    roofline_share_any_tp  target (tp 0): the better of that TP=1 share and TP=2's (the whole
                   model's bytes / TP=2's ms_per_token / mem_read_gbs), as the issue counts it

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
    after the prefill. The model runs where its weights are (a GPU's times wait for it)."""
    pick = TokenPicker(model.config.vocab_size, vocab_start(model))
    cache, device = model.new_cache(1, len(ids) + NEW_TOKENS), model.device
    with stopwatch() as prefill:
        logits = model(torch.tensor([ids], device=device), cache)
        sync(device)
    if clock is not None:
        clock.reset()
    with stopwatch() as decode:
        for _ in range(NEW_TOKENS):
            logits = model(torch.tensor([[pick(logits[0, -1])]], device=device), cache)
        sync(device)
    return prefill.seconds, decode.seconds


@torch.no_grad()
def time_hf(model, ids) -> tuple[float, float, list[int]]:
    tokens = []
    with stopwatch() as prefill:
        out = model(torch.tensor([ids], device=model.device), use_cache=True)
        sync(model.device)
    with stopwatch() as decode:
        for _ in range(NEW_TOKENS):
            token = out.logits[0, -1].argmax().view(1, 1)  # on the GPU, if there: no wait
            tokens.append(token)
            out = model(token, past_key_values=out.past_key_values, use_cache=True)
        sync(model.device)  # so the clock stops when the GPU has finished
    return prefill.seconds, decode.seconds, [int(t) for t in tokens]


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


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_fast(decoder, ids) -> tuple[float, float, list[int]]:
    """time_tplab for a FastDecoder: the prefill (eager), then 64 fixed-shape steps; and the
    greedy tokens."""
    tokens = []
    with stopwatch() as prefill:
        logits = decoder.prefill(ids)
        sync(decoder.device)
    with stopwatch() as decode:
        for i in range(NEW_TOKENS):
            tokens.append(logits[0, -1].argmax())
            logits = decoder.decode(int(tokens[-1]), len(ids) + i)
        sync(decoder.device)
    return prefill.seconds, decode.seconds, [int(t) for t in tokens]


def bf16_agreement(fp32, bf16, n_prompts=8, new=32) -> float:
    """Share of bf16's greedy tokens equal to fp32's, each after fp32's own prefix."""
    from tplab.models.fast_decode import fast_generate
    from tplab.serve.prompts import PROMPTS
    tok, same, total = SmolTokenizer(), 0, 0
    for text in PROMPTS[:n_prompts]:
        ids = tok.encode(tok.chat(text))
        ref = list(fast_generate(fp32, ids, new, stop_at_eos=False))
        logits = bf16.prefill(ids + ref[:-1])[0, len(ids) - 1:]
        same += sum(int(a == b) for a, b in zip(logits.argmax(-1).tolist(), ref))
        total += len(ref)
    return same / total


def product_gbs(decoder, repeats=5) -> dict[str, float]:
    """GB/s of each product kind, timed over all its layers in a row (weights from memory);
    compiled, with the step's threads, if the decoder's step is."""
    out = {}
    before = torch.get_num_threads()
    torch.set_num_threads(decoder.step_threads if decoder.compiled_ok else before)
    for kind in ("qkv", "o", "gate_up", "down", "head"):
        mods = [decoder.head] if kind == "head" else [getattr(m, kind) for m in decoder.layers]
        b0 = mods[0].b0
        width = b0.shape[0] if mods[0].cols else b0.shape[1]
        x = torch.randn(1, 1, width, dtype=decoder.dtype, device=decoder.device)
        nbytes = sum(b.numel() * b.element_size() for m in mods for b in m.buffers())

        def every_layer(x, mods=mods):
            return [m(x) for m in mods]
        run = torch.compile(every_layer, dynamic=False) if decoder.compiled_ok else every_layer
        run(x)  # compiles, if it does
        times = []
        for _ in range(repeats):
            with stopwatch() as clock:
                run(x)
                sync(decoder.device)
            times.append(clock.seconds)
        out[kind] = nbytes / median(times) / 1e9
    torch.set_num_threads(before)
    return out


def device_read_gbs(device) -> float:
    if torch.device(device).type != "cuda":
        return read_bandwidth_gbs(512, 5, stat=median)
    x = torch.ones(2**28, device=device)  # 1 GiB
    times = []
    for _ in range(6):
        sync(device)
        with stopwatch() as clock:
            x.sum()
            sync(device)
        times.append(clock.seconds)
    return x.numel() * 4 / median(times[1:]) / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for hf and tplab TP=1")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where TP=1 runs (a GPU if there is one); TP=2 rows are CPU only")
    parser.add_argument("--no-compile", action="store_true", help="skip tplab-compiled")
    parser.add_argument("--no-tp2", action="store_true", help="skip the TP=2 rows")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 3
    torch.set_num_threads(args.threads)
    ids, device = prompt_ids(), torch.device(args.device)
    cpu = device.type == "cpu"

    import transformers

    from tplab.models.fast_decode import FastDecoder
    path = find_gguf()
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                          dtype=torch.float32).eval().to(device)
    ours = load_llama()
    if not cpu:
        ours.to(device)  # the default decoder follows its weights (float32, eager)
    timers = {"hf": lambda: time_hf(hf, ids), "tplab": lambda: time_tplab(ours, ids)}
    fast = {"tplab-threads": FastDecoder(ours, device=device)}
    if not args.no_compile:
        fast["tplab-compiled"] = FastDecoder(ours, device=device, compile=True)
    fast["tplab-bf16"] = FastDecoder(ours, device=device, dtype=torch.bfloat16)
    if not args.no_compile:
        fast["tplab-bf16-compiled"] = FastDecoder(ours, device=device, dtype=torch.bfloat16,
                                                  compile=True)
    for impl, decoder in fast.items():
        if decoder.compile:
            seconds = decoder.warm_up()
            if decoder.compiled_ok:
                emit(impl, 1, "compile_s", seconds)
            else:  # it decodes eagerly (with a warning): its row must not pass for compiled
                emit(impl, 1, "compile_failed", 1.0)
    for impl, decoder in fast.items():
        timers[impl] = lambda d=decoder: time_fast(d, ids)
    for timer in timers.values():
        timer()  # warm-up
    runs = {impl: [] for impl in timers}
    reads = []  # the memory's read bandwidth, measured between the rows: it drifts here
    for _ in range(repeats):  # alternating, so noise hits every row alike
        for impl, timer in timers.items():
            runs[impl].append(timer())
            reads.append(device_read_gbs(device))
    bytes_of = {impl: d.weight_bytes() for impl, d in fast.items()}
    bytes_of["tplab"] = parameter_bytes(ours)
    tok_s = {}
    for impl, times in runs.items():
        if impl in fast and fast[impl].dtype == torch.float32:
            emit(impl, 1, "same_tokens", float(times[0][2] == runs["hf"][0][2]))
        emit(impl, 1, "prefill_tok_s", PROMPT_TOKENS / median(t[0] for t in times))
        tok_s[impl] = NEW_TOKENS / median(t[1] for t in times)
        emit(impl, 1, "decode_tok_s", tok_s[impl])
        if impl in bytes_of:
            emit(impl, 1, "weight_gbs", bytes_of[impl] * tok_s[impl] / 1e9)
    mem = median(reads)
    emit("machine", 1, "mem_read_gbs", mem)
    for impl in ("tplab-bf16", "tplab-bf16-compiled"):
        if impl in fast:
            emit(impl, 1, "agreement", bf16_agreement(fast["tplab-threads"], fast[impl]))
    fp32 = [impl for impl in tok_s if impl.startswith("tplab") and "bf16" not in impl]
    best = max(fp32, key=tok_s.get)
    for kind, gbs in product_gbs(fast.get(best, fast["tplab-threads"])).items():
        print(json.dumps({"impl": best, "tp": 1, "metric": "product_gbs", "product": kind,
                          "value": round(gbs, 4)}), flush=True)
    for metric, value, goal in (("roofline_share", bytes_of[best] * tok_s[best] / 1e9 / mem, 0.7),
                                ("tp1_vs_hf", tok_s[best] / tok_s["hf"], 1.5)):
        print(json.dumps({"impl": "target", "tp": 1, "metric": metric, "value": round(value, 4),
                          "of": best, "goal": goal, "met": value >= goal}), flush=True)
    timers.clear()
    hf = ours = fast = None  # free them before the ranks start
    if args.no_tp2 or not cpu:
        return
    tp2_ms = {}
    for impl, route in (("tplab", "shm"), ("tplab-gloo", "gloo")):
        results = tplab.launch(tp_worker, 2, ids, repeats, route, timeout=600)
        tp2_ms[impl] = max(r[0] for r in results)
        emit(impl, 2, "ms_per_token", tp2_ms[impl])
        emit(impl, 2, "comm_share", max(r[1] for r in results))
        emit(impl, 2, "wait_share", max(r[2] for r in results))
    # the first target is over any TP degree: two ranks read the whole model per token
    shares = {f"{best}, TP=1": bytes_of[best] * tok_s[best] / 1e9 / mem,
              "tplab, TP=2": bytes_of["tplab"] / (tp2_ms["tplab"] / 1e3) / 1e9 / mem}
    top = max(shares, key=shares.get)
    print(json.dumps({"impl": "target", "tp": 0, "metric": "roofline_share_any_tp",
                      "value": round(shares[top], 4), "of": top, "goal": 0.7,
                      "met": shares[top] >= 0.7}), flush=True)


if __name__ == "__main__":
    main()
