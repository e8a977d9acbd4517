"""Where evalflow keeps things. Read only at the edges (CLI, flows, the recommend API);
library code receives these values as arguments."""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_URL_ENV = "EVALFLOW_DATABASE_URL"
HOME_ENV = "EVALFLOW_HOME"


def evalflow_home() -> Path:
    """``$EVALFLOW_HOME``, else ``~/.evalflow``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".evalflow").expanduser()


def database_url(explicit: str | None = None) -> str:
    """The results database: ``explicit``, else ``$EVALFLOW_DATABASE_URL``, else a SQLite
    file under ``evalflow_home()``. Any SQLAlchemy URL works (e.g. postgresql+psycopg2://)."""
    if explicit:
        return explicit
    from_env = os.environ.get(DATABASE_URL_ENV)
    if from_env:
        return from_env
    home = evalflow_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'evalflow.db'}"


SANDBOX_PARALLEL_ENV = "EVALFLOW_SANDBOX_PARALLEL"


def sandbox_parallel() -> int:
    """How many code sandboxes may run at once: ``$EVALFLOW_SANDBOX_PARALLEL``, else the
    number of CPUs."""
    raw = os.environ.get(SANDBOX_PARALLEL_ENV)
    if raw is None:
        return os.cpu_count() or 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        from evaluation.errors import MetricError

        raise MetricError(f"{SANDBOX_PARALLEL_ENV} must be a whole number >= 1, got {raw!r}")
    return value
