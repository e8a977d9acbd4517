"""Writing and reading the pipeline tables (in ``models``): configs' pipelines,
case runs and their stages."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, text
from sqlmodel import Session, select

from evaluation.pipelines._setting import SINGLE
from evaluation.pipelines.summary import PipelineSummary, no_pipelines, summary_of
from evaluation.storage.db import insert_ignoring_conflicts, read_frame
from evaluation.storage.executemany import delete_many, insert_many, insert_returning
from evaluation.storage.models import CaseRun, ConfigPipeline, StageRow
from evaluation.storage.pages import keep_page, stored_page
from evaluation.storage.unnest import delete_unnested, insert_unnested

if TYPE_CHECKING:
    import pandas as pd

    from evaluation.pipelines._trace import StageRecord
    from evaluation.run._work import GenerationRecord
    from evaluation.spec import Config


def save_config_pipelines(session: Session, configs: Sequence[Config]) -> None:
    """Record the pipeline and parameters of every config that has one."""
    rows = [
        {"config_hash": c.hash, "pipeline": c.pipeline.name, "params": c.pipeline.params}
        for c in configs
        if c.pipeline is not None
    ]
    insert_ignoring_conflicts(session, ConfigPipeline, rows)


def save_case_traces(
    session: Session, experiment_id: int, records: Iterable[GenerationRecord]
) -> None:
    """Store each finished case's run and stages, replacing those of an earlier failed
    try; a case already stored by another run is left as it is (its generation is).
    A few statements for the whole batch, whatever its size."""
    traced: dict[tuple[str, str, int], GenerationRecord] = {}
    for record in records:
        if record.trace is not None and record.result is not None:
            item = record.item
            traced.setdefault((item.config.hash, item.case_uid, item.sample_index), record)
    if traced:
        _save_traces(session, experiment_id, traced)


def _save_traces(
    session: Session, experiment_id: int, traced: dict[tuple[str, str, int], GenerationRecord]
) -> None:
    """The case runs of ``traced`` inserted where none is stored (a rerun's, or another
    run's, is kept), the keys inserted read back from the insert itself; then, for those
    keys only, any stage left without its case run deleted and the stages inserted. No
    select and no IN list of keys: SQLAlchemy expands such a list's ~900 values on every
    statement (a third of the traces' CPU, benchmarks/perf/writer_store.py)."""
    runs, by_key = [], {}
    for (config_hash, uid, sample_index), record in traced.items():
        key = {
            "experiment_id": experiment_id,
            "config_hash": config_hash,
            "case_uid": uid,
            "sample_index": sample_index,
        }
        by_key[(config_hash, uid, sample_index)] = key
        trace = record.trace
        runs.append(
            key
            | {
                "pipeline": trace.pipeline,
                "wall_s": trace.wall_s,
                "calls": sum(not s.shared for s in trace.stages),  # its own
                "context_truncated_calls": trace.context_truncated_calls,
                "meta": trace.metadata,
            }
        )
    connection = session.connection()
    # each table's rows straight to the driver, in a few statements whatever their number
    if connection.dialect.name == "postgresql":  # one statement of arrays (storage.unnest)
        insert, insert_new, delete = insert_unnested, insert_unnested, delete_unnested
    else:  # sqlite3's executemany, the new runs' keys in pages (storage.executemany)
        insert, insert_new, delete = insert_many, insert_returning, delete_many
    inserted = insert_new(
        connection,
        CaseRun.__table__,
        runs,
        on_conflict="ON CONFLICT DO NOTHING",
        returning=_RUN_KEY,
    )
    new = {tuple(row) for row in inserted}  # keys, not positions: RETURNING has no order
    fresh = [key for key in traced if key in new]  # in the batch's order
    if not fresh:
        return
    stages = []
    for key in fresh:
        trace = traced[key].trace
        ordered = sorted(trace.stages, key=lambda s: s.start_s)
        transcript = trace.pipeline != SINGLE
        stages += [
            by_key[key] | {"position": i} | _stage_fields(st, transcript)
            for i, st in enumerate(ordered)
        ]
    keys = [dict(zip(_RUN_KEY, key, strict=True)) for key in fresh]
    delete(connection, StageRow.__table__, {"experiment_id": experiment_id}, keys)
    if stages:
        insert(connection, StageRow.__table__, stages)


_RUN_KEY = ("config_hash", "case_uid", "sample_index")


def _stage_fields(stage: StageRecord, transcript: bool) -> dict[str, Any]:
    """The row of ``stage``; its transcript (prompt, output, retrieved chunks) only when
    ``transcript`` (a ``single`` call's are its generation's input and output)."""
    return {
        "stage": stage.stage,
        "kind": stage.kind,
        "model": stage.model,
        "host": stage.host,
        "started_at": stage.started_at,
        "start_s": stage.start_s,
        "duration_s": stage.duration_s,
        "wait_s": stage.wait_s,
        "prompt_tokens": stage.prompt_tokens,
        "output_tokens": stage.output_tokens,
        "estimated_prompt_tokens": stage.estimated_prompt_tokens,
        "attempts": stage.attempts,
        "context_truncated": stage.context_truncated,
        "shared": stage.shared,
        "prompt": [list(turn) for turn in stage.prompt] if transcript and stage.prompt else None,
        "output": stage.output if transcript else None,
        "retrieved": [dataclasses.asdict(c) for c in stage.retrieved]
        if transcript and stage.retrieved
        else None,
    }


def case_runs_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """One row per stored case run of the experiment."""
    query = text("SELECT * FROM case_runs WHERE experiment_id = :e")
    return read_frame(session, query, {"e": experiment_id})


#: The transcript columns, read only for one generation's page: the leaderboard's sums
#: leave them (a rag sweep's prompts are megabytes).
TRANSCRIPT = frozenset({"prompt", "output", "retrieved"})


def stages_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """Every stage of the experiment's stored case runs, in call order per case, without
    the transcript (``TRANSCRIPT``)."""
    present = [c["name"] for c in inspect(session.connection()).get_columns("stages")]
    quote = session.connection().dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in present if c not in TRANSCRIPT)
    query = text(
        f"SELECT {columns} FROM stages WHERE experiment_id = :e "
        "ORDER BY config_hash, case_uid, sample_index, position"
    )
    return read_frame(session, query, {"e": experiment_id})


# Every stage of an experiment with its transcript, as `evalflow export --level stages`
# writes it: the case by its id and group, the generation the case run made (by its key).
_EXPORTED_STAGES = text(
    """
    SELECT s.id AS stage_id, g.id AS generation_id, s.config_hash, c.case_id,
           s.sample_index, c."group" AS case_group, s.position, s.stage, s.kind,
           s.model AS stage_model, s.host, s.shared, s.started_at, s.start_s, s.wait_s,
           s.duration_s, s.attempts, s.prompt_tokens, s.estimated_prompt_tokens,
           s.output_tokens, s.context_truncated, s.prompt, s.output, s.retrieved
    FROM stages s JOIN cases c ON c.uid = s.case_uid
    LEFT JOIN generations g ON g.experiment_id = s.experiment_id
         AND g.config_hash = s.config_hash AND g.case_uid = s.case_uid
         AND g.sample_index = s.sample_index
    WHERE s.experiment_id = :e
    ORDER BY s.config_hash, s.case_uid, s.sample_index, s.position
    """
)


def exported_stages(session: Session, experiment_id: int) -> pd.DataFrame:
    """Every model call of the experiment's pipeline cases, transcript included (the
    messages sent, the text returned, the chunks retrieved: JSON text), in call order."""
    frame = read_frame(session, _EXPORTED_STAGES, {"e": experiment_id})
    for column in ("prompt", "retrieved"):  # SQLite hands JSON back as its text
        frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return frame


def has_pipeline_stages(session: Session, experiment_id: int) -> bool:
    """Whether a case of the experiment ran a pipeline other than ``single`` (whose one
    call a case stores too: a stage row per generation, the generation's own call)."""
    found = session.exec(
        select(CaseRun.case_uid).where(
            CaseRun.experiment_id == experiment_id, CaseRun.pipeline != SINGLE
        )
    )
    return found.first() is not None


# Per config: what ``summarize_pipelines`` reads of its case runs (the pipeline is one
# per config: it is part of the config's hash), and the median case wall time from the
# one or two middle rows of each config's runs ordered by it.
_CONFIG_FACTS = text(
    """
    SELECT config_hash, MIN(pipeline) AS pipeline, AVG(calls) AS calls_per_case,
           SUM(CASE WHEN context_truncated_calls > 0 THEN 1 ELSE 0 END) AS context_truncated,
           COUNT(*) AS cases
    FROM case_runs WHERE experiment_id = :e GROUP BY config_hash
    """
)
_MEDIAN_WALL = text(
    """
    SELECT config_hash, AVG(wall_s) AS wall_p50_s FROM (
        SELECT config_hash, wall_s,
               ROW_NUMBER() OVER (PARTITION BY config_hash ORDER BY wall_s) AS k,
               COUNT(*) OVER (PARTITION BY config_hash) AS n
        FROM case_runs WHERE experiment_id = :e) runs
    WHERE k IN ((n + 1) / 2, (n + 2) / 2) GROUP BY config_hash
    """
)
# The stages' sums as ``pipelines.summary._per_stage`` makes them from stages_frame's
# rows: ``first`` is the row (in that frame's order) where the group first appears, which
# orders stages of equal mean place as its grouping does.
_STAGE_SUMS = """
    SELECT {keys}, SUM(duration_s) AS seconds, SUM(wait_s) AS wait, COUNT(*) AS calls,
           CASE WHEN COUNT(prompt_tokens) = COUNT(*) THEN SUM(prompt_tokens) END AS prompt,
           COALESCE(SUM(output_tokens), 0) AS output, AVG(position) AS place,
           MIN(k) AS first
    FROM (SELECT config_hash, stage, duration_s, wait_s, prompt_tokens, output_tokens,
                 position,
                 ROW_NUMBER() OVER (ORDER BY config_hash, case_uid, sample_index, position) AS k
          FROM stages WHERE experiment_id = :e AND {which}) calls
    GROUP BY {keys} ORDER BY {order}
    """
_OWN_STAGES = text(
    _STAGE_SUMS.format(
        keys="config_hash, stage",
        which="NOT COALESCE(shared, FALSE)",
        order="config_hash, place, first",
    )
)
_SHARED_STAGES = text(
    _STAGE_SUMS.format(keys="stage", which="COALESCE(shared, FALSE)", order="place, first")
)


def pipeline_summary(session: Session, experiment_id: int) -> PipelineSummary:
    """``summarize_pipelines`` of the experiment's case runs and stages, from the sums the
    database makes of them: a few rows per config and stage are read, where the rows
    themselves are one or more per generation (half a second of a 100,000-generation
    leaderboard: the run's end stores it, ``stored_pipeline_summary``)."""
    key = {"e": experiment_id}
    connection = session.connection()
    facts = {
        row["config_hash"]: dict(row) for row in connection.execute(_CONFIG_FACTS, key).mappings()
    }
    if not facts:
        return no_pipelines()
    for config, median in connection.execute(_MEDIAN_WALL, key).all():
        facts[config]["wall_p50_s"] = median
    own, once = (
        [dict(row) for row in connection.execute(query, key).mappings()]
        for query in (_OWN_STAGES, _SHARED_STAGES)
    )
    cases = {config: row["cases"] for config, row in facts.items()}
    return summary_of(facts, cases, own, once)


#: The stored summary's page in ``view_pages`` (``evaluation.storage.pages``).
PIPELINES_PAGE = "pipelines"
_PIPELINES_FORMAT = 1  # raise when the stored payload's shape changes


def _pipelines_fingerprint(session: Session, experiment_id: int) -> str:
    """What the summary is made from, counted cheaply (two index scans): case runs are
    only ever added, and a case's stages replaced on a retry get new ids."""
    counts = session.connection().execute(
        text(
            "SELECT (SELECT COUNT(*) FROM case_runs WHERE experiment_id = :e), "
            "(SELECT COUNT(*) FROM stages WHERE experiment_id = :e), "
            "(SELECT MAX(id) FROM stages WHERE experiment_id = :e)"
        ),
        {"e": experiment_id},
    )
    return json.dumps([_PIPELINES_FORMAT, *counts.one()])


def stored_pipeline_summary(session: Session, experiment_id: int) -> PipelineSummary:
    """The summary the run's end stored while its case runs and stages are unchanged;
    otherwise (an older database, a run going on) summed again, and not stored: `show`
    only reads."""
    fingerprint = _pipelines_fingerprint(session, experiment_id)
    payload = stored_page(session, experiment_id, PIPELINES_PAGE, fingerprint)
    if payload is None:
        return pipeline_summary(session, experiment_id)
    return PipelineSummary(payload["by_config"], tuple(payload["rows"]))


def store_pipeline_summary(session: Session, experiment_id: int) -> None:
    """Sum the summary and store it for ``stored_pipeline_summary`` (as a run ends)."""
    fingerprint = _pipelines_fingerprint(session, experiment_id)
    summary = pipeline_summary(session, experiment_id)
    payload = {"by_config": summary.by_config, "rows": list(summary.rows)}
    keep_page(session, experiment_id, PIPELINES_PAGE, fingerprint, payload)


def config_pipelines(session: Session, hashes: Iterable[str]) -> dict[str, ConfigPipeline]:
    """The pipeline rows of the given configs (configs without one are ``single``)."""
    wanted = list(hashes)
    if not wanted:
        return {}
    rows = session.exec(select(ConfigPipeline).where(ConfigPipeline.config_hash.in_(wanted)))
    return {row.config_hash: row for row in rows.scalars()}
