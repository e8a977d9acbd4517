"""Pages computed once and kept in ``view_pages`` with the fingerprint of what they were
computed from: the view's summary and flip matrix (``evaluation.view.stored``), the
leaderboard's pipeline summary (``evaluation.storage.stages``), a series watch's verdict
(``evaluation.series._verdict``, kept on the series' first run). A page
is read back only while its fingerprint matches; a reader computes it otherwise. Keeping
one is best-effort: a read-only database keeps none."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from evaluation.storage.db import insert_ignoring_conflicts, refused_write
from evaluation.storage.models import ViewPage, utcnow


def stored_page(session: Session, experiment_id: int, page: str, fingerprint: str) -> Any:
    """The payload stored for ``page`` with ``fingerprint``; None when there is none."""
    row = session.get(ViewPage, (experiment_id, page))
    if row is None or row.fingerprint != fingerprint:
        return None
    return row.payload


def keep_page(
    session: Session, experiment_id: int, page: str, fingerprint: str, payload: Any
) -> None:
    """Store ``payload`` (replacing what was stored; concurrent writers of the same page
    both write it, the last one stays). Where the database takes no write (a teammate
    reading a shared copy read-only) nothing is, and the reader has its page all the same:
    `trends` refused such a copy and the view's series page answered HTTP 500 with the
    INSERT's traceback."""
    row = {
        "experiment_id": experiment_id,
        "page": page,
        "fingerprint": fingerprint,
        "payload": payload,
        "created_at": utcnow(),
    }
    try:
        with session.begin_nested():  # a refused write leaves the reader's transaction
            insert_ignoring_conflicts(
                session, ViewPage, [row], update_columns=("fingerprint", "payload", "created_at")
            )
    except DBAPIError as exc:
        if not refused_write(exc):
            raise
