"""The results tables (owner: evaluation/storage; ``TABLES`` lists them, and
``storage.db.make_engine`` creates them). A generation is unique on (experiment, config
hash, case, sample): that key is what makes an interrupted sweep resume without redoing
or duplicating work. Scores are one row per (generation, metric) so they can be
recomputed without regenerating; aggregates and comparisons are derived rows,
recomputable at any time."""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

import types
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from evaluation.spec._params import PARAMETERS
from evaluation.storage.impossible_rates import IMPOSSIBLE_RATE
from evaluation.storage.unmeasured import OVERHEAD_CANDIDATE


def utcnow() -> datetime:
    """Now, timezone-aware (SQLModel's datetime columns refuse naive values); every
    table's timestamps use it."""
    return datetime.now(UTC)


class Table(SQLModel):
    """Every table's base (each owner's schema module declares its tables on it): the
    pydantic validator and serializer of a row are built on their first use (a
    ``model_dump``, say), not as the class is made. A command that only reads rows through
    SQLAlchemy builds none of them: ~0.03 s of every database verb's start-up (`show`,
    `view`), for the 37 tables."""

    model_config = ConfigDict(defer_build=True)


class ModelRow(Table, table=True):
    """A model seen on a host (from /api/tags)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "digest", name="uq_model_name_digest"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    digest: str = ""
    family: str = ""
    parameter_size: str = ""
    quantization: str = ""
    size_bytes: int | None = Field(default=None, sa_type=BigInteger)
    hosts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)


class SuiteRow(Table, table=True):
    __tablename__ = "suites"

    name: str = Field(primary_key=True)
    version: str
    task_type: str
    default_metrics: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    path: str = ""
    fingerprint: str = ""


class CaseRow(Table, table=True):
    """A case; ``uid`` is "suite/case-id" so case ids need only be unique in their suite."""

    __tablename__ = "cases"

    uid: str = Field(primary_key=True)
    suite: str = Field(index=True)
    case_id: str
    group: str | None = None
    input_text: str = Field(default="", sa_column=Column(Text))
    input_chars: int = 0
    references: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    label: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class CaseInput(Table, table=True):
    """A case's whole input as its suite gives it: the system prompt and every chat turn
    (``cases.input_text`` keeps only the last user message, the text metrics read), so
    the view and review pages can show what the model was asked. A table of its own so
    databases made before it get it by CREATE TABLE; their cases have no row."""

    __tablename__ = "case_inputs"

    uid: str = Field(foreign_key="cases.uid", primary_key=True)
    system: str | None = Field(default=None, sa_column=Column(Text))
    messages: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))


class Experiment(Table, table=True):
    __tablename__ = "experiments"
    # the monitor's "running now" reads the few running ones of 10,000 (built on old
    # databases by storage.db's missing-index step)
    __table_args__ = (Index("ix_experiment_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    suite: str
    task_type: str
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    spec_path: str = ""
    samples_per_case: int = 1
    metrics: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    simulated: bool = False
    status: str = "created"  # created | running | completed | failed | interrupted | cancelled
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    baseline: str | None = None
    accepted_baseline: bool = False


class ExperimentRun(Table, table=True):
    """Who runs an experiment now, or ran it last, and how that run ended. Keyed by the
    experiment's name so a run can claim it before the experiment row exists; ``token``
    changes on every claim, which makes taking over a finished or dead run a
    compare-and-set. A table of its own so databases made before it get it by
    CREATE TABLE, with no migration."""

    __tablename__ = "experiment_runs"

    experiment: str = Field(primary_key=True)
    token: str
    pid: int
    pid_started: str = ""  # the process's start time where the OS tells (pid reuse)
    hostname: str = ""
    flow_run_id: str | None = Field(default=None, index=True)
    status: str = "running"  # running | completed | failed | interrupted | cancelled
    reason: str | None = Field(default=None, sa_column=Column(Text))
    level: str | None = None  # what it ran: "smoke", "full", "subset, limit 5" (`experiments`)
    # its suite's task type, known from the claim on: the monitor's task cards count a run
    # starting before its flow stores its experiment (None: not told, or an older row)
    task_type: str | None = None
    # whether its spec runs only simulated hosts, known from the claim on likewise: the
    # monitor marks it SIMULATED while it starts (None: not told, or an older row)
    simulated: bool | None = None
    # the command line that started it, credentials masked (`show`'s "resume with:");
    # None for a flow started otherwise (a deployment) and on rows from before it was kept
    command: str | None = Field(default=None, sa_column=Column(Text))
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    # the seconds the experiment's earlier runs took (each run that resumes an ended one
    # adds it): its duration is theirs and this one's, not its last session's alone
    earlier_s: float = 0.0
    # when a cancel of this run was asked for (the monitor's Cancel): its process then
    # ends before its flow's hook records "cancelled", and that gap reads "cancelling"
    cancel_requested_at: datetime | None = None


def _config_columns(namespace: dict[str, Any]) -> None:
    """The ``configs`` table's body: identity, one column per generation parameter (from
    ``evaluation.spec._params``; nullable unless it has a default), the template."""
    annotations: dict[str, Any] = {"hash": str, "model": str, "label": str}
    namespace.update(hash=Field(primary_key=True), model=Field(index=True), label="")
    for param in PARAMETERS:
        kind = param.column_kind
        annotations[param.name] = kind if param.default is not None else kind | None
        namespace[param.name] = param.default
    annotations |= {"template_name": str, "template_text": str}
    namespace.update(
        template_name="default", template_text=Field(default="{input}", sa_column=Column(Text))
    )
    namespace.update(__tablename__="configs", __annotations__=annotations)
    namespace["__module__"] = __name__
    namespace["__doc__"] = "A config: model, generation parameters, prompt template."


ConfigRow = types.new_class("ConfigRow", (Table,), {"table": True}, _config_columns)


class ExperimentConfig(Table, table=True):
    __tablename__ = "experiment_configs"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    position: int = 0


class DroppedConfig(Table, table=True):
    """A config of an experiment that the spec it last ran no longer has (its grid edited
    under the same name), moved here from ``experiment_configs``: what reads an
    experiment's configs (its leaderboard, comparisons, report, view, export) reads the
    spec's. Its generations and scores stay stored; a spec that has it again moves it
    back, resumed, not generated again. A table of its own (CREATE TABLE, no migration)."""

    __tablename__ = "dropped_configs"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    position: int = 0  # where it was in the experiment's configs
    dropped_at: datetime = Field(default_factory=utcnow)


class Generation(Table, table=True):
    """One attempt-series at one work item; ``status`` "ok" rows are never redone."""

    __tablename__ = "generations"
    __table_args__ = (
        UniqueConstraint(
            "experiment_id", "config_hash", "case_uid", "sample_index", name="uq_generation_key"
        ),
        Index("ix_generation_experiment_status", "experiment_id", "status"),
        # the view: a case's generations, and its list sorted or filtered by these
        Index("ix_generation_id", "experiment_id", "id"),  # the list in id order, unsorted
        # with id: the case and group filters read their generations' ids from the index
        # alone (PostgreSQL's heap reads for 25,000 of them: 0.5-1 s)
        Index(
            "ix_generation_case_id",
            "case_uid",
            "experiment_id",
            "config_hash",
            "sample_index",
            "id",
        ),
        Index("ix_generation_latency", "experiment_id", "latency_s"),
        Index("ix_generation_ttft", "experiment_id", "ttft_s"),
        Index("ix_generation_tokens", "experiment_id", "eval_count"),
        Index("ix_generation_truncated", "experiment_id", "truncated"),
        # empty but for decode speeds stored before they were checked (storage.impossible_rates)
        Index(
            "ix_generation_impossible_decode",
            "id",
            sqlite_where=text(IMPOSSIBLE_RATE),
            postgresql_where=text(IMPOSSIBLE_RATE),
        ),
        # empty but for simulated cases whose calls overlapped (storage.unmeasured)
        Index(
            "ix_generation_overhead_latency",
            "id",
            sqlite_where=text(OVERHEAD_CANDIDATE),
            postgresql_where=text(OVERHEAD_CANDIDATE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id")
    config_hash: str = Field(foreign_key="configs.hash")
    case_uid: str = Field(foreign_key="cases.uid")
    sample_index: int = 0
    sample_seed: int | None = None  # the seed sent for this sample (GenerationParams.for_sample)
    status: str = "ok"  # ok | failed
    error: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 1
    host: str = ""
    output: str = Field(default="", sa_column=Column(Text))
    done_reason: str = ""
    truncated: bool = False
    latency_s: float | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    prompt_eval_count: int | None = None  # None: the server did not report it
    eval_count: int = 0
    load_duration_ns: int = Field(default=0, sa_type=BigInteger)
    prompt_eval_duration_ns: int = Field(default=0, sa_type=BigInteger)
    eval_duration_ns: int = Field(default=0, sa_type=BigInteger)
    total_duration_ns: int = Field(default=0, sa_type=BigInteger)
    energy_j: float | None = None
    simulated: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class Score(Table, table=True):
    __tablename__ = "scores"
    __table_args__ = (Index("ix_score_metric_value", "metric", "value"),)  # the view's sort

    generation_id: int = Field(foreign_key="generations.id", primary_key=True)
    metric: str = Field(primary_key=True)
    value: float | None = None


class ScoreDetail(Table, table=True):
    """Why a generation scored as it did on a metric, where the metric says: the hidden
    tests a program failed and their reasons, or the error a user's scorer raised."""

    __tablename__ = "score_details"

    generation_id: int = Field(foreign_key="generations.id", primary_key=True)
    metric: str = Field(primary_key=True)
    detail: str = Field(default="", sa_column=Column(Text))


