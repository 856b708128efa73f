"""ZeRO: the paper's memory formula; ZeRO-1 on real ranks against one-process AdamW."""
import pytest

from tplab.zero import zero_memory_bytes


def test_zero_memory_matches_the_papers_7_5b_on_64_gpus_example():
    gigabytes = [zero_memory_bytes(7.5e9, 64, stage) / 1e9 for stage in range(4)]
    assert [round(g, 1) for g in gigabytes] == [120.0, 31.4, 16.6, 1.9]
    assert gigabytes == pytest.approx([120, 30 + 90 / 64, 15 + 105 / 64, 120 / 64])


def test_zero_memory_on_one_rank_is_plain_data_parallelism():
    assert {zero_memory_bytes(1000, 1, stage) for stage in range(4)} == {16000}


@pytest.mark.parametrize("bad", [dict(stage=4), dict(stage=-1), dict(n=0), dict(n=2.0)])
def test_zero_memory_refuses_bad_stage_or_rank_count(bad):
    args = dict(psi=10, n=2, stage=1) | bad
    with pytest.raises(ValueError, match="stage|n \\(data"):
        zero_memory_bytes(**args)
