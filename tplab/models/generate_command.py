"""tplab generate: SmolLM2-135M-Instruct writing text across tensor- and pipeline-parallel ranks.

examples:
  tplab generate "What is tensor parallelism?"
  tplab generate --tp 3 --max-new-tokens 40 "What is tensor parallelism?"
  tplab generate --no-chat --temperature 0.8 --seed 1 "Once upon a time"
  tplab generate --tp 2 --threads 1 "What is a GPU?"     # 2 ranks, 1 thread each
  tplab generate --pp 2 --prompt "What is a GPU?" --prompt "Why is the sky blue?"
  tplab generate --pp 2 --tp 2 "What is a GPU?"          # 4 ranks: 2 stages of 2
  tplab generate --fast --compile "What is a GPU?"       # static KV cache, compiled step

Only the completion goes to stdout, streamed as it is generated; what ran and how
fast goes to stderr, e.g.

  [tp=2: 2 ranks x 1 thread each = 2 threads on 2 cores (default: cores / ranks)]
  [load 6.1 s; weights per rank 274, 240 MiB]
  [prompt 31 tokens in 0.15 s; decode 63 tokens in 3.40 s = 18.5 tok/s]

Threads: unless --threads is given, each rank gets cores / ranks threads (at least
one), so every layout runs on the same cores and their speeds can be compared: TP 1
on one thread against TP 2 on two would flatter TP with the extra core. Load (each
rank reading and dequantising its shard) is timed apart from generation; decode
speed (tokens after the first, per second) is the figure to compare with lesson 04.
Each rank holds only its shard of the model; rank 0 streams.

Fast decoding (--fast, TP=1 and PP=1): tplab.models.fast_decode's FastDecoder, a static KV
cache and a fixed-shape step whose big products are split over the rank's threads; --compile
compiles that step (its compile time is reported apart, before the prompt), --bf16 keeps the
weights in bfloat16 (half the bytes to read; the tokens may differ from float32's).

Pipeline (--pp P): the 30 layers are cut into P stages of --tp ranks each (P x T ranks);
the first stage holds the embedding, the last the norm and head, and the last stage sends
each token back to the first. One prompt is valid but gains nothing: its tokens are a chain
through every stage, so the stages take turns and never overlap. Give several prompts
(--prompt, repeated) to keep them all in flight, one per stage at a time; each completion is
printed when it ends, and the report gives tokens/s over all of them and their latencies.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

from tplab.models.locate import ModelFileError
from tplab.timing import percentile


def add_arguments(parser) -> None:
    parser.add_argument("prompt", nargs="*", help="the prompt (words are joined with spaces)")
    parser.add_argument("--prompt", dest="more_prompts", action="append", default=[],
                        metavar="TEXT", help="another prompt (repeat it: all are in flight "
                                             "at once through the pipeline)")
    parser.add_argument("--tp", type=int, default=1,
                        help="tensor-parallel ranks per stage (1 to the number of heads, 9)")
    parser.add_argument("--pp", type=int, default=1,
                        help="pipeline stages (1 to the number of layers, 30); with one prompt "
                             "the stages take turns (no overlap): give several to overlap")
    parser.add_argument("--split-by", choices=("params", "reads"), default="params",
                        help="balance the stages' parameter bytes (default) or the bytes a "
                             "decoded token reads (the head weighs, the embedding does not)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"torch threads per rank (default: cores / ranks, at least 1; "
                             f"this machine: {usable_cores()} cores)")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="at most this many new tokens")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 = greedy (default); > 0 samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling")
    parser.add_argument("--fast", action="store_true",
                        help="TP=1, PP=1: static KV cache, big products split over the threads")
    parser.add_argument("--compile", action="store_true",
                        help="with --fast: compile the decode step (torch.compile)")
    parser.add_argument("--bf16", action="store_true",
                        help="with --fast: bfloat16 weights (faster; tokens may differ from fp32)")
    parser.add_argument("--no-chat", action="store_true",
                        help="feed the prompt as raw text, without the chat template")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(ranks: int, cores: int) -> int:
    """Threads per rank that share `cores` out evenly between the ranks (at least one each)."""
    return max(1, cores // ranks)


def _fail(message: str) -> int:
    print(f"tplab generate: error: {message}", file=sys.stderr)
    return 2


def _rank_main(prompts_ids, max_new, temperature, seed, pp, tp, split_by, text_path,
               fast=None):
    """Runs on every rank; rank 0 (first stage) writes the new text to the FIFO `text_path` as
    tokens arrive: one prompt streamed, several each written whole when it ends.

    A path, not an inherited file descriptor: ranks started by a forkserver (tplab.launch
    uses one for several threads per rank) inherit no descriptors from this process.
    """
    import torch
    import torch.distributed as dist

    from tplab.models.gguf_file import GGUFModelFile
    from tplab.models.loading import parameter_bytes
    from tplab.models.tokenizer import SmolTokenizer
    from tplab.pp.llm import load_stage, pipelined_generate

    started = time.perf_counter()
    model_file = GGUFModelFile()
    me = load_stage(pp, tp, split_by, model_file) if fast is None else None
    tokenizer = SmolTokenizer(model_file) if dist.get_rank() == 0 else None
    load = time.perf_counter() - started
    fd = os.open(text_path, os.O_WRONLY) if tokenizer is not None else None
    try:
        show = _Shower(tokenizer, fd, model_file.config.eos_id, len(prompts_ids) > 1)
        if fast is not None:
            from tplab.models.fast_decode import run_prompts
            decoder, served, mode, build_s = run_prompts(prompts_ids, max_new, temperature, seed,
                                                         *fast, model_file, show if fd else None)
            return {"load_s": load + build_s, "bytes": decoder.weight_bytes(), "served": served,
                    "threads": torch.get_num_threads(), "mode": mode,
                    "layers": (0, model_file.config.n_layers)}
        served = pipelined_generate(prompts_ids, max_new, pp, tp, rank=me,
                                    temperature=temperature, seed=seed,
                                    on_token=show if fd is not None else None)
    finally:
        if fd is not None:
            os.close(fd)
    return {"load_s": load, "bytes": parameter_bytes(me.model), "threads": torch.get_num_threads(),
            "layers": (me.layers.start, me.layers.stop), "served": served}


class _Shower:
    """Text for the FIFO: one prompt's as it grows (whole characters only), or several
    prompts' each in one piece, numbered, when it ends."""

    def __init__(self, tokenizer, fd, eos: int, several: bool):
        self.tokenizer, self.fd, self.eos, self.several = tokenizer, fd, eos, several
        self.new, self.shown = {}, ""

    def __call__(self, i: int, token: int, done: bool) -> None:
        new = self.new.setdefault(i, [])
        if token != self.eos:
            new.append(token)
        if self.several:
            if done:
                os.write(self.fd, f"[{i + 1}] {self.tokenizer.decode(new)}\n".encode())
            return
        text = self.tokenizer.decode(new)
        if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
            os.write(self.fd, text[len(self.shown):].encode())
            self.shown = text


