"""What the results database already holds for a sweep about to run, as `plan` reads it:
the throughput earlier runs measured on its hosts, what its experiment stored, the
stored configs the spec no longer has, other experiments' cases of its configs, and the
runs in progress of its configs; nothing when there is no results database yet (plan
creates none)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from evaluation.redact import redact

if TYPE_CHECKING:
    from evaluation.run._sweep import Sweep
    from evaluation.storage.dropped import Dropped
    from evaluation.storage.running_work import RunningWork


class SweepHistory(NamedTuple):
    """:func:`sweep_history`'s answer; ``unread``: why the database could not be read
    (the note `plan` prints), None where it was or where there is none yet."""

    measured: list
    stored: set
    dropped: Dropped
    elsewhere: dict[str, tuple[set[str], list[str]]]
    running: list[RunningWork]
    unread: str | None = None


def sweep_history(database: str | None, experiment: str, sweep: Sweep) -> SweepHistory:
    """What earlier runs measured on the spec's hosts, what ``experiment`` already stored,
    its stored configs the spec does not have (as `run`'s warning will count them), for
    a spec naming its ``cases:``, its configs' cases other experiments stored, and the
    runs in progress of its configs on its suite; nothing when there is no results
    database yet (plan creates none)."""
    from evaluation.settings import database_url
    from evaluation.storage.dropped import NONE_DROPPED

    url = database_url(database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return SweepHistory([], set(), NONE_DROPPED, {}, [])
    from sqlalchemy.exc import SQLAlchemyError

    from evaluation.errors import StorageError
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.dropped import not_in_spec
    from evaluation.storage.running_work import running_work
    from evaluation.storage.throughput import measured_throughput, stored_elsewhere, stored_keys

    hosts = [h.name for h in sweep.spec.hosts]
    try:
        engine = make_engine(url, create=False, reads_only=True)
        try:
            with session_scope(engine) as session:
                measured = measured_throughput(session, hosts)
                stored = stored_keys(session, experiment)
                spec = {config.hash: config.label for config in sweep.configs}
                dropped = not_in_spec(session, experiment, spec)
                elsewhere = (
                    stored_elsewhere(session, experiment, sweep.suite.name, spec)
                    if sweep.spec.cases
                    else {}
                )
                running = running_work(session, sweep.suite.name, spec, experiment)
        finally:
            engine.dispose()
    except (SQLAlchemyError, StorageError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        unread = f"no measurements read from the results database: {redact(first, [url])}"
        return SweepHistory([], set(), NONE_DROPPED, {}, [], unread)
    return SweepHistory(measured, stored, dropped, elsewhere, running)
