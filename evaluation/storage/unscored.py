"""Generations a metric gave no score because its scorer failed on them: a user's scorer
that raised (detail ``error: ...``, ``evaluation/metrics/_user.py``) or one that could
not score the output (``not scored: ...``: a value its score type does not allow, an
embedding that failed). Their scores are stored missing with the reason as the detail;
the leaderboard says how many under the table (``NOT SCORED``), where a column of
``–`` said nothing of why (newcomer F8: a scorer raising on 28 of 28 outputs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlmodel import Session

from evaluation.storage.dropped import OWN_CONFIGS

RAISED = "error: "  # a user's scorer raised: evaluation/metrics/_user.py
UNSCORABLE = "not scored: "  # a scorer could not score the output
_EXAMPLE_CHARS = 100

_FAILED = text(
    "SELECT s.metric, CASE WHEN d.detail LIKE 'error: %' THEN 1 ELSE 0 END AS raised, "
    "COUNT(*) AS n, MIN(d.detail) AS example, COUNT(DISTINCT d.detail) AS kinds "
    "FROM scores s JOIN generations g ON g.id = s.generation_id "
    "JOIN score_details d ON d.generation_id = s.generation_id AND d.metric = s.metric "
    "WHERE g.experiment_id = :e AND s.metric IN :metrics AND s.value IS NULL "
    "AND (d.detail LIKE 'error: %' OR d.detail LIKE 'not scored: %') "
    f"AND {OWN_CONFIGS} GROUP BY s.metric, raised"
).bindparams(bindparam("metrics", expanding=True))
_SCORED = text(
    "SELECT s.metric, COUNT(*) AS n FROM scores s JOIN generations g ON g.id = s.generation_id "
    f"WHERE g.experiment_id = :e AND s.metric IN :metrics AND {OWN_CONFIGS} GROUP BY s.metric"
).bindparams(bindparam("metrics", expanding=True))


@dataclass(frozen=True)
class Unscored:
    """``failed`` of a metric's ``of`` scored generations have no score: its scorer
    ``raised`` on them (else it could not score them); ``example`` is one reason,
    ``kinds`` how many different reasons there are."""

    metric: str
    raised: bool
    failed: int
    of: int
    example: str
    kinds: int

    def words(self) -> str:
        """ "mypkg.checks:boom raised on 28 of 28 generations (RuntimeError: kaboom)"."""
        did = "raised on" if self.raised else "could not score"
        others = self.kinds - 1
        more = f", and {others} other {'error' if others == 1 else 'errors'}" if others else ""
        return f"{self.metric} {did} {self.failed} of {self.of} generations ({self.example}{more})"


def unscored(session: Session, experiment_id: int, metrics: Sequence[str]) -> list[Unscored]:
    """Where ``metrics``' scorers failed on the experiment's generations (of its own
    configs), a metric's raised ones before those it could not score; [] where none did
    (one query on the missing scores)."""
    if not metrics:
        return []
    connection = session.connection()
    key = {"e": experiment_id, "metrics": list(metrics)}
    rows = connection.execute(_FAILED, key).all()
    if not rows:
        return []
    failing = sorted({metric for metric, *_ in rows})
    of = dict(connection.execute(_SCORED, {**key, "metrics": failing}).all())
    order = {m: i for i, m in enumerate(metrics)}
    return [
        Unscored(metric, bool(raised), int(n), int(of[metric]), _example(example), int(kinds))
        for metric, raised, n, example, kinds in sorted(
            rows, key=lambda r: (order.get(r[0], len(order)), -r[1])
        )
    ]


def _example(detail: str) -> str:
    """A reason as a line says it: without its prefix, on one line, cut short."""
    for prefix in (RAISED, UNSCORABLE):
        detail = detail.removeprefix(prefix)
    said = " ".join(detail.split())
    return said if len(said) <= _EXAMPLE_CHARS else said[: _EXAMPLE_CHARS - 1] + "…"
