"""tplab generate: SmolLM2-135M-Instruct writing text across tensor-parallel ranks.

examples:
  tplab generate "What is tensor parallelism?"
  tplab generate --tp 3 --max-new-tokens 40 "What is tensor parallelism?"
  tplab generate --no-chat --temperature 0.8 --seed 1 "Once upon a time"
  tplab generate --tp 2 --threads 1 "What is a GPU?"     # 2 ranks, 1 thread each

Only the completion goes to stdout, streamed as it is generated; what ran and how
fast goes to stderr, e.g.

  [tp=2: 2 ranks x 1 thread each = 2 threads on 2 cores (default: cores / ranks)]
  [load 6.1 s; weights per rank 274, 240 MiB]
  [prompt 31 tokens in 0.15 s; decode 63 tokens in 3.40 s = 18.5 tok/s]

Threads: unless --threads is given, each rank gets cores / ranks threads (at least
one), so every --tp runs on the same cores and their speeds can be compared: TP 1
on one thread against TP 2 on two would flatter TP with the extra core. Load (each
rank reading and dequantising its shard) is timed apart from generation; decode
speed (tokens after the first, per second) is the figure to compare with lesson 04.
Each rank holds only its shard of the model; rank 0 streams.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

from tplab.models.locate import ModelFileError


def add_arguments(parser) -> None:
    parser.add_argument("prompt", nargs="*", help="the prompt (words are joined with spaces)")
    parser.add_argument("--tp", type=int, default=1,
                        help="tensor-parallel ranks (1 to the number of heads, 9)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"torch threads per rank (default: cores / ranks, at least 1; "
                             f"this machine: {usable_cores()} cores)")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="at most this many new tokens")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 = greedy (default); > 0 samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling")
    parser.add_argument("--no-chat", action="store_true",
                        help="feed the prompt as raw text, without the chat template")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(tp: int, cores: int) -> int:
    """Threads per rank that share `cores` out evenly between `tp` ranks (at least one each)."""
    return max(1, cores // tp)


def _fail(message: str) -> int:
    print(f"tplab generate: error: {message}", file=sys.stderr)
    return 2


def _rank_main(prompt_ids, max_new, temperature, seed, text_path):
    """Runs on every rank; rank 0 writes the new text to the FIFO `text_path` as tokens arrive.

    A path, not an inherited file descriptor: ranks started by a forkserver (tplab.launch
    uses one for several threads per rank) inherit no descriptors from this process.
    """
    import torch
    import torch.distributed as dist

    from tplab.models.generate import generate
    from tplab.models.loading import load_llama_tp, parameter_bytes
    from tplab.models.tokenizer import SmolTokenizer

    started = time.perf_counter()
    model = load_llama_tp()
    tokenizer = SmolTokenizer() if dist.get_rank() == 0 else None
    load = time.perf_counter() - started
    fd = os.open(text_path, os.O_WRONLY) if tokenizer is not None else None
    try:
        start, arrived, new, shown = time.perf_counter(), [], [], ""
        for token in generate(model, prompt_ids, max_new, temperature, seed):
            arrived.append(time.perf_counter() - start)
            new.append(token)
            if tokenizer is not None and token != model.config.eos_id:
                text = tokenizer.decode([t for t in new if t != model.config.eos_id])
                if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                    os.write(fd, text[len(shown):].encode())
                    shown = text
    finally:
        if fd is not None:
            os.close(fd)
    return {"tokens": len(new), "load_s": load, "prefill_s": arrived[0],
            "decode_s": arrived[-1] - arrived[0],
            "bytes": parameter_bytes(model), "threads": torch.get_num_threads()}


def run(args) -> int:
    prompt = " ".join(args.prompt)
    if not prompt.strip():
        return _fail("the prompt is empty; give some text, e.g. tplab generate \"What is a GPU?\"")
    if args.max_new_tokens < 1:
        return _fail(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        return _fail(f"--temperature must be >= 0, got {args.temperature}")
    if args.threads is not None and args.threads < 1:
        return _fail(f"--threads must be at least 1, got {args.threads}")
    try:
        from tplab.models.gguf_file import GGUFModelFile
        from tplab.models.tokenizer import SmolTokenizer
        model_file = GGUFModelFile()
    except ModelFileError as exc:
        return _fail(str(exc))
    heads = model_file.config.n_heads
    if not 1 <= args.tp <= heads:
        return _fail(f"--tp must be from 1 to {heads} (the model has {heads} attention heads), "
                     f"got {args.tp}")
    tokenizer = SmolTokenizer(model_file)
    ids = tokenizer.encode(prompt if args.no_chat else tokenizer.chat(prompt))
    return _stream(ids, args)


def _stream(ids, args) -> int:
    import tplab

    cores = usable_cores()
    threads = args.threads or default_threads(args.tp, cores)
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
        stats = tplab.launch(_rank_main, args.tp, ids, args.max_new_tokens, args.temperature,
                             args.seed,
                             fifo, backend="gloo", timeout=600, threads=threads)
    except tplab.WorkerError as exc:
        print(f"\ntplab generate: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        os.close(hold_fd)
        reader.join(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    print(flush=True)
    threads = stats[0]["threads"]  # what the ranks really ran with
    print(summary(args.tp, threads, cores, args.threads is None, len(ids), stats), file=sys.stderr)
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def summary(tp: int, threads: int, cores: int, default: bool, prompt_tokens: int,
            stats: list[dict]) -> str:
    """What ran and how fast, in three lines: ranks and threads; load, weights; prompt, decode."""
    total = tp * threads
    each = " each" if tp > 1 else ""
    ran = (f"[tp={tp}: {_plural(tp, 'rank')} x {_plural(threads, 'thread')}{each}"
           f" = {_plural(total, 'thread')} on {_plural(cores, 'core')}")
    if default:
        ran += " (default: cores / ranks)"
    if total > cores:
        ran += "; more threads than cores: they take turns, which slows every rank"
    s = stats[0]
    load = max(st["load_s"] for st in stats)
    weights = ", ".join(f"{st['bytes'] / 2**20:.0f}" for st in stats)
    decoded = s["tokens"] - 1
    if decoded > 0 and s["decode_s"] > 0:
        decode = (f"decode {_plural(decoded, 'token')} in {s['decode_s']:.2f} s = "
                  f"{decoded / s['decode_s']:.1f} tok/s")
    else:
        decode = "decode: none (it stopped at the first token, so no tok/s)"
    return "\n".join([
        ran + "]",
        f"[load {load:.1f} s; weights per rank {weights} MiB]",
        f"[prompt {_plural(prompt_tokens, 'token')} in {s['prefill_s']:.2f} s; {decode}]",
    ])
