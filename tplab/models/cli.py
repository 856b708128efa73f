"""tplab generate: SmolLM2-135M-Instruct writing text across tensor-parallel ranks.

    tplab generate "What is tensor parallelism?"
    tplab generate --tp 3 --max-new-tokens 40 "What is tensor parallelism?"
    tplab generate --no-chat --temperature 0.8 --seed 1 "Once upon a time"

Only the completion goes to stdout, streamed as it is generated; what was loaded and how
fast it ran go to stderr. Each rank holds only its shard of the model; rank 0 streams.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from tplab.models.locate import ModelFileError


def add_arguments(parser) -> None:
    parser.add_argument("prompt", nargs="*", help="the prompt (words are joined with spaces)")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel ranks (1 to the number of heads, 9)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="at most this many new tokens")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling")
    parser.add_argument("--no-chat", action="store_true", help="feed the prompt as raw text, without the chat template")


def _fail(message: str) -> int:
    print(f"tplab generate: error: {message}", file=sys.stderr)
    return 2


def _rank_main(prompt_ids, max_new, temperature, seed, fd):
    """Runs on every rank; rank 0 writes the new text to the pipe `fd` as tokens arrive."""
    import torch.distributed as dist

    from tplab.models.generate import generate
    from tplab.models.loading import load_llama_tp, parameter_bytes
    from tplab.models.tokenizer import SmolTokenizer

    model = load_llama_tp()
    tokenizer = SmolTokenizer() if dist.get_rank() == 0 else None
    start, new, shown = time.perf_counter(), [], ""
    for token in generate(model, prompt_ids, max_new, temperature, seed):
        new.append(token)
        if tokenizer is not None and token != model.config.eos_id:
            text = tokenizer.decode([t for t in new if t != model.config.eos_id])
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                os.write(fd, text[len(shown):].encode())
                shown = text
    return {"tokens": len(new), "seconds": time.perf_counter() - start, "bytes": parameter_bytes(model)}


def run(args) -> int:
    prompt = " ".join(args.prompt)
    if not prompt.strip():
        return _fail("the prompt is empty; give some text, e.g. tplab generate \"What is a GPU?\"")
    if args.max_new_tokens < 1:
        return _fail(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.temperature < 0:
        return _fail(f"--temperature must be >= 0, got {args.temperature}")
    try:
        from tplab.models.gguf_file import GGUFModelFile
        from tplab.models.tokenizer import SmolTokenizer
        model_file = GGUFModelFile()
    except ModelFileError as exc:
        return _fail(str(exc))
    heads = model_file.config.n_heads
    if not 1 <= args.tp <= heads:
        return _fail(f"--tp must be from 1 to {heads} (the model has {heads} attention heads), got {args.tp}")
    tokenizer = SmolTokenizer(model_file)
    ids = tokenizer.encode(prompt if args.no_chat else tokenizer.chat(prompt))
    return _stream(ids, args)


def _stream(ids, args) -> int:
    import tplab

    read_fd, write_fd = os.pipe()
    out = sys.stdout

    def pump():  # copy rank 0's text to stdout as it comes
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(4096):
                out.write(chunk.decode(errors="replace"))
                out.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        stats = tplab.launch(_rank_main, args.tp, ids, args.max_new_tokens, args.temperature, args.seed,
                             write_fd, backend="gloo", timeout=600)
    except tplab.WorkerError as exc:
        print(f"\ntplab generate: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        os.close(write_fd)
        reader.join(timeout=10)
    print(flush=True)
    s = stats[0]
    per_rank = ", ".join(f"{st['bytes'] / 2**20:.0f}" for st in stats)
    print(f"[tp={args.tp}: {len(ids)} prompt tokens, {s['tokens']} new in {s['seconds']:.1f} s "
          f"({s['tokens'] / s['seconds']:.1f} tok/s); weights per rank MiB: {per_rank}]", file=sys.stderr)
    return 0
