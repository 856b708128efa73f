"""The cache of dequantized weights gives the dequantizer's values, is rebuilt when spoiled,
and never stops the model from loading (tplab/models/weight_cache.py)."""
from __future__ import annotations

import os

import gguf
import numpy as np
import pytest
import torch

from tplab.models.gguf_file import GGUFModelFile, gguf_name
from tplab.models.locate import find_gguf
from tplab.models.weight_cache import ENV, WeightCache, cache_root

Q4 = gguf_name("attn.q", 3)   # Q4_1, rows interleaved per head (unpermuted on reading)
Q8 = gguf_name("embed")       # Q8_0
SLICES = [(Q4, (64, 192), (5, 570)), (Q8, (1000, 1010), (0, 576)), (Q4, None, None)]


def read(name, rows, cols):
    return GGUFModelFile(find_gguf()).tensor(name, rows, cols)


@pytest.fixture
def uncached(monkeypatch):
    monkeypatch.setenv(ENV, "0")
    return {s[0] + str(s[1:]): read(*s) for s in SLICES}


def files(folder):
    return sorted(p.name for p in folder.rglob("*.npy")) if folder.exists() else []


def test_cached_slices_equal_the_dequantizer_and_are_read_back(uncached, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    for s in SLICES:                                 # cold: dequantized whole, then written
        assert torch.equal(read(*s), uncached[s[0] + str(s[1:])]), s
    assert files(tmp_path) == sorted(n + ".npy" for n in {Q4, Q8})

    def no_dequantizing(*args):
        raise AssertionError("dequantized although the cache holds the matrix")
    monkeypatch.setattr(gguf.quants, "dequantize", no_dequantizing)
    for s in SLICES:                                 # warm: from the cache alone
        assert torch.equal(read(*s), uncached[s[0] + str(s[1:])]), s


def test_a_spoiled_cache_file_is_rebuilt(uncached, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    read(*SLICES[0])
    (cached,) = tmp_path.rglob(f"{Q4}.npy")
    cached.write_bytes(cached.read_bytes()[:1000])   # truncated: not a matrix of that shape
    assert torch.equal(read(*SLICES[0]), uncached[SLICES[0][0] + str(SLICES[0][1:])])
    assert np.load(cached).shape == (576, 576)       # written anew


def test_off_writes_nothing(tmp_path, monkeypatch):
    assert cache_root({ENV: "0"}) is None
    monkeypatch.setenv(ENV, "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    read(*SLICES[0])
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_warns_once_and_the_model_still_loads(uncached, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(ENV, str(blocker))
    with pytest.warns(RuntimeWarning, match="without the cache") as seen:
        values = [read(*s) for s in SLICES]
    assert len(seen) == 1
    assert all(torch.equal(v, uncached[s[0] + str(s[1:])]) for v, s in zip(values, SLICES))


def test_the_key_follows_the_file(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"x" * 10)
    env = {ENV: str(tmp_path / "cache")}
    first = WeightCache.for_file(model, env).folder
    os.utime(model, ns=(1, 1))
    assert WeightCache.for_file(model, env).folder != first     # changed file: another folder
    model.write_bytes(b"x" * 11)
    assert WeightCache.for_file(model, env).folder.name.startswith("model-11-")
    assert cache_root({"HOME": "/h"}) == cache_root({"HOME": "/h", ENV: ""})
    assert str(cache_root({"HOME": "/h"})) == "/h/.cache/tplab/weights"
