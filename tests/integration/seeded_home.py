"""A new Prefect home for a real `prefect server start` whose SQLite database starts from
evalflow's schema snapshot (flows/prefect_schema.py), as the embedded server's and the
test harness's do: the server's start check of its migrations finds nothing to do,
instead of running Prefect's ~150 of them (measured on 2 loaded cores: healthy after
8-11 s instead of 31-41 s, 4 CPU-s less). Where the snapshot is of another Prefect
version, the home is left empty and the server migrates a fresh database as before."""

from __future__ import annotations

from pathlib import Path


def seeded_prefect_home(home: Path) -> Path:
    """``home``, created, with the server's default database seeded where it can be."""
    import prefect

    from flows.prefect_schema import seed_fresh_database

    home.mkdir(parents=True, exist_ok=True)
    seed_fresh_database(prefect.__version__, f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    return home
