"""`show`'s tables are laid out without pandas: byte for byte what
``DataFrame.to_string(index=False)`` makes of the same text cells (right-aligned, tabs and
line breaks escaped, the white space every column name starts with left out, no rows)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from evaluation.compare._text_table import text_table

PIECES = [" ", "  ", "\u3000", "\xa0", "\x0b", "a", "Z", "–", "é", "日", "\t", "\n", "\r", "#"]
PIECES += ["[", "0", ".", "-", "\\", "'", '"', "\x1b", "\u200b", "NaN", "None", "1e5", ""]


def _text(rng: random.Random, most: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most)))


@pytest.mark.parametrize("seed", range(20))
def test_the_table_is_pandas_to_string_byte_for_byte(seed):
    rng = random.Random(seed)
    for _ in range(50):
        rows = rng.randint(0, 5)
        columns = {
            f"{_text(rng, 5)}{i}": [_text(rng, 8) for _ in range(rows)]
            for i in range(rng.randint(1, 6))
        }
        assert text_table(columns) == pd.DataFrame(columns).to_string(index=False), columns


def test_a_leaderboard_like_table():
    columns = {"#": ["#1", "#10"], "config": ["a", "bbbbbbbbbb"], "x": ["", "–"]}
    assert text_table(columns) == "  #     config x\n #1          a  \n#10 bbbbbbbbbb –"
