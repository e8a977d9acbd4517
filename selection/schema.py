"""The selector's tables (owner: selection; ``TABLES``). Declaring them is cheap (no
pandas, no scikit-learn); ``selection._db`` creates them on the engine the selector is
given or makes.

- ``selector_versions``: one row per training, with its metrics, feature list, training
  data fingerprint, scikit-learn version and the promotion decision. The current
  selector is the promoted version with the latest ``promoted_at``.
- ``selector_blobs``: the fitted model as a numpy archive that cannot run code when read
  (:mod:`selection._codec`; ``format`` names it; old "joblib" rows are refused), kept
  in the database so every machine of a PostgreSQL setup sees the same selector;
  separate so listing versions never loads megabytes.
- ``recommendation_log``: every answer ``recommend`` gave, and the outcome the
  application reported for it.
"""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from evaluation.storage.models import Table, utcnow


class SelectorVersion(Table, table=True):
    __tablename__ = "selector_versions"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    features: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    hyperparameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    task_types: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    data_fingerprint: str = Field(default="", index=True)
    sklearn_version: str = ""
    n_generations: int = 0
    n_rows: int = 0
    grouping: str = "suite"
    training_seconds: float = 0.0
    promoted: bool = False
    promoted_at: datetime | None = None
    promotion_reason: str = Field(default="", sa_column=Column(Text))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class SelectorBlob(Table, table=True):
    __tablename__ = "selector_blobs"

    version_id: int = Field(foreign_key="selector_versions.id", primary_key=True)
    format: str = "evalflow-selector-npz-1"  # selection._codec.FORMAT; old rows: "joblib"
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RecommendationLog(Table, table=True):
    __tablename__ = "recommendation_log"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    task_type: str = Field(index=True)
    status: str = ""
    version_id: int | None = Field(default=None, foreign_key="selector_versions.id")
    config_hash: str | None = None
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    answer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    outcome_quality: float | None = None
    outcome_latency_s: float | None = None
    outcome_at: datetime | None = None


TABLES: tuple[type[SQLModel], ...] = (SelectorVersion, SelectorBlob, RecommendationLog)
