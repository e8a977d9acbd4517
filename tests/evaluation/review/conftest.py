"""A toy experiment ready for review, in a fresh SQLite file per test."""

from __future__ import annotations

import pytest

from tests.support.review_db import ReviewDB, build_review_db


@pytest.fixture
def review_db(database_url: str) -> ReviewDB:
    return build_review_db(database_url)