class Aggregate(Table, table=True):
    """Per (experiment, config, metric): the mean with its error bar."""

    __tablename__ = "aggregates"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    metric: str = Field(primary_key=True)
    n: int = 0
    mean: float | None = None
    se: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str = ""
    note: str = ""


class ScorerDeclarationRow(Table, table=True):
    """How a user's scorer declared itself when it last scored (``@scorer``: score
    type, direction, corpus form) and the code it came from: a command that reads its
    scores where that code does not import (a teammate's copy of the database) reads
    them with it (``evaluation.metrics``). One row per metric name, the last scoring's,
    as every evalflow since the table came writes and reads it (an older evalflow sharing
    the database keeps scoring into it); each experiment's own are kept beside it
    (``ExperimentScorerDeclarationRow``). A table of its own, added after databases were
    shared read-only: one without it is read without it (``READ_WITHOUT``)."""

    __tablename__ = "scorer_declarations"

    metric: str = Field(primary_key=True)  # as a spec names it: module:function, an entry point
    score_type: str
    higher_is_better: bool
    corpus_level: bool
    description: str = ""
    source: str = ""  # module:function the scorer was loaded from (an entry point's value)
    declared_at: datetime = Field(default_factory=utcnow)


class ExperimentScorerDeclarationRow(Table, table=True):
    """How a user's scorer declared itself when it last scored an experiment, as
    ``ScorerDeclarationRow`` keeps it, one row per experiment and metric: two experiments
    that scored a same-named scorer that declared itself otherwise (its code changed
    between them) each read their own. A table added beside ``scorer_declarations``, not
    a change of its key, so that an older evalflow sharing the database keeps writing
    that one and concurrent opens only create this one if it is missing; an experiment
    scored before it (or by an older evalflow) has no row here and is read with
    ``scorer_declarations``' (``storage.scorers``). Read without where the database may
    not be written (``READ_WITHOUT``)."""

    __tablename__ = "experiment_scorer_declarations"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    metric: str = Field(primary_key=True)
    score_type: str
    higher_is_better: bool
    corpus_level: bool
    description: str = ""
    source: str = ""
    declared_at: datetime = Field(default_factory=utcnow)


