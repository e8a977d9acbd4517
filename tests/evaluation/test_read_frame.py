"""Whole-experiment reads are read in parts (evaluation/storage/db.read_frame): the frame
is the one a single read gives, whatever nulls a part holds."""

from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from evaluation.storage import db

ROWS = [  # id, a float, a string, an integer, a mixed column; nulls in the first part only
    (1, None, None, None, None),
    (2, None, None, None, None),
    (3, 0.5, "x", 7, "one"),
    (4, 1.5, "y", 8, 2),
    (5, None, "z", 9, None),
]


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'frame.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER, f REAL, s TEXT, i INTEGER, m)"))
        for row in ROWS:
            connection.execute(
                text("INSERT INTO t VALUES (:a, :b, :c, :d, :e)"),
                dict(zip("abcde", row, strict=True)),
            )
    with Session(engine) as session:
        yield session


@pytest.mark.parametrize("rows_at_once", [1, 2, 3, 10])
def test_a_read_in_parts_gives_the_frame_of_one_read(session, monkeypatch, rows_at_once) -> None:
    monkeypatch.setattr(db, "READ_ROWS", rows_at_once)
    for columns in ("id, f, s", "id, f, s, i", "id, m", "*"):
        query = text(f"SELECT {columns} FROM t ORDER BY id")
        whole = pd.read_sql(query, session.connection())
        assert_frame_equal(db.read_frame(session, query, {}), whole)


def test_no_rows_give_the_columns(session) -> None:
    frame = db.read_frame(session, text("SELECT id, f FROM t WHERE id > :n"), {"n": 99})
    assert list(frame.columns) == ["id", "f"] and frame.empty