def run(args) -> int:
    words = " ".join(args.prompt)
    prompts = ([words] if words.strip() or not args.more_prompts else []) + args.more_prompts
    if any(not p.strip() for p in prompts):
        return _fail("the prompt is empty; give some text, e.g. tplab generate \"What is a GPU?\"")
    if args.max_new_tokens < 1:
        return _fail(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        return _fail(f"--temperature must be >= 0, got {args.temperature}")
    if args.threads is not None and args.threads < 1:
        return _fail(f"--threads must be at least 1, got {args.threads}")
    if (args.compile or args.bf16) and not args.fast:
        return _fail("--compile and --bf16 go with --fast (the fast decoder)")
    if args.fast and (args.tp != 1 or args.pp != 1):
        return _fail(f"--fast decodes at --tp 1 --pp 1 (one process), got --tp {args.tp} "
                     f"--pp {args.pp}")
    if args.pp < 1:  # the upper bound needs the model's layer count, below
        return _fail(f"--pp must be at least 1 (pipeline stages), got {args.pp}")
    try:
        from tplab.models.gguf_file import GGUFModelFile
        from tplab.models.tokenizer import SmolTokenizer
        model_file = GGUFModelFile()
    except ModelFileError as exc:
        return _fail(str(exc))
    heads, layers = model_file.config.n_heads, model_file.config.n_layers
    if not 1 <= args.tp <= heads:
        return _fail(f"--tp must be from 1 to {heads} (the model has {heads} attention heads), "
                     f"got {args.tp}")
    if not 1 <= args.pp <= layers:
        return _fail(f"--pp must be from 1 to {layers} (the model has {layers} layers, at least "
                     f"one per stage), got {args.pp}")
    tokenizer = SmolTokenizer(model_file)
    ids = [tokenizer.encode(p if args.no_chat else tokenizer.chat(p)) for p in prompts]
    return _stream(ids, args)


def _stream(ids, args) -> int:
    import tplab

    cores, ranks = usable_cores(), args.pp * args.tp
    threads = args.threads or default_threads(ranks, cores)
    folder = tempfile.mkdtemp(prefix="tplab-generate-")
    fifo = os.path.join(folder, "text")
    os.mkfifo(fifo)
    # Open the reading end first (without waiting for a writer), then hold a writing end
    # ourselves until the launch is over: the reader sees end-of-file only after that,
    # whether or not rank 0 ever got as far as opening its end.
    read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(read_fd, True)
    hold_fd = os.open(fifo, os.O_WRONLY)
    out = sys.stdout

    def pump():  # copy rank 0's text to stdout as it comes
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(4096):
                out.write(chunk.decode(errors="replace"))
                out.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if threads > 1:
        # Waiting OpenMP threads sleep instead of spinning: on a busy machine (other processes
        # on the cores) spinning threads wait for each other; measured at load 9 on 2 cores,
        # TP 1 on 2 threads decoded 0.9 tok/s spinning, 8.3 passive (1 thread: 9.2).
        # Set before the launch starts the forkserver that ranks with several threads come from.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        stats = tplab.launch(_rank_main, ranks, ids, args.max_new_tokens, args.temperature,
                             args.seed, args.pp, args.tp, args.split_by,
                             fifo, (args.compile, args.bf16) if args.fast else None,
                             backend="gloo", timeout=600, threads=threads)
    except tplab.WorkerError as exc:
        print(f"\ntplab generate: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        os.close(hold_fd)
        reader.join(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    if len(ids) == 1:
        print(flush=True)  # end the streamed line (several prompts end their own)
    threads = stats[0]["threads"]  # what the ranks really ran with
    served = stats[-1]["served"]  # the last stage's
    stats[0].update(tokens=len(served["tokens"][0]), prefill_s=served["first_token_s"][0],
                    decode_s=served["latency_s"][0] - served["first_token_s"][0],
                    served=served)
    layers = [st["layers"] for st in stats[::args.tp]]
    print(summary(args.tp, threads, cores, args.threads is None, [len(i) for i in ids], stats,
                  args.pp, layers), file=sys.stderr)
    if "mode" in stats[0]:
        print(stats[0]["mode"], file=sys.stderr)
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(tp: int, threads: int, cores: int, default: bool, prompt_tokens,
            stats: list[dict], pp: int = 1, layers: list | None = None) -> str:
    """What ran and how fast, in three lines: ranks and threads; load, weights; prompt, decode.

    prompt_tokens: the prompt's length, or every prompt's (several: the last line gives
    tokens/s over all of them and their latencies, from stats[0]["served"])."""
    ranks = pp * tp
    total = ranks * threads
    each = " each" if ranks > 1 else ""
    layout = f"tp={tp}" if pp == 1 else f"pp={pp} x tp={tp}"
    ran = (f"[{layout}: {_plural(ranks, 'rank')} x {_plural(threads, 'thread')}{each}"
           f" = {_plural(total, 'thread')} on {_plural(cores, 'core')}")
    if default:
        ran += " (default: cores / ranks)"
    if total > cores:
        ran += "; more threads than cores: they take turns, which slows every rank"
    s = stats[0]
    load = max(st["load_s"] for st in stats)
    weights = ", ".join(f"{st['bytes'] / 2**20:.0f}" for st in stats)
    weights += " MiB"
    if layers and pp > 1:
        weights += "; stages hold layers " + " | ".join(f"{a}-{b - 1}" for a, b in layers)
    lengths = [prompt_tokens] if isinstance(prompt_tokens, int) else list(prompt_tokens)
    return "\n".join([ran + "]", f"[load {load:.1f} s; weights per rank {weights}]",
                      _speed(s, lengths)])


def _speed(s: dict, lengths: list[int]) -> str:
    if len(lengths) > 1:
        served = s["served"]
        new, elapsed = sum(len(t) for t in served["tokens"]), served["elapsed_s"]
        first, last = served["first_token_s"], served["latency_s"]
        return (f"[{len(lengths)} prompts ({', '.join(map(str, lengths))} tokens) in flight: "
                f"first tokens after {min(first):.2f}-{max(first):.2f} s; "
                f"{_plural(new, 'token')} in {elapsed:.2f} s = {new / elapsed:.1f} tok/s; "
                f"latency median {percentile(last, 0.5):.2f} s, max {max(last):.2f} s]")
    decoded = s["tokens"] - 1
    if decoded > 0 and s["decode_s"] > 0:
        decode = (f"decode {_plural(decoded, 'token')} in {s['decode_s']:.2f} s = "
                  f"{decoded / s['decode_s']:.1f} tok/s")
    else:
        decode = "decode: none (it stopped at the first token, so no tok/s)"
    return f"[prompt {_plural(lengths[0], 'token')} in {s['prefill_s']:.2f} s; {decode}]"
