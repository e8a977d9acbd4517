"""Regression verdicts: each checked run's outcome, and the latest one of every series."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.storage.models import RegressionVerdictRow, utcnow


def record_verdict(
    session: Session,
    experiment: str,
    series: str,
    *,
    baseline: str | None,
    regressed: bool,
    rules: Sequence[str],
) -> RegressionVerdictRow:
    """Store (or, for a rerun of the same experiment, replace) ``experiment``'s verdict."""
    row = session.get(RegressionVerdictRow, experiment) or RegressionVerdictRow(
        experiment=experiment, series=series
    )
    row.series, row.baseline, row.regressed = series, baseline, regressed
    row.rules, row.checked_at = list(rules), utcnow()
    session.add(row)
    session.flush()
    return row


def latest_verdicts(session: Session) -> list[RegressionVerdictRow]:
    """The most recent verdict of every series, by series name."""
    newest = (
        select(RegressionVerdictRow.series, func.max(RegressionVerdictRow.checked_at).label("at"))
        .group_by(RegressionVerdictRow.series)
        .subquery()
    )
    statement = (
        select(RegressionVerdictRow)
        .join(
            newest,
            (RegressionVerdictRow.series == newest.c.series)
            & (RegressionVerdictRow.checked_at == newest.c.at),
        )
        .order_by(RegressionVerdictRow.series)
    )
    rows = session.exec(statement).scalars()
    return list({row.series: row for row in rows}.values())