class ViewPage(Table, table=True):
    """A view page that reads every score of an experiment (its summary, its flip
    matrix), computed once and kept with the fingerprint of what it was computed from
    (``evaluation.view.stored``): a page of 1M generations costs seconds to compute and
    one row to read."""

    __tablename__ = "view_pages"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    page: str = Field(primary_key=True)
    fingerprint: str = ""
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class ConfigTelemetry(Table, table=True):
    """GPU readings per (experiment, config); source "unavailable" when NVML is absent."""

    __tablename__ = "config_telemetry"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    source: str = "unavailable"
    mean_gpu_util_pct: float | None = None
    peak_memory_bytes: int | None = Field(default=None, sa_type=BigInteger)
    energy_j_per_generation: float | None = None
    vram_bytes: int | None = Field(default=None, sa_type=BigInteger)


class ComparisonRow(Table, table=True):
    """One paired comparison of two configs on one metric."""

    __tablename__ = "comparisons"

    id: int | None = Field(default=None, primary_key=True)
    run_label: str = Field(index=True)  # experiment name, or "a-vs-b" for compare runs
    metric: str
    config_a: str
    config_b: str
    n_used: int = 0
    n_excluded: int = 0
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    test: str = ""
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_size: float | None = None
    effect_size_name: str = ""
    min_detectable_diff: float | None = None
    note: str = Field(default="", sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)


