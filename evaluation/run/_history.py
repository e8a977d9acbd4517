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
    from collections.abc import Sequence

    from sqlmodel import Session

    from evaluation.run._sweep import Sweep
    from evaluation.spec import HostSpec
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
    from evaluation.storage.throughput import stored_elsewhere, stored_keys

    try:
        engine = make_engine(url, create=False, reads_only=True)
        try:
            with session_scope(engine) as session:
                measured = measured_by_address(session, sweep.spec.hosts)
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


def measured_by_address(session: Session, hosts: Sequence[HostSpec]) -> list:
    """What earlier runs measured on ``hosts``, found by each host's address as well as
    its name: a spec that calls a server by another name than the runs that measured it
    (`llama-cpp` where they said `local`, both http://127.0.0.1:18600) had no estimate
    (newcomer F5), where slots were already keyed by the address. Another name counts
    where every stored spec that uses it gives it that address (a name two servers had
    is left out), and this spec does not call another host by it; its measurements are
    labelled with this spec's name, after this name's own for a config measured under
    both (those win)."""
    from dataclasses import replace

    from sqlalchemy import select

    from evaluation.backends import host_limit_name
    from evaluation.storage.models import Experiment
    from evaluation.storage.throughput import measured_throughput

    names = {h.name for h in hosts}
    ours = {host_limit_name(h.url): h.name for h in hosts if h.kind != "simulated"}
    addresses: dict[str, set[str]] = {}
    for spec in session.exec(select(Experiment.spec)).scalars():
        for entry in (spec or {}).get("hosts", []) if isinstance(spec, dict) else ():
            name, url = entry.get("name"), entry.get("url")
            if isinstance(name, str) and isinstance(url, str) and name not in names:
                try:
                    addresses.setdefault(name, set()).add(host_limit_name(url))
                except ValueError:  # a stored url that no longer reads: not this host
                    addresses.setdefault(name, set()).add("")
    aliases = {
        name: ours[next(iter(found))]
        for name, found in addresses.items()
        if len(found) == 1 and next(iter(found)) in ours
    }
    measured = measured_throughput(session, [*names, *aliases])
    own = {(m.host, m.config_hash) for m in measured if m.host in names}
    borrowed = [
        replace(m, host=aliases[m.host])
        for m in sorted(measured, key=lambda m: m.generations)  # the most measured last
        if m.host in aliases and (aliases[m.host], m.config_hash) not in own
    ]
    return [*borrowed, *(m for m in measured if m.host in names)]
