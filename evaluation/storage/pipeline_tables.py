"""The pipeline tables: each config's pipeline, each case's run and each model call
(stage) of it. Tables of their own, so databases made before them get them by CREATE
TABLE with no migration. Keyed by the generation key, written in the same transaction
as the generation: a case's calls are stored with its output or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from evaluation.storage.models import utcnow


class ConfigPipeline(SQLModel, table=True):
    """The pipeline of a config that is not ``single``, with its parameter values."""

    __tablename__ = "config_pipelines"

    config_hash: str = Field(foreign_key="configs.hash", primary_key=True)
    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class CaseRun(SQLModel, table=True):
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


class StageRow(SQLModel, table=True):
    """One model call of a case: its stage name, model, host, start, duration, tokens."""

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
    prompt_tokens: int = 0
    output_tokens: int = 0
    estimated_prompt_tokens: int = 0
    attempts: int = 1
    context_truncated: bool = False