class ComparisonRun(Table, table=True):
    """One comparison run beside its pairs (the ``comparisons`` rows of the same
    ``run_label``): the digest of the inputs it was computed from, its adjustment, the
    verdicts and the markdown report. While the digest matches, `evalflow compare` reads
    the run instead of computing it again."""

    __tablename__ = "comparison_runs"

    run_label: str = Field(primary_key=True)
    inputs_digest: str
    adjust: str
    alpha: float
    simulated: bool = False
    verdicts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    markdown: str = Field(default="", sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)


# The pipeline tables: each config's pipeline, each case's run and each model call
# (stage) of it, keyed by the generation key and written in the generation's own
# transaction: a case's calls are stored with its output or not at all.


class ConfigPipeline(Table, table=True):
    """The pipeline of a config that is not ``single``, with its parameter values."""

    __tablename__ = "config_pipelines"

    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class CaseRun(Table, table=True):
    """A case's pass through its pipeline: wall time, calls, truncated prompts and
    what the pipeline recorded (``retrieved_chunk_ids`` for ``rag``)."""

    __tablename__ = "case_runs"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    config_hash: str = Field(primary_key=True)
    case_uid: str = Field(primary_key=True)
    sample_index: int = Field(default=0, primary_key=True)
    pipeline: str = "single"
    wall_s: float = 0.0
    calls: int = 0
    context_truncated_calls: int = 0
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class StageRow(Table, table=True):
    """One model call of a case: its stage name, model, host, start, its wait for a slot
    and its service time (``duration_s``), tokens; and its transcript: the messages sent
    (``prompt``, role/content pairs), the text returned (``output``) and the chunks its
    context came from with their similarity (``retrieved``: ids, their text is in the
    prompt). The transcript is kept for
    pipelines' calls only (a ``single`` call's input and output are its generation's),
    and is None on rows stored before it was kept. ``shared``: a call made once for the
    whole run (the corpus's embeddings) by whichever case asked first."""

    __tablename__ = "stages"
    __table_args__ = (
        Index("ix_stages_key", "experiment_id", "config_hash", "case_uid", "sample_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id")
    config_hash: str
    case_uid: str
    sample_index: int = 0
    position: int = 0
    stage: str
    kind: str = "generate"
    model: str = ""
    host: str = ""
    started_at: datetime = Field(default_factory=utcnow)
    start_s: float = 0.0
    duration_s: float = 0.0
    prompt_tokens: int | None = None  # None: the server did not report it
    output_tokens: int = 0
    estimated_prompt_tokens: int = 0
    attempts: int = 1
    context_truncated: bool = False
    wait_s: float | None = None  # waiting for a host slot (None: stored before it was kept)
    prompt: list[list[str]] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    output: str | None = Field(default=None, sa_column=Column(Text))
    retrieved: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    shared: bool | None = None


class GenerationAttempt(Table, table=True):
    """An attempt at one of a generation's model calls that failed: where, what happened
    (``outcome``: one of ``evaluation.errors.OUTCOMES``, e.g. ``timeout``, ``reset``) and
    why (``reason``, the error's message). Appended, never replaced: a rerun's attempts
    follow the earlier run's. A generation's attempt that succeeded is the generation
    itself, so one that took one attempt and has no error has no row here."""

    __tablename__ = "generation_attempts"
    __table_args__ = (
        Index("ix_attempts_key", "experiment_id", "config_hash", "case_uid", "sample_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiments.id")
    config_hash: str
    case_uid: str
    sample_index: int = 0
    attempt: int = 1  # 1-based, among its call's attempts
    model: str = ""
    host: str = ""
    outcome: str
    reason: str = Field(default="", sa_column=Column(Text))
    seconds: float = 0.0  # from the request's start to its failure
    created_at: datetime = Field(default_factory=utcnow)


class RaceRoundRow(Table, table=True):
    """One finished round of a race (evaluation/adaptive/): who ran, who was dropped
    with the evidence, generations spent; ``outcome`` is set on the round that ended
    the race. Rewritten by every run from the stored generations, which determine it."""

    __tablename__ = "race_rounds"

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    round_index: int = Field(primary_key=True)
    n_cases: int
    survivors: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    leader: str
    eliminated: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    spent: int
    full_grid: int
    outcome: str | None = None
    pick: str | None = None
    bound: str | None = Field(default=None, sa_column=Column(Text))
    """What the race's error bound promises and assumes of the cases (its clustering)."""


class RunLive(Table, table=True):
    """Where a run going on now stands, written by the run every couple of seconds and
    at each stage (``evaluation.monitor``): the monitor's pages and `evalflow status`
    read this one row instead of the run's generations. Keyed by the experiment's name,
    as its claim is (``experiment_runs``); a table of its own (CREATE TABLE, no
    migration)."""

    __tablename__ = "run_live"

    experiment: str = Field(primary_key=True)
    stage: str = "load"  # load | generate | score | compare | report
    done: int = 0
    total: int = 0
    failed: int = 0
    per_s: float | None = None
    eta_s: float | None = None
    in_flight: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    # hosts whose lanes wait for a slot: {host: {lanes, since (UTC), held_by}}; NULL in a
    # row an older evalflow wrote (the column is added to an older database on open)
    waiting: dict[str, dict[str, Any]] | None = Field(default_factory=dict, sa_column=Column(JSON))
    slots: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    failures: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    gpu: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class RunSummary(Table, table=True):
    """One finished (or stopped) run in a few figures, computed once from its
    generations, aggregates and comparison (``evaluation.monitor``) and kept while the
    experiment's ``status`` and ``updated_at`` are those copied here, and it was counted
    the way this version counts (``counted_by``): the monitor's recent runs, series and
    charts read 10,000 of these rather than 2 million generations."""

    __tablename__ = "run_summaries"
    __table_args__ = (Index("ix_run_summary_series", "series", "experiment_id"),)

    experiment_id: int = Field(foreign_key="experiments.id", primary_key=True)
    status: str = ""
    updated_at: datetime | None = None  # the experiment's, when this was computed
    counted_by: int = 0  # monitor._summary.SUMMARY_VERSION then (0: before it was stored)
    series: str = ""
    task_type: str = ""
    pipeline: str = "single"  # the pipeline kinds of its configs, joined by "+"
    configs: int = 0
    generations: int = 0
    failed: int = 0
    failures: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    hosts: dict[str, list[int]] = Field(default_factory=dict, sa_column=Column(JSON))
    tokens: int = Field(default=0, sa_type=BigInteger)
    mean_latency_s: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    metric: str = ""  # the headline metric: the experiment's first
    best_config: str = ""  # its label
    best_mean: float | None = None
    verdict: str = Field(default="", sa_column=Column(Text))


class RegressionVerdictRow(Table, table=True):
    """The outcome of one run's regression check against its series' baseline (written
    by the nightly flow beside its event and artifact), so the latest verdict of every
    series can be read back (the metrics endpoint's ``evalflow_regression_detected``).
    A table of its own so databases made before it get it by CREATE TABLE."""

    __tablename__ = "regression_verdicts"

    experiment: str = Field(primary_key=True)
    series: str = Field(index=True)
    baseline: str | None = None
    regressed: bool = False
    rules: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    checked_at: datetime = Field(default_factory=utcnow)


TABLES: tuple[type[SQLModel], ...] = (
    ModelRow,
    SuiteRow,
    CaseRow,
    CaseInput,
    Experiment,
    ExperimentRun,
    ConfigRow,
    ExperimentConfig,
    DroppedConfig,
    Generation,
    Score,
    ScoreDetail,
    Aggregate,
    ScorerDeclarationRow,
    ExperimentScorerDeclarationRow,
    ViewPage,
    ConfigTelemetry,
    ComparisonRow,
    ComparisonRun,
    ConfigPipeline,
    CaseRun,
    StageRow,
    GenerationAttempt,
    RaceRoundRow,
    RunLive,
    RunSummary,
    RegressionVerdictRow,
)

READ_WITHOUT: tuple[type[SQLModel], ...] = (ScorerDeclarationRow, ExperimentScorerDeclarationRow)
"""Tables of ``TABLES`` a database that may not be written can lack (an older
evalflow's, shared read-only): it is read without them, their readers falling back to
what was done before them, not refused as lacking them (``storage.db.create_tables``)."""

RETIRED_INDEXES: dict[str, tuple[str, ...]] = {"generations": ("ix_generation_impossible_rate",)}
"""Indexes an older evalflow made, by table, that this one replaced under another name
(their partial condition changed: a query spelled by this version's rule matches only
its own index's), dropped where present as a database is opened for writing
(``storage.db.create_tables``); a read-only database keeps them, unused."""
