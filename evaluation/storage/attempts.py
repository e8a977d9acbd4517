"""Writing and reading the failed attempts of generations (``generation_attempts``):
what a row's ``attempts`` count was made of."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import insert, select
from sqlmodel import Session

from evaluation.storage.models import GenerationAttempt, utcnow

if TYPE_CHECKING:  # the run's types (the backends): a reader of results needs neither
    from evaluation.run._work import GenerationRecord, WorkKey


def save_failed_attempts(
    session: Session, experiment_id: int, records: Iterable[GenerationRecord]
) -> None:
    """Append each record's failed attempts, in one statement for the batch."""
    now = utcnow()
    rows = [
        {
            "experiment_id": experiment_id,
            "config_hash": record.item.config.hash,
            "case_uid": record.item.case_uid,
            "sample_index": record.item.sample_index,
            "attempt": failed.attempt,
            "model": failed.model,
            "host": failed.host,
            "outcome": failed.outcome,
            "reason": failed.reason,
            "seconds": failed.seconds,
            "created_at": now,
        }
        for record in records
        for failed in record.failed_attempts
    ]
    if rows:
        session.connection().execute(insert(GenerationAttempt.__table__), rows)


def failed_attempts(session: Session, experiment_id: int, key: WorkKey) -> list[GenerationAttempt]:
    """A generation's failed attempts, oldest first."""
    config_hash, case_uid, sample_index = key
    return list(
        session.exec(
            select(GenerationAttempt)
            .where(
                GenerationAttempt.experiment_id == experiment_id,
                GenerationAttempt.config_hash == config_hash,
                GenerationAttempt.case_uid == case_uid,
                GenerationAttempt.sample_index == sample_index,
            )
            .order_by(GenerationAttempt.id)
        ).scalars()
    )
