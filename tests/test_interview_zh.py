"""Every interview item reads in Chinese end to end (lesson 08, `tplab interview --lang zh`):
the question and the explanation are both written in Chinese, so a Chinese learner never falls
back to the English explanation (`Item.explain` returns English when explanation_zh is empty)."""
from __future__ import annotations

import re

import pytest

from tplab.interview import BANK

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("item", BANK, ids=lambda i: i.id)
def test_question_and_explanation_are_chinese(item):
    assert CJK.search(item.question_zh), f"{item.id}: question_zh has no Chinese"
    assert item.explanation_zh.strip(), f"{item.id}: explanation_zh is empty"
    assert CJK.search(item.explanation_zh), \
        f"{item.id}: explanation_zh must be written in Chinese: {item.explanation_zh!r}"
    assert item.explain("zh") == item.explanation_zh != item.explain("en")


def test_no_item_falls_back_to_english():
    english = [i.id for i in BANK if not i.explanation_zh]
    assert not english, f"items a Chinese learner reads in English: {english}"
