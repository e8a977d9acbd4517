"""The series tables (owner: evaluation/series): which series a run joined and what it
really ran with. ``evaluation.storage.db.make_engine`` creates ``TABLES`` with the results
tables; tables of their own, so databases made before them get them by CREATE TABLE."""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

from datetime import datetime

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from evaluation.storage.models import Table, utcnow


class SeriesRun(Table, table=True):
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


class RunModel(Table, table=True):
    """What one model of a run really was on one host, as the server said: its digest
    and quantisation (Ollama ``/api/tags``), the server's version (``/api/version``) and
    the context length the loaded model got (Ollama ``/api/ps``, llama.cpp ``/props``).
    Empty or null where the server does not say. Where the host is on the machine that
    ran the run (a loopback address), that machine's load as the generation ended
    (``machine_load``, the 1-minute load average, and ``machine_cpus``): a decode speed
    is the machine's as much as the model's (docs/trends.md)."""

    __tablename__ = "series_run_models"

    experiment: str = Field(primary_key=True)
    host: str = Field(primary_key=True)
    model: str = Field(primary_key=True)
    kind: str = ""
    digest: str = ""
    quantization: str = ""
    server_version: str = ""
    context_length: int | None = None
    machine_load: float | None = None
    machine_cpus: int | None = None


class CalibratedNight(Table, table=True):
    """A run of a series made at the calibrated level (some of the suite's
    ``suite_cases``): the watch judges the series on those cases, in the item bank's
    full-suite estimate (docs/trends.md); ``case_ids`` are those cases. ``escalated``:
    why the nightly run then ran the full suite for some configs too, the same night and
    experiment ("" when it did not); ``fallback``:
    why a night asked to watch on the calibrated level ran the full suite instead (no
    usable bank) ("" when it did not)."""

    __tablename__ = "series_calibrated_nights"

    experiment: str = Field(primary_key=True)
    case_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    suite_cases: int
    escalated: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    fallback: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    recorded_at: datetime = Field(default_factory=utcnow)


TABLES: tuple[type[SQLModel], ...] = (SeriesRun, RunModel, CalibratedNight)
