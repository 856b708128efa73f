"""SmolLM2-135M through a pipeline: the stages hold what they should (and only that), and with
several prompts in flight PP = 2, PP = 3 and PP = 2 x TP = 2 give the single-process tokens."""
import os

import pytest
import torch

import tplab
from tplab.models.generate import generate
from tplab.models.gguf_file import GGUFModelFile
from tplab.models.llama import Config
from tplab.models.loading import load_llama, parameter_bytes
from tplab.models.tokenizer import SmolTokenizer
from tplab.pp.llm import (
    check_layout,
    llama_layer_costs,
    llama_stages,
    load_stage,
    pipelined_generate,
)

# different lengths; the first stops at the end-of-turn token before its limit
PROMPTS = ["What is the capital of France?", "Explain tensor parallelism in one sentence.",
           "Write a haiku about GPUs."]
LIMITS = [12, 5, 9]


@pytest.fixture(scope="module")
def model_file():
    return GGUFModelFile()  # opened once: forked ranks inherit it instead of parsing it again


@pytest.fixture(scope="module")
def prompt_ids(model_file):
    tok = SmolTokenizer(model_file)
    return [tok.encode(tok.chat(p)) for p in PROMPTS]


@pytest.fixture(scope="module")
def reference(model_file, prompt_ids):
    """One process, the whole model: generate() on each prompt in turn."""
    torch.set_num_threads(1)  # two spinning threads crawl when other processes share the cores
    model = load_llama(model_file)
    tokens = [list(generate(model, ids, n)) for ids, n in zip(prompt_ids, LIMITS)]
    eos = model.config.eos_id
    assert tokens[0][-1] == eos and len(tokens[0]) < LIMITS[0], "no prompt stops early"
    assert [len(t) for t in tokens[1:]] == LIMITS[1:] and eos not in tokens[1] + tokens[2]
    sampled = [list(generate(model, ids, n, temperature=0.8, seed=3))
               for ids, n in zip(prompt_ids, LIMITS)]
    assert sampled != tokens, "sampling at 0.8 chose the greedy tokens: choose another seed"
    return tokens, sampled


def pipeline_worker(prompt_ids, limits, pp, tp, model_file):
    me = load_stage(pp, tp, path=model_file)
    m = me.model
    holds = {"embed": not isinstance(m.embed, torch.nn.Identity),
             "head": not isinstance(m.head, torch.nn.Identity),
             "norm": not isinstance(m.norm, torch.nn.Identity)}
    served = pipelined_generate(prompt_ids, limits, pp, tp, rank=me)
    sampled = pipelined_generate(prompt_ids, limits, pp, tp, rank=me, temperature=0.8, seed=3)
    return me.layers, holds, parameter_bytes(m), served, sampled


@pytest.mark.parametrize("pp, tp", [(2, 1), (3, 1), (2, 2)])
def test_pipeline_generates_the_single_process_tokens(pp, tp, model_file, prompt_ids, reference):
    greedy, sampled_reference = reference
    results = tplab.launch(pipeline_worker, pp * tp, prompt_ids, LIMITS, pp, tp, model_file,
                           timeout=60)
    config = model_file.config
    stages = llama_stages(config, pp)
    costs = llama_layer_costs(config)
    for rank, (layers, holds, nbytes, served, sampled) in enumerate(results):
        stage = rank // tp
        assert layers == stages[stage]
        assert holds == {"embed": stage == 0, "head": stage == pp - 1, "norm": stage == pp - 1}
        if tp == 1:  # exactly its layers' weights, the embedding or the head: nothing else
            assert nbytes == sum(costs[i] for i in layers)
        if stage < pp - 1:
            assert served is None and sampled is None
            continue
        assert served["tokens"] == greedy, f"pp={pp} tp={tp}: tokens differ from one process"
        # the same seed samples the same tokens (each prompt as generate() alone)
        assert sampled["tokens"] == sampled_reference
        assert all(0 < a <= b <= served["elapsed_s"]
                   for a, b in zip(served["first_token_s"], served["latency_s"]))
        total = sum(len(t) for t in greedy)
        assert served["tokens_per_s"] == pytest.approx(total / served["elapsed_s"])


def test_stage_splits_balance_bytes_or_bytes_read_per_token():
    c = Config()  # SmolLM2-135M's sizes
    # the embedding (first stage) and the tied head's copy (last) weigh the same: an even split
    assert llama_stages(c, 2) == [range(0, 15), range(15, 30)]
    # a decode step reads one row of the embedding but the whole head: the last stage gets less
    first, last = llama_stages(c, 2, by="reads")
    assert len(first) > len(last) and first.stop == last.start
    assert [len(r) for r in llama_stages(c, 30)] == [1] * 30


@pytest.mark.parametrize("pp, tp, world, message", [
    (0, 1, None, "pipeline degree 0 does not fit 30 layers"),
    (31, 1, None, "pipeline degree 31 does not fit 30 layers"),
    (2, 10, None, "tensor-parallel degree 10 does not fit 9 attention heads"),
    (2, 0, None, "tensor-parallel degree 0 does not fit 9 attention heads"),
    (2, 2, 3, "pp=2 x tp=2 needs 4 ranks, this run has 3"),
])
def test_bad_layouts_are_refused_with_a_clear_error(pp, tp, world, message):
    with pytest.raises(ValueError, match=message):
        check_layout(pp, tp, Config(), world)


def refuse_worker(model_file):
    return pipelined_generate([[1, 2, 3]], 2, 3, 1, path=model_file)


def test_a_layout_that_does_not_match_the_ranks_fails_before_loading(model_file):
    with pytest.raises(tplab.WorkerError, match="pp=3 x tp=1 needs 3 ranks, this run has 2"):
        tplab.launch(refuse_worker, 2, model_file, timeout=30)


def test_a_stage_outside_the_model_is_refused(model_file):
    for layers in (range(0, 31), range(5, 5), range(0, 10, 2)):
        with pytest.raises(ValueError, match="layers must be a non-empty range"):
            load_llama(model_file, layers=layers)


def test_serving_benchmark_leaves_the_callers_environment_alone(monkeypatch):
    from tplab.pp.serving import serving_benchmark
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    got = serving_benchmark(1, 1, 2, threads=2, repeats=1, timeout=120)
    assert got["tokens"] == 2 and got["threads"] == 2
    assert "OMP_WAIT_POLICY" not in os.environ    # set for the ranks only
