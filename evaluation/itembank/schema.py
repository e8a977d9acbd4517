"""The item bank tables (owner: evaluation/itembank). ``evaluation.storage.db.make_engine``
creates ``TABLES`` with the results tables. A bank is versioned: each calibration adds a
``item_banks`` row (never updated) with its cases and abilities beside it."""

# No `from __future__ import annotations`: the fields' annotations are evaluated as each
# class is made, not by pydantic from their strings (~2.5% of `show`'s start-up; test_schema).

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from evaluation.storage.models import Table, utcnow


class ItemBank(Table, table=True):
    """One calibration of a suite's cases on one metric: the suite's content digest
    (``suites.fingerprint``) it was calibrated on, the configs (hashes) and model
    families it rests on, how many scores, and how well it fits what it did not see
    (``evaluation/itembank/_calibrate.py``)."""

    __tablename__ = "item_banks"

    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(index=True)
    metric: str
    version: int
    suite_digest: str
    configs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    families: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cases: int = 0
    scores: int = 0
    heldout_logloss: float | None = None
    baseline_logloss: float | None = None
    check_share: float = 0.1
    check_configs: int = 0
    check_mae: float | None = None
    check_coverage: float | None = None
    interval_scale: float = 1.0
    ability_mean: float = 0.0
    ability_sd: float = 1.0
    created_at: datetime = Field(default_factory=utcnow)


class BankCase(Table, table=True):
    """A case's parameters in one bank: difficulty b, discrimination a, and the Laplace
    covariance of (log a, b)."""

    __tablename__ = "item_bank_cases"

    bank_id: int = Field(foreign_key="item_banks.id", primary_key=True)
    case_id: str = Field(primary_key=True)
    position: int = 0
    difficulty: float
    discrimination: float
    var_log_a: float
    var_b: float
    cov_log_a_b: float


class BankAbility(Table, table=True):
    """A config's ability in one bank, with its standard error."""

    __tablename__ = "item_bank_abilities"

    bank_id: int = Field(foreign_key="item_banks.id", primary_key=True)
    config_hash: str = Field(primary_key=True)
    ability: float
    se: float


TABLES: tuple[type[SQLModel], ...] = (ItemBank, BankCase, BankAbility)
