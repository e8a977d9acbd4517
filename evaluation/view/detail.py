"""Everything about one generation or one case: the input as the model received it
(system prompt and every chat turn, the config's template applied as the sweep applied
it), references or label, every score with its detail, and pipeline stages where the
database has a stages table."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import MetaData, Table, func, inspect, select
from sqlmodel import Session

from evaluation.storage.dropped import has_dropped, own_configs
from evaluation.storage.models import CaseRow, Generation, ScoreDetail
from evaluation.storage.prompts import sent_messages
from evaluation.storage.repository import case_input
from evaluation.view.explain import explain_scores
from evaluation.view.queries import full_rows


def generation_detail(
    session: Session, experiment_id: int, generation_id: int
) -> dict[str, Any] | None:
    """One generation with everything the detail page shows; None when it is not in
    this experiment."""
    rows = full_rows(session, [generation_id])
    row = rows.get(generation_id)
    if row is None or int(row["experiment_id"]) != experiment_id:
        return None
    case = session.get(CaseRow, row["case_uid"])
    details = session.exec(
        select(ScoreDetail.metric, ScoreDetail.detail).where(
            ScoreDetail.generation_id == generation_id
        )
    ).all()
    score_details = {str(m): str(d) for m, d in details}
    references = list(case.references or [])
    system, turns = case_input(session, case)
    prompt = "\n".join([system or "", *(t["content"] for t in turns)])  # as scoring reads it
    return row | {
        "messages": sent_messages(session, case, row["config_hash"]),
        "references": references,
        "label": case.label,
        "score_details": score_details,
        "explanations": explain_scores(
            session,
            generation_id,
            row["scores"],
            score_details,
            row["output"] or "",
            references,
            case.label,
            prompt,
        ),
        "stages": generation_stages(session, row),
    }


def neighbours(
    session: Session, experiment_id: int, generation_id: int
) -> tuple[int | None, int | None]:
    """The generations before and after ``generation_id`` in the experiment's list order
    (by id, as the unsorted list shows them); None at either end. Two index lookups."""
    same = [Generation.experiment_id == experiment_id]
    if has_dropped(session, experiment_id):  # as the list: the last spec's configs
        same.append(Generation.config_hash.in_(own_configs(experiment_id)))
    before = session.exec(
        select(func.max(Generation.id)).where(*same, Generation.id < generation_id)
    )
    after = session.exec(
        select(func.min(Generation.id)).where(*same, Generation.id > generation_id)
    )
    return before.scalar(), after.scalar()


# Pipelines record each case's run and every model call of it under the generation's
# key, in tables of their own that plain sweeps' databases lack.
PIPELINE_TABLES = ("case_runs", "stages")
_KEY = ("experiment_id", "config_hash", "case_uid", "sample_index")


def generation_stages(session: Session, row: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The pipeline run and model calls (stages) of the generation ``row``, keyed by
    table name, in call order; empty when the database has no pipeline tables or the
    generation was a single call."""
    bind = session.connection()
    present = set(inspect(bind).get_table_names())
    out: dict[str, list[dict[str, Any]]] = {}
    for name in PIPELINE_TABLES:
        if name not in present:
            continue
        table = Table(name, MetaData(), autoload_with=bind)
        if not set(_KEY) <= set(table.c.keys()):
            continue
        order = [table.c[c] for c in ("position", "id") if c in table.c]
        query = select(table).where(*(table.c[k] == row[k] for k in _KEY)).order_by(*order)
        rows = [{k: v for k, v in r._mapping.items() if k not in _KEY} for r in session.exec(query)]
        for r in rows:  # a JSON column reflected from a database that keeps it as text
            for column in ("meta", "prompt", "retrieved"):
                if isinstance(r.get(column), str):
                    r[column] = json.loads(r[column])
        if rows:
            out[name] = rows
    return out
