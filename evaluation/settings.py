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
