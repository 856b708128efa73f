"""Row-split products: each block of output features computed on its own thread gives exactly
the product over all the rows (tplab.layers.row_split)."""
import pytest
import torch
import torch.nn.functional as F

from tplab.layers.row_split import block_edges, run_blocks, split_linear, split_weight


def test_block_edges_cover_every_feature_on_cache_lines():
    assert block_edges(49152, 2) == [0, 24576, 49152]
    assert block_edges(960, 3) == [0, 320, 640, 960]
    for n, parts in ((576, 4), (100, 3), (5, 2)):
        edges = block_edges(n, parts)
        assert edges[0] == 0 and edges[-1] == n and edges == sorted(edges)
        assert all(e % 16 == 0 for e in edges[1:-1])


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_rows_layout_is_bit_identical_to_one_linear(parts):
    torch.manual_seed(0)
    for rows, cols in ((3072, 576), (576, 1536), (960, 576), (100, 48)):
        w, x = torch.randn(rows, cols), torch.randn(1, 1, cols)
        blocks = split_weight(w, parts, "rows")
        assert all(b.data_ptr() >= w.data_ptr() for b in blocks)  # views, no copy
        assert torch.equal(run_blocks(x, blocks), F.linear(x, w))
        assert torch.equal(split_linear(x, blocks, False), F.linear(x, w))
        several = torch.randn(2, 5, cols)  # a prefill: blocks one after another, same values
        assert torch.equal(run_blocks(several, blocks), F.linear(several, w))


def test_cols_layout_is_the_same_product_summed_in_another_order():
    torch.manual_seed(1)
    w, x = torch.randn(576, 1536), torch.randn(1, 1, 1536)
    blocks = split_weight(w, 2, "cols")
    assert [b.shape for b in blocks] == [(1536, 288), (1536, 288)]
    assert torch.allclose(run_blocks(x, blocks, cols=True), F.linear(x, w), atol=1e-4)
    with pytest.raises(ValueError, match="layout"):
        split_weight(w, 2, "diagonal")
