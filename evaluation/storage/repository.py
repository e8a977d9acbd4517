"""Reading and writing results. Functions take a Session; nothing here owns an engine."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from evaluation.backends.base import possible_decode_rate
from evaluation.errors import StorageError
from evaluation.redact import redact_url, redact_values
from evaluation.storable_text import storable
from evaluation.storage.attempts import save_failed_attempts
from evaluation.storage.db import insert_ignoring_conflicts, read_frame
from evaluation.storage.dropped import (
    OWN_CONFIGS,
    experiment_hashes,
    own_configs,
    set_experiment_configs,
)
from evaluation.storage.executemany import insert_many
from evaluation.storage.impossible_rates import impossible_rate
from evaluation.storage.models import (
    Aggregate,
    CaseInput,
    CaseRow,
    ConfigRow,
    Experiment,
    Generation,
    ModelRow,
    Score,
    ScoreDetail,
    SuiteRow,
    utcnow,
)
from evaluation.storage.runs import starting_refusal
from evaluation.storage.snapshot import asked_url
from evaluation.storage.stages import save_case_traces, save_config_pipelines
from evaluation.storage.unnest import insert_unnested
from evaluation.suites import Case, Suite

if TYPE_CHECKING:  # httpx (the backends), the run's types, numpy and pandas: where used
    import numpy as np
    import pandas as pd

    from evaluation.backends.base import ModelInfo
    from evaluation.run._work import GenerationRecord, WorkKey
    from evaluation.spec import Config


def suite_fingerprint(suite: Suite) -> str:
    payload = [(c.id, c.input_text, c.references, c.label, c.group) for c in suite.cases]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def record_suite(session: Session, suite: Suite) -> None:
    """Store the suite and its cases (idempotent; cases are refreshed from the file)."""
    from evaluation.run._work import case_uid

    insert_ignoring_conflicts(
        session,
        SuiteRow,
        [
            {
                "name": suite.name,
                "version": suite.version,
                "task_type": suite.task_type,
                "default_metrics": list(suite.default_metrics),
                "labels": list(suite.labels),
                "path": str(suite.path or ""),
                "fingerprint": suite_fingerprint(suite),
            }
        ],
        update_columns=["version", "task_type", "default_metrics", "labels", "path", "fingerprint"],
    )
    insert_ignoring_conflicts(
        session,
        CaseRow,
        [
            {
                "uid": case_uid(suite.name, case.id),
                "suite": suite.name,
                "case_id": case.id,
                "group": case.group,
                "input_text": case.input_text,
                "input_chars": len(case.input_text),
                "references": list(case.references),
                "label": case.label,
                "meta": dict(case.metadata),
            }
            for case in suite.cases
        ],
        update_columns=["group", "input_text", "input_chars", "references", "label", "meta"],
    )
    insert_ignoring_conflicts(
        session,
        CaseInput,
        [
            {
                "uid": case_uid(suite.name, case.id),
                "system": case.system,
                "messages": case_messages(case),
            }
            for case in suite.cases
        ],
        update_columns=["system", "messages"],
    )


def case_messages(case: Case) -> list[dict[str, str]]:
    """Every turn of a case's input as ``{"role", "content"}`` (a prompt string is one
    user turn)."""
    if isinstance(case.input, str):
        return [{"role": "user", "content": case.input}]
    return [{"role": m.role, "content": m.content} for m in case.input]


def case_input(session: Session, case: CaseRow) -> tuple[str | None, list[dict[str, str]]]:
    """A stored case's system prompt and turns as its suite gave them; a case recorded
    before ``case_inputs`` existed has its last user message alone."""
    stored = session.get(CaseInput, case.uid)
    if stored is None:
        return None, [{"role": "user", "content": case.input_text}]
    return stored.system, list(stored.messages)


def record_models(session: Session, host: str, infos: Iterable[ModelInfo]) -> None:
    """Remember which models a host has (name, digest, family, size, quantisation).
    Race-safe: the row is inserted if missing (sweeps starting together on a fresh
    database both try), then locked for the hosts update (FOR UPDATE on PostgreSQL; on
    SQLite the insert has already taken the database's write lock)."""
    for info in infos:
        insert_ignoring_conflicts(
            session,
            ModelRow,
            [
                {
                    "name": info.name,
                    "digest": info.digest,
                    "family": info.family,
                    "parameter_size": info.parameter_size,
                    "quantization": info.quantization,
                    "size_bytes": info.size_bytes,
                    "hosts": [],
                    "first_seen": utcnow(),
                    "last_seen": utcnow(),
                }
            ],
            conflict_columns=["name", "digest"],
        )
        row = session.exec(
            select(ModelRow)
            .where(ModelRow.name == info.name, ModelRow.digest == info.digest)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        row.last_seen = utcnow()
        if host not in row.hosts:
            row.hosts = [*row.hosts, host]
        session.add(row)


def config_row(config: Config) -> dict[str, Any]:
    return {
        "hash": config.hash,
        "model": config.model,
        "label": config.label,
        **config.params.columns(),
        "template_name": config.template.name,
        "template_text": config.template.text,
    }


def register_experiment(
    session: Session,
    *,
    name: str,
    suite: Suite,
    configs: Sequence[Config],
    spec: dict[str, Any],
    spec_path: str,
    samples_per_case: int,
    metrics: Sequence[str],
    simulated: bool,
    baseline: str | None = None,
) -> Experiment:
    """Create the experiment, or reopen it to resume; refuses a name already used for
    another suite, since resuming would then mix cases. ``configs`` become the
    experiment's: those it had that they do not include are dropped, kept stored
    (``storage.dropped``). ``metrics`` are the spec's; those a rescore added stay (see
    :func:`run_metrics`)."""
    experiment = stored_experiment(session, name)
    if experiment is not None and experiment.suite != suite.name:
        raise StorageError(
            f"experiment {name!r} already exists for suite {experiment.suite!r}; "
            f"give this sweep another name (spec field 'name')"
        )
    if experiment is None:
        experiment = Experiment(name=name, suite=suite.name, task_type=suite.task_type)
    experiment.metrics = list(_run_metrics_of(experiment, metrics))
    experiment.spec = redact_values(spec)  # a host URL's password is never stored
    experiment.spec_path = spec_path
    experiment.samples_per_case = samples_per_case
    experiment.simulated = simulated
    experiment.baseline = baseline
    experiment.status = "running"
    experiment.updated_at = utcnow()
    session.add(experiment)
    session.flush()
    # The label is refreshed: its form changed (num_predict shown, 2026-11-24) and an
    # experiment's configs should read alike, stored before or not.
    insert_ignoring_conflicts(
        session, ConfigRow, [config_row(c) for c in configs], update_columns=["label"]
    )
    save_config_pipelines(session, configs)
    set_experiment_configs(session, experiment.id, configs)  # the others: dropped, kept
    return experiment


def run_metrics(
    spec: Sequence[str], stored: Sequence[str], stored_spec: Sequence[str] | None
) -> tuple[str, ...]:
    """The metrics a run of an existing experiment scores: the spec's and those a
    ``rescore`` added (a rerun of the spec dropped them, scores and columns, unsaid).
    While the spec's list is the one the experiment last ran, the stored order stands
    (a ``rescore --first``'s); a spec whose list changed puts its own first."""
    if list(spec) == list(stored_spec or ()):
        return tuple(dict.fromkeys((*stored, *spec)))
    return tuple(dict.fromkeys((*spec, *stored)))


def metrics_of_run(session: Session, experiment: str, spec: Sequence[str]) -> tuple[str, ...]:
    """The metrics a run of a spec whose metrics are ``spec`` scores as ``experiment``,
    as :func:`register_experiment` stores them: the first is the run's primary metric,
    the one `show`, `compare` and the report rank by (a ``rescore --first``'s choice), so
    a race, the calibrated level and a power plan read it here before the run exists."""
    row = stored_experiment(session, experiment)
    return tuple(spec) if row is None else _run_metrics_of(row, spec)


def _run_metrics_of(experiment: Experiment, spec: Sequence[str]) -> tuple[str, ...]:
    return run_metrics(spec, experiment.metrics or (), (experiment.spec or {}).get("metrics"))


def set_experiment_status(session: Session, experiment_id: int, status: str) -> None:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise StorageError(f"no experiment with id {experiment_id}")
    experiment.status = status
    experiment.updated_at = utcnow()
    session.add(experiment)


def set_experiment_metrics(session: Session, experiment_id: int, metrics: Sequence[str]) -> None:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise StorageError(f"no experiment with id {experiment_id}")
    experiment.metrics = list(metrics)
    experiment.updated_at = utcnow()
    session.add(experiment)


def suite_path(session: Session, suite_name: str) -> str:
    """Where the suite was loaded from (rescoring needs its references again)."""
    row = session.get(SuiteRow, suite_name)
    if row is None or not row.path:
        raise StorageError(f"suite {suite_name!r} is not recorded with a file path")
    return row.path


def completed_keys(session: Session, experiment_id: int) -> set[WorkKey]:
    """Keys of the generations already finished successfully: a rerun skips these."""
    rows = session.exec(
        select(Generation.config_hash, Generation.case_uid, Generation.sample_index).where(
            Generation.experiment_id == experiment_id, Generation.status == "ok"
        )
    ).all()
    return {(h, c, s) for h, c, s in rows}


def completed_count(session: Session, experiment_id: int) -> int:
    """How many generations of the experiment's configs (not of those its spec dropped)
    finished successfully (counted by the database: a key is one row)."""
    return session.exec(
        select(func.count()).where(
            Generation.experiment_id == experiment_id,
            Generation.status == "ok",
            Generation.config_hash.in_(own_configs(experiment_id)),
        )
    ).one()[0]


def scored_count(session: Session, experiment_id: int) -> int:
    """How many generations of the experiment's configs have a score stored (any
    metric)."""
    return session.exec(
        select(func.count(func.distinct(Score.generation_id)))
        .join(Generation, Generation.id == Score.generation_id)
        .where(
            Generation.experiment_id == experiment_id,
            Generation.config_hash.in_(own_configs(experiment_id)),
        )
    ).one()[0]


def has_generations(session: Session, experiment: str) -> bool:
    """Whether the experiment named ``experiment`` has any generation stored (finished or
    failed): what a rerun of its command would resume."""
    found = session.exec(
        select(Generation.id)
        .join(Experiment, Experiment.id == Generation.experiment_id)
        .where(Experiment.name == experiment)
        .limit(1)
    ).first()
    return found is not None


def failure_reasons(session: Session, experiment_id: int) -> list[tuple[str, int]]:
    """The distinct reasons the experiment's failed generations give, with how many
    give each, most frequent first (a generation that failed and then succeeded on a
    rerun is no longer failed)."""
    count = func.count().label("n")
    rows = session.exec(
        select(Generation.error, count)
        .where(
            Generation.experiment_id == experiment_id,
            Generation.status == "failed",
            Generation.config_hash.in_(own_configs(experiment_id)),  # not of configs it dropped
        )
        .group_by(Generation.error)
        .order_by(count.desc(), Generation.error)
    ).all()
    return [(error or "no reason recorded", n) for error, n in rows]


def generation_row(experiment_id: int, record: GenerationRecord) -> dict[str, Any]:
    item = record.item
    row: dict[str, Any] = {
        "experiment_id": experiment_id,
        "config_hash": item.config.hash,
        "case_uid": item.case_uid,
        "sample_index": item.sample_index,
        "sample_seed": item.params.seed,
        "host": record.host,
        "attempts": record.attempts,
        "created_at": utcnow(),
    }
    result = record.result
    if result is None:
        return row | {"status": "failed", "error": record.error or "unknown error", "output": ""}
    return row | {
        "status": "ok",
        "error": None,
        "output": result.text,
        "done_reason": result.done_reason,
        "truncated": result.truncated,
        "latency_s": result.latency_s,
        "ttft_s": result.ttft_s,
        "tokens_per_s": result.tokens_per_s,
        "prompt_eval_count": result.prompt_eval_count,
        "eval_count": result.eval_count,
        "load_duration_ns": result.load_duration_ns,
        "prompt_eval_duration_ns": result.prompt_eval_duration_ns,
        "eval_duration_ns": result.eval_duration_ns,
        "total_duration_ns": result.total_duration_ns,
        "simulated": result.simulated,
    }


_GENERATION_KEY = ["experiment_id", "config_hash", "case_uid", "sample_index"]


def save_generations(
    session: Session, experiment_id: int, records: Iterable[GenerationRecord]
) -> None:
    """Store outcomes. A failed row is replaced by a later attempt; an "ok" row is never
    overwritten, so concurrent or repeated runs cannot duplicate or clobber results."""
    records = list(records)
    rows = [generation_row(experiment_id, r) for r in records]
    if not rows:
        return
    connection = session.connection()
    # One statement per shape of row (ok and failed rows carry different columns), run
    # over all its rows at once, straight to the driver: on SQLite one executemany
    # (``storage.executemany``), on PostgreSQL one statement of unnested arrays
    # (``storage.unnest``), its rows merged by key first as the upsert would leave them,
    # row after row.
    for columns in dict.fromkeys(tuple(row) for row in rows):
        same = [row for row in rows if tuple(row) == columns]
        if connection.dialect.name == "postgresql":
            insert_unnested(
                connection,
                Generation.__table__,
                _as_upserted(same),
                on_conflict=_generation_conflict(columns),
            )
        else:
            insert_many(
                connection, Generation.__table__, same, on_conflict=_generation_conflict(columns)
            )
    save_case_traces(session, experiment_id, records)
    save_failed_attempts(session, experiment_id, records)


def _generation_conflict(columns: tuple[str, ...]) -> str:
    """Insert a generation row, or replace one that is not "ok": the ON CONFLICT clause
    of ``columns``' insert (the same SQL on SQLite and PostgreSQL)."""
    updated = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in _GENERATION_KEY)
    key = ", ".join(_GENERATION_KEY)
    return f"ON CONFLICT ({key}) DO UPDATE SET {updated} WHERE generations.status != 'ok'"


def _as_upserted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per generation key, as the upsert (``_generation_conflict``) run over
    ``rows`` one after another would leave it: a later row replaces an earlier one that
    is not "ok"; the key keeps its first place. (One statement may not update a row
    twice.)"""
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in _GENERATION_KEY)
        earlier = kept.get(key)
        if earlier is None or earlier["status"] != "ok":
            kept[key] = row
    return list(kept.values())


def stored_experiment(session: Session, name: str) -> Experiment | None:
    """The experiment named ``name``, or None (by name: ``session.get`` takes the integer
    key, which PostgreSQL refuses a name for)."""
    return session.exec(select(Experiment).where(Experiment.name == name)).scalar_one_or_none()


def get_experiment(session: Session, name: str) -> Experiment:
    experiment = stored_experiment(session, name)
    if experiment is None:
        if starting := starting_refusal(session, name):
            raise StorageError(starting)
        raise StorageError(f"no experiment named {name!r}; {known_experiments(session)}")
    return experiment


def known_experiments(session: Session, shown: int = 10) -> str:
    """'known experiments …: NAMES; the database searched: URL' for a name not found:
    the ``shown`` newest, newest first, and said so (the list read oldest first under
    "the 10 newest of 11")."""
    newest = session.exec(
        select(Experiment.name)
        .order_by(Experiment.created_at.desc(), Experiment.id.desc())
        .limit(shown + 1)
    )
    known = newest.scalars().all()
    listing = ", ".join(known[:shown]) or "none yet: run `evalflow run SPEC` first"
    if len(known) > shown:  # counted only where the list is cut
        count = session.exec(select(func.count()).select_from(Experiment)).scalar_one()
        which = f" (the {shown} newest of {count}, newest first; `evalflow experiments` lists all)"
    else:
        which = " (newest first)" if len(known) > 1 else ""
    return f"known experiments{which}: {listing}{database_searched(session)}"


def database_searched(session: Session) -> str:
    """'; the database searched: URL' (its password masked), for a name not found: it
    may be in another database (a `--database` left off); nothing for one in memory."""
    url = make_url(asked_url(session.get_bind()))
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return ""
    return f"; the database searched: {redact_url(url.render_as_string(hide_password=False))}"


def list_experiments(session: Session) -> list[Experiment]:
    return list(session.exec(select(Experiment).order_by(Experiment.created_at)).scalars())


def experiment_configs(session: Session, experiment_id: int) -> pd.DataFrame:
    """The experiment's configs in sweep order, one row each."""
    query = text(
        "SELECT c.* FROM configs c JOIN experiment_configs ec ON ec.config_hash = c.hash "
        "WHERE ec.experiment_id = :e ORDER BY ec.position"
    )
    return read_frame(session, query, {"e": experiment_id})


def generations_frame(
    session: Session, experiment_id: int, *, config: str | None = None
) -> pd.DataFrame:
    """Every generation of an experiment (``config``: of that config hash only) with its
    case's suite facts, one row each, and ``meta``: what its pipeline recorded
    (``case_runs.meta``; null when none)."""
    query = text(
        'SELECT g.*, c.case_id, c.suite, c."group" AS case_group, c.input_chars, r.meta '
        "FROM generations g JOIN cases c ON c.uid = g.case_uid "
        "LEFT JOIN case_runs r ON r.experiment_id = g.experiment_id "
        "AND r.config_hash = g.config_hash AND r.case_uid = g.case_uid "
        "AND r.sample_index = g.sample_index "
        f"WHERE g.experiment_id = :e AND {OWN_CONFIGS}"
        + (" AND g.config_hash = :c" if config is not None else "")
        + " ORDER BY g.id"
    )
    frame = read_frame(session, query, {"e": experiment_id, "c": config})
    rate = frame["tokens_per_s"]
    frame["tokens_per_s"] = rate.where(
        possible_decode_rate(rate, frame["eval_count"], frame["latency_s"], frame["ttft_s"])
    )
    return frame


# A stored decode speed as read: null where impossible for its request's decode window
# (``backends.base.possible_decode_rate``, which new results pass before they are stored).
TOKENS_PER_S = f"CASE WHEN {impossible_rate('g')} THEN NULL ELSE g.tokens_per_s END AS tokens_per_s"


SHORT_OUTPUT_CHARS = 32


def generation_facts_frame(
    session: Session, experiment_id: int, *, outputs: bool = False
) -> pd.DataFrame:
    """The columns of ``generations_frame`` that aggregates and the report's latency plot
    are computed from (``compare.aggregate_rows`` reads the outputs only for corpus
    metrics), in its row order: a fraction of its memory at 100,000 generations.
    ``short_output`` is the output where it has at most ``SHORT_OUTPUT_CHARS``
    characters (else null): enough to count the empty ones."""
    query = text(
        "SELECT g.config_hash, g.status, g.sample_index, g.truncated, g.latency_s, g.ttft_s, "
        f"{TOKENS_PER_S}, {'g.output, ' if outputs else ''}c.case_id, "
        f"CASE WHEN LENGTH(g.output) <= {SHORT_OUTPUT_CHARS} THEN g.output END AS short_output "
        "FROM generations g JOIN cases c ON c.uid = g.case_uid "
        f"WHERE g.experiment_id = :e AND {OWN_CONFIGS} ORDER BY g.id"
    )
    return read_frame(session, query, {"e": experiment_id})


def ok_latencies(session: Session, experiment_id: int) -> dict[str, np.ndarray]:
    """Each config's latencies of its successful generations (hash -> seconds, in the
    order stored; generations without one left out): the report's box plots, ~1 MiB at
    100,000 generations where the generations' frame was 9 MiB."""
    import numpy as np

    query = text(
        "SELECT g.config_hash, g.latency_s FROM generations g WHERE g.experiment_id = :e "
        f"AND g.status = 'ok' AND g.latency_s IS NOT NULL AND {OWN_CONFIGS} ORDER BY g.id"
    )
    found: dict[str, list[float]] = {}
    for config, latency in session.connection().execute(query, {"e": experiment_id}):
        found.setdefault(config, []).append(latency)
    return {config: np.asarray(values, dtype=float) for config, values in found.items()}


def generated_configs(session: Session, experiment_id: int) -> list[str]:
    """The hashes of the experiment's configs (not those its spec dropped) with
    generations, in the order of their first."""
    rows = session.exec(
        select(Generation.config_hash)
        .where(Generation.experiment_id == experiment_id)
        .group_by(Generation.config_hash)
        .order_by(func.min(Generation.id))
    )
    own = experiment_hashes(session, experiment_id)
    return [config for config in rows.scalars() if config in own]


def replace_scores(
    session: Session, generation_ids: Sequence[int], metric: str, values: Sequence[float]
) -> None:
    """Write one metric's scores for these generations, replacing earlier values."""
    import pandas as pd

    ids = [int(i) for i in generation_ids]
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        session.exec(delete(Score).where(Score.metric == metric, Score.generation_id.in_(chunk)))
    insert_ignoring_conflicts(
        session,
        Score,
        [
            {"generation_id": g, "metric": metric, "value": None if pd.isna(v) else float(v)}
            for g, v in zip(ids, values, strict=True)
        ],
    )


def replace_score_details(
    session: Session,
    generation_ids: Sequence[int],
    metric: str,
    details: Sequence[str | None],
) -> None:
    """Write one metric's score details for these generations (None: no detail),
    replacing earlier ones. A detail may quote what a model-written program printed or
    reported: a NUL or lone surrogate in it is stored as U+FFFD (``storable``), as in an
    output."""
    ids = [int(i) for i in generation_ids]
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        session.exec(
            delete(ScoreDetail).where(
                ScoreDetail.metric == metric, ScoreDetail.generation_id.in_(chunk)
            )
        )
    insert_ignoring_conflicts(
        session,
        ScoreDetail,
        [
            {"generation_id": g, "metric": metric, "detail": storable(d)}
            for g, d in zip(ids, details, strict=True)
            if d
        ],
    )


def score_details_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """Every score detail of an experiment: generation, config, case, sample, metric."""
    query = text(
        "SELECT d.generation_id, d.metric, d.detail, g.config_hash AS config, c.case_id, "
        "g.sample_index FROM score_details d JOIN generations g ON g.id = d.generation_id "
        "JOIN cases c ON c.uid = g.case_uid "
        f"WHERE g.experiment_id = :e AND {OWN_CONFIGS} ORDER BY d.generation_id"
    )
    return read_frame(session, query, {"e": experiment_id})


def scores_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    """Long format: one row per (generation, metric) with the keys statistics need."""
    query = text(
        "SELECT s.generation_id, s.metric, s.value, g.config_hash AS config, "
        'c.case_id, g.sample_index, c."group" AS "group" '
        "FROM scores s JOIN generations g ON g.id = s.generation_id "
        "JOIN cases c ON c.uid = g.case_uid "
        f"WHERE g.experiment_id = :e AND g.status = 'ok' AND {OWN_CONFIGS}"
    )
    return read_frame(session, query, {"e": experiment_id})


def replace_aggregates(session: Session, experiment_id: int, rows: Sequence[dict]) -> None:
    session.exec(delete(Aggregate).where(Aggregate.experiment_id == experiment_id))
    insert_ignoring_conflicts(
        session, Aggregate, [{"experiment_id": experiment_id, **row} for row in rows]
    )


def metric_scores_frame(session: Session, experiment_id: int, metric: str) -> pd.DataFrame:
    """``scores_frame``'s rows of one metric (value, config, case_id, sample_index, group,
    metric), read ``read_frame``'s way: at 100,000 generations, read at once, they took
    the process 45 MiB above where it started as a run ended (the view's summary and flip
    matrix), its highest point."""
    query = text(
        "SELECT s.value, g.config_hash AS config, c.case_id, g.sample_index, "
        'c."group" AS "group", s.metric FROM scores s '
        "JOIN generations g ON g.id = s.generation_id JOIN cases c ON c.uid = g.case_uid "
        f"WHERE g.experiment_id = :e AND g.status = 'ok' AND s.metric = :m AND {OWN_CONFIGS}"
    )
    return read_frame(session, query, {"e": experiment_id, "m": metric})


def aggregates_frame(session: Session, experiment_id: int) -> pd.DataFrame:
    query = text("SELECT * FROM aggregates WHERE experiment_id = :e")
    return read_frame(session, query, {"e": experiment_id})
