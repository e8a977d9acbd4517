"""What earlier runs measured of each host: per host and config, how many real
generations it made, their median latency (one hung request among quick ones does not
move it, where it doubled a mean) and mean output tokens, and the host's slots then
(read from the spec each experiment stored). `evalflow plan` estimates durations from
it. Simulated generations say nothing about a real host and are left out, unless asked
for: a run's ETA on a simulated host weighs its work by them. (No pandas here: plan
stays quick.)"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.storage.models import ConfigRow, Experiment, Generation


@dataclass(frozen=True)
class Measured:
    """A host's past real generations of one config."""

    host: str
    model: str
    config_hash: str
    generations: int
    latency_s: float  # the median: robust to a few hung requests
    mean_tokens: float
    slots: int | None  # the host's slots in the latest experiment measured (None: unknown)
    experiment: str  # the latest experiment measured
    last: datetime


def measured_throughput(
    session: Session, hosts: Collection[str], *, simulated: bool = False
) -> list[Measured]:
    """Every (host, config) among ``hosts`` with stored real generations (``simulated``:
    simulated ones instead) that have a latency, newest experiment's slots first."""
    where = (
        Generation.host.in_(list(hosts)),
        Generation.status == "ok",
        Generation.simulated.is_(simulated),
        Generation.latency_s.is_not(None),
    )
    rows = session.exec(
        select(
            Generation.host,
            ConfigRow.model,
            Generation.config_hash,
            Generation.experiment_id,
            func.count(),
            func.avg(Generation.eval_count),
            func.max(Generation.created_at),
        )
        .join(ConfigRow, ConfigRow.hash == Generation.config_hash)
        .where(*where)
        .group_by(
            Generation.host, ConfigRow.model, Generation.config_hash, Generation.experiment_id
        )
    ).all()
    experiments = {
        e.id: e
        for e in session.exec(
            select(Experiment).where(Experiment.id.in_({r[3] for r in rows}))
        ).scalars()
    }
    latencies = _median_latencies(session, where)
    merged: dict[tuple[str, str], list] = {}
    for host, model, config_hash, experiment_id, n, tokens, last in rows:
        merged.setdefault((host, config_hash), []).append(
            (model, experiments[experiment_id], n, float(tokens or 0), last)
        )
    found = []
    for (host, config_hash), parts in merged.items():
        n = sum(p[2] for p in parts)
        model, latest, _, _, last = max(parts, key=lambda p: p[4])
        found.append(
            Measured(
                host=host,
                model=model,
                config_hash=config_hash,
                generations=n,
                latency_s=latencies[(host, config_hash)],
                mean_tokens=sum(p[2] * p[3] for p in parts) / n,
                slots=_slots(latest, host),
                experiment=latest.name,
                last=last,
            )
        )
    return found


def _median_latencies(session: Session, where: tuple) -> dict[tuple[str, str], float]:
    """(host, config) -> the median latency of its generations matching ``where``, in
    SQL on SQLite and PostgreSQL alike (window functions; no MEDIAN in SQLite): the
    middle one, or the mean of the two middle ones, as ``statistics.median``. Reading
    every latency into Python for it cost 0.2-0.7 s more of plan's CPU at 100,000
    generations (benchmarks/perf/plan_history.py)."""
    group = (Generation.host, Generation.config_hash)
    ranked = (
        select(
            *group,
            Generation.latency_s,
            func.row_number().over(partition_by=group, order_by=Generation.latency_s).label("i"),
            func.count().over(partition_by=group).label("n"),
        )
        .where(*where)
        .subquery()
    )
    middle = ranked.c.i.in_(((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2))
    rows = session.exec(
        select(ranked.c.host, ranked.c.config_hash, func.avg(ranked.c.latency_s))
        .where(middle)
        .group_by(ranked.c.host, ranked.c.config_hash)
    ).all()
    return {(host, config): float(latency) for host, config, latency in rows}


def _slots(experiment: Experiment, host: str) -> int | None:
    for spec in (experiment.spec or {}).get("hosts", []):
        if spec.get("name") == host:
            return spec.get("slots")
    return None


def stored_keys(session: Session, experiment: str) -> set[tuple[str, str, int]]:
    """The work keys ``experiment`` already generated (empty when it does not exist)."""
    rows = session.exec(
        select(Generation.config_hash, Generation.case_uid, Generation.sample_index)
        .join(Experiment, Experiment.id == Generation.experiment_id)
        .where(Experiment.name == experiment, Generation.status == "ok")
    ).all()
    return {(h, c, i) for h, c, i in rows}


def stored_elsewhere(
    session: Session, experiment: str, suite: str, hashes: Collection[str]
) -> dict[str, tuple[set[str], list[str]]]:
    """Per config of ``hashes``: the case ids of ``suite`` stored for it by experiments
    other than ``experiment``, and those experiments' names (`plan` of a spec whose
    ``cases:`` leaves them out says they are not run again)."""
    rows = session.exec(
        select(Generation.config_hash, Generation.case_uid, Experiment.name)
        .join(Experiment, Experiment.id == Generation.experiment_id)
        .where(
            Experiment.suite == suite,
            Experiment.name != experiment,
            Generation.config_hash.in_(list(hashes)),  # type: ignore[attr-defined]
            Generation.status == "ok",
        )
        .distinct()
    ).all()
    found: dict[str, tuple[set[str], list[str]]] = {}
    for config_hash, uid, name in rows:
        cases, names = found.setdefault(config_hash, (set(), []))
        cases.add(uid.removeprefix(f"{suite}/"))
        if name not in names:
            names.append(name)
    return found
