"""Real handwritten digits for lesson 05's LeNet-5, from scikit-learn, with no download.

Why this data set. The source article's case 2 trains LeNet "model-parallel" on handwritten
digits. scikit-learn ships a small real set inside its wheel: `sklearn.datasets.load_digits`,
1,797 scanned digits as 8×8 grey levels 0..16 — the test part of UCI's "Optical Recognition of
Handwritten Digits" (Alpaydin and Kaynak, 1998; UCI data set 80, CC BY 4.0). Reading it needs
no network, so a notebook cell runs the same anywhere the course's set-up ran.

What we make of it. LeNet-5 wants 32×32 inputs: each 8×8 image is resized to 32×32 (bilinear,
so the strokes stay strokes rather than a tiny picture in a sea of padding), then shifted and
scaled so the training pixels have mean 0 and standard deviation 1 (training starts at once
instead of sitting on a plateau). The train/test split is a fixed seeded permutation
(`torch.Generator`), so every process — one rank, every pipeline rank, the single-process
reference — sees the same rows in the same order.

    data = load_digits_32()          # Digits(train_x [1437, 1, 32, 32], train_y, test_x, test_y)
    batches = data.batches(64, epoch=0)   # [(x, y), ...] a seeded shuffle per epoch
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tplab.data_errors import DataSetError
from tplab.install import pip_command

__all__ = ["Digits", "DataSetError", "load_digits_32", "TEST_ROWS", "SIDE"]

SIDE = 32         # LeNet-5's input side
TEST_ROWS = 360   # divides by 1..6 and 8: any of those micro-batch counts splits it evenly


@dataclass(frozen=True)
class Digits:
    train_x: torch.Tensor   # [n, 1, 32, 32] float32, standardised
    train_y: torch.Tensor   # [n] int64, 0..9
    test_x: torch.Tensor
    test_y: torch.Tensor
    seed: int

    def batches(self, size: int, epoch: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The training rows in a seeded order for this epoch, as full batches of `size` (the
        remainder is dropped, so every batch splits into the same micro-batches)."""
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        order = torch.randperm(len(self.train_y), generator=g)
        return [(self.train_x[idx], self.train_y[idx])
                for idx in order[: len(order) // size * size].split(size)]


def _raw_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataSetError("The handwritten digits come with scikit-learn, which is not "
                           f"installed.\nFix: {pip_command()} install scikit-learn") from None
    data = load_digits()
    return torch.tensor(data.data, dtype=torch.float32), torch.tensor(data.target)


def load_digits_32(seed: int = 0, test_rows: int = TEST_ROWS) -> Digits:
    """scikit-learn's 1,797 digits as LeNet inputs, split once by `seed`."""
    pixels, labels = _raw_digits()
    images = F.interpolate(pixels.view(-1, 1, 8, 8), size=(SIDE, SIDE), mode="bilinear",
                           align_corners=False)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    test, train = order[:test_rows], order[test_rows:]
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return Digits(images[train].contiguous(), labels[train].contiguous(),
                  images[test].contiguous(), labels[test].contiguous(), seed)
