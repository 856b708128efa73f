"""FastDecoder (static KV cache, row-split products, compiled step, bf16): the default decoder's
tokens at float32 — the tokens test_models.py checks against transformers."""
import pytest
import torch

from tplab.checks.lesson06_batching import tiny_llama
from tplab.layers.static_cache import StaticKVCache, causal_mask, context_length
from tplab.models.fast_decode import FastDecoder, fast_generate
from tplab.models.generate import generate

TINY_PROMPT = [5, 9, 12, 3]


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


def test_static_cache_writes_in_place_and_masks_the_future():
    cache = StaticKVCache(1, 2, 8, 4)
    k, v = torch.ones(1, 2, 3, 4), torch.full((1, 2, 3, 4), 2.0)
    before = cache.k.data_ptr()
    cache.write(torch.arange(3), k, v)
    assert cache.k.data_ptr() == before and cache.k[:, :, :3].eq(1).all()
    assert cache.k[:, :, 3:].eq(0).all()  # zeros, never NaN, where nothing was written
    mask = causal_mask(torch.tensor([2]), 8)
    assert mask.tolist() == [[True, True, True, False, False, False, False, False]]
    out = cache.attend(torch.randn(1, 4, 1, 4), mask)  # 4 query heads over 2 KV heads
    assert torch.allclose(out, torch.full_like(out, 2.0))
    assert context_length(1) == 256 and context_length(257) == 512


@pytest.mark.parametrize("threads,layout", [(1, "rows"), (2, "cols"), (3, "rows")])
def test_tiny_model_same_tokens_eager(tiny, threads, layout):
    reference = list(generate(tiny, TINY_PROMPT, 20, stop_at_eos=False))
    decoder = FastDecoder(tiny, threads=threads, layout=layout, max_len=8,  # grows to 256
                          split_min_bytes=0)  # split even tiny products
    assert list(fast_generate(decoder, TINY_PROMPT, 20, stop_at_eos=False)) == reference
    assert list(fast_generate(decoder, [7], 5, stop_at_eos=False)) == list(
        generate(tiny, [7], 5, stop_at_eos=False))  # the cache reused: stale entries masked


@pytest.mark.parametrize("threads", [2, 3])  # 3: more threads than this machine's cores
def test_compiled_step_generates_its_gemvs_on_every_thread(tiny, monkeypatch, threads):
    """Compiled on a CPU, the products are inductor's reductions, never the thread pool's custom
    op (gone here: tracing it would fail), run on torch's threads: the same tokens whatever
    their number (each output is one thread's dot product); bf16 too."""
    import tplab.models.fast_decode as fast_decode
    monkeypatch.setattr(fast_decode, "split_linear", None)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _generated_same_tokens(tiny, threads)
    finally:
        torch.set_num_threads(before)


def _generated_same_tokens(tiny, threads):
    decoder = FastDecoder(tiny, compile=True, split_min_bytes=0)  # every product in blocks
    assert decoder.layout == "rows" and decoder.step_threads == threads
    seconds = decoder.warm_up()  # compiled now, timed apart from decoding
    assert decoder.compiled_ok and seconds > 0
    assert list(fast_generate(decoder, TINY_PROMPT, 20, stop_at_eos=False)) == list(
        generate(tiny, TINY_PROMPT, 20, stop_at_eos=False))
    if threads == 2:
        half = FastDecoder(tiny, compile=True, dtype=torch.bfloat16)
        tokens = list(fast_generate(half, TINY_PROMPT, 10, stop_at_eos=False))
        assert half.compiled_ok and len(tokens) == 10


def test_compile_failure_warns_and_decodes_eagerly(tiny, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")
    monkeypatch.setattr(torch, "compile", broken)
    decoder = FastDecoder(tiny, compile=True)
    with pytest.warns(RuntimeWarning, match="no C.. compiler.*decoding eagerly"):
        tokens = list(fast_generate(decoder, TINY_PROMPT, 10, stop_at_eos=False))
    assert tokens == list(generate(tiny, TINY_PROMPT, 10, stop_at_eos=False))
    assert not decoder.compiled_ok and decoder.compile_s is None
    assert decoder.step_threads == 1  # eager: small operations on one thread again


def test_bf16_is_labelled_and_decodes(tiny):
    decoder = FastDecoder(tiny, dtype=torch.bfloat16)
    assert decoder.layers[0].qkv.b0.dtype == torch.bfloat16 and decoder.dtype == torch.bfloat16
    tokens = list(fast_generate(decoder, TINY_PROMPT, 20, stop_at_eos=False))
    assert len(tokens) == 20 and all(0 <= t < 64 for t in tokens)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_off_the_cpu_nothing_is_left_behind(tiny, dtype):
    """The meta device stands in for a GPU (as in tests/test_tp_devices.py): like CUDA it
    refuses a CPU tensor in its operations, so a rotary table, mask, cache, position or
    weight left on the CPU fails here as it would on a GPU. Values: tests/test_gpu.py."""
    decoder = FastDecoder(tiny, device="meta", dtype=dtype, split_min_bytes=0)
    assert {t.device.type for t in [*decoder.buffers(), *decoder.parameters()]} == {"meta"}
    assert (decoder.layout, decoder.threads, decoder.step_threads) == ("rows", 1, 1)
    logits = decoder.prefill(TINY_PROMPT)
    assert logits.device.type == "meta" and logits.shape[:2] == (1, len(TINY_PROMPT))
    decoder.reserve(300)  # grown: new caches and rotary tables, on the device too
    logits = decoder.decode(3, 299)
    assert logits.device.type == "meta" and logits.dtype == torch.float32
    assert decoder.cos.device.type == decoder.caches[0].k.device.type == "meta"


def test_rejects_a_tensor_parallel_rank_or_a_stage(tiny):
    from torch import nn
    stage = tiny_llama()
    stage.head = nn.Identity()
    with pytest.raises(ValueError, match="whole model"):
        FastDecoder(stage)


def test_real_model_same_tokens_as_the_default_decoder():
    from tplab.models.loading import load_llama
    from tplab.models.tokenizer import SmolTokenizer
    torch.set_num_threads(2)
    tok, model = SmolTokenizer(), load_llama()
    cases = [("Explain tensor parallelism in one sentence.", 2, "cols"),
             ("Write a haiku about GPUs.", 1, "rows")]
    for text, threads, layout in cases:
        ids = tok.encode(tok.chat(text))
        reference = list(generate(model, ids, 24, stop_at_eos=False))
        decoder = FastDecoder(model, threads=threads, layout=layout, split_min_bytes=1 << 20)
        assert list(fast_generate(decoder, ids, 24, stop_at_eos=False)) == reference


@pytest.mark.parametrize("argv, message", [
    (["--bf16", "hi"], "--compile and --bf16 go with --fast"),
    (["--fast", "--tp", "2", "hi"], "--fast decodes at --tp 1 --pp 1"),
])
def test_generate_cli_fast_flags_checked_before_loading(argv, message):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == "" and message in done.stderr
