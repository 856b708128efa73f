"""The decoding shortcuts of tplab.layers against their plain forms."""
import pytest
import torch

from tplab.layers import (
    Attention,
    LayerCache,
    Rotary,
    attend,
    attend_one,
    kv_of_heads,
    query_groups,
)


def rotate_half_reference(t, offset, base=100000.0):
    d = t.shape[-1]
    inv_freq = 1.0 / base ** (torch.arange(0, d, 2).float() / d)
    angles = torch.outer(torch.arange(offset, offset + t.shape[-2]).float(), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    rotated = torch.cat([-t[..., d // 2:], t[..., : d // 2]], dim=-1)
    return t * angles.cos() + rotated * angles.sin()


@pytest.mark.parametrize("offset", [0, 7, 300, 5000])
@pytest.mark.parametrize("positions", [1, 5])
def test_rotary_matches_the_textbook_rotate_half(offset, positions):
    torch.manual_seed(offset)
    t = torch.randn(2, 4, positions, 64)
    assert torch.allclose(Rotary(64, 100000.0)(t, offset), rotate_half_reference(t, offset),
                          atol=1e-5)


def test_kv_of_heads():
    assert kv_of_heads(6, 2).tolist() == [0, 0, 0, 1, 1, 1]
    assert kv_of_heads(3, 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        kv_of_heads(9, 2)


def test_query_groups():
    assert query_groups(torch.tensor([0, 0, 0, 1, 1, 1]), 2) == 3
    assert query_groups(torch.tensor([0, 1]), 2) == 1
    assert query_groups(torch.tensor([0, 1, 1]), 2) == 0   # uneven groups
    assert query_groups(torch.tensor([1, 0]), 2) == 0      # not in order
    assert query_groups(torch.tensor([0, 0]), 1) == 2


@pytest.mark.parametrize("kv_of_head", [[0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 1], [0, 0, 1]])
def test_attend_one_equals_attend_for_one_new_position(kv_of_head):
    """The decoding path (fused projection in, rotation as one product, grouped queries) gives
    attend()'s output (elementwise rotation, one K and V per query head), for regular and
    irregular query-to-KV maps, after a prefill."""
    torch.manual_seed(0)
    kv_of_head = torch.tensor(kv_of_head)
    hq, hkv, d, prefill = len(kv_of_head), int(kv_of_head.max()) + 1, 64, 6
    rope = Rotary(d, 100000.0)
    caches = [LayerCache(1, hkv, 16, d) for _ in range(2)]
    q = torch.randn(1, hq, prefill, d)
    k, v = torch.randn(1, hkv, prefill, d), torch.randn(1, hkv, prefill, d)
    for cache in caches:
        attend(q, k, v, kv_of_head, rope, cache)
    for _ in range(3):
        y = torch.randn(1, 1, (hq + 2 * hkv) * d)  # [q | k | v] of one new position
        parts = y.split([hq * d, hkv * d, hkv * d], dim=-1)
        qn, kn, vn = (t.view(1, 1, -1, d).transpose(1, 2) for t in parts)
        expected = attend(qn, kn, vn, kv_of_head, rope, caches[0])
        expected = expected.transpose(1, 2).reshape(1, 1, hq * d)
        got = attend_one(y, hq, kv_of_head, query_groups(kv_of_head, hkv), rope, caches[1])
        assert got.shape == (1, 1, hq * d)
        assert torch.allclose(got, expected, atol=1e-5)
    a, b = caches
    assert torch.allclose(a.k[:, :, :a.length], b.k[:, :, :b.length], atol=1e-5)


def test_fused_attention_decodes_like_the_unfused_one():
    torch.manual_seed(1)
    plain = Attention(64, 4, 2, 16).requires_grad_(False)
    fused = Attention(64, 4, 2, 16).requires_grad_(False)
    fused.load_state_dict(plain.state_dict())
    fused.fuse()
    assert fused.fused is not None and fused.groups == 2
    rope = Rotary(16, 10000.0)
    caches = [LayerCache(1, 2, 8, 16) for _ in range(2)]
    with torch.no_grad():
        for x in (torch.randn(1, 3, 64), torch.randn(1, 1, 64), torch.randn(1, 1, 64)):
            assert torch.allclose(fused(x, rope, caches[1]), plain(x, rope, caches[0]), atol=1e-5)
