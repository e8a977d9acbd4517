"""Why a score is what it is, as the detail page shows it: what exact_match and contains
compared after normalisation, the tests a program failed and why (not the stored JSON),
the judge's reasoning, or the scorer's own detail text."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from evaluation.review._names import JUDGE_PREFIX
from evaluation.review.schema import Judgement
from evaluation.suites import Case

_MATCHES = {"exact_match": False, "contains": True}


@dataclass(frozen=True)
class Explanation:
    """A sentence, and for code the failed tests as (test, reason) rows."""

    text: str = ""
    failed_tests: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def explain_scores(
    session: Session,
    generation_id: int,
    scores: Mapping[str, float | None],
    details: Mapping[str, str],
    output: str,
    references: Sequence[str],
    label: str | None,
    prompt: str | None = None,
) -> dict[str, Explanation]:
    """One explanation per scored metric that has something to say; ``prompt`` (the
    case's system prompt and messages) shows matches on the answer part scoring used."""
    case = Case("", "", references=tuple(references), label=label)
    reasons = _judge_reasons(session, generation_id)
    out: dict[str, Explanation] = {}
    for metric in scores:
        if metric in _MATCHES:
            from evaluation.metrics import match_explanation  # numpy: for a generation's page

            text = match_explanation(output or "", case, contains=_MATCHES[metric], prompt=prompt)
            if text:
                out[metric] = Explanation(text)
        elif metric.startswith(JUDGE_PREFIX) and metric.removeprefix(JUDGE_PREFIX) in reasons:
            out[metric] = Explanation(reasons[metric.removeprefix(JUDGE_PREFIX)])
        elif metric in details:
            out[metric] = _from_detail(details[metric])
    return out


def _from_detail(detail: str) -> Explanation:
    """A stored detail: a program's test report (JSON with passed/total/failed) in words
    and rows, anything else as written."""
    try:
        body = json.loads(detail)
    except ValueError:
        return Explanation(detail)
    if not (isinstance(body, dict) and {"passed", "total"} <= set(body)):
        return Explanation(detail)
    text = f"{body['passed']} of {body['total']} tests passed"
    if body.get("killed"):
        text += f"; the program was killed ({body['killed']})"
    failed = tuple(
        (str(f.get("test", "")), str(f.get("reason", "")))
        for f in body.get("failed", [])
        if isinstance(f, dict)
    )
    return Explanation(text, failed)


def _judge_reasons(session: Session, generation_id: int) -> dict[str, str]:
    """The latest pointwise judgement's reason per criterion for this generation."""
    rows = session.exec(
        select(Judgement.criterion, Judgement.reason)
        .where(Judgement.generation_id == generation_id, Judgement.other_generation_id.is_(None))
        .order_by(Judgement.id)
    ).all()
    return {str(criterion): str(reason) for criterion, reason in rows if reason}
