"""The series tables (owner: evaluation/series): which series a run joined and what it
really ran with. ``evaluation.storage.db.make_engine`` creates ``TABLES`` with the results
tables; tables of their own, so databases made before them get them by CREATE TABLE."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from evaluation.storage.models import utcnow


class SeriesRun(SQLModel, table=True):
    """One run's place in a series: the series it belongs to (``explicit`` when the user
    named it, ``evalflow run --series``; else the spec's name) and the content digest of
    the suite it ran, as it was then (the suites table keeps only the latest)."""

    __tablename__ = "series_runs"

    experiment: str = Field(primary_key=True)
    series: str = Field(index=True)
    explicit: bool = False
    suite: str = ""
    suite_digest: str = ""
    recorded_at: datetime = Field(default_factory=utcnow)


class RunModel(SQLModel, table=True):
    """What one model of a run really was on one host, as the server said: its digest
    and quantisation (Ollama ``/api/tags``), the server's version (``/api/version``) and
    the context length the loaded model got (Ollama ``/api/ps``, llama.cpp ``/props``).
    Empty or null where the server does not say."""

    __tablename__ = "series_run_models"

    experiment: str = Field(primary_key=True)
    host: str = Field(primary_key=True)
    model: str = Field(primary_key=True)
    kind: str = ""
    digest: str = ""
    quantization: str = ""
    server_version: str = ""
    context_length: int | None = None


TABLES: tuple[type[SQLModel], ...] = (SeriesRun, RunModel)
