"""The evalflow metrics, read at scrape time: a prometheus-client ``Collector`` that asks
the results database (a few GROUP BY queries) and, where given, the host slots' holder
and the local GPUs.

Counters are derived from rows that only grow: a successful generation is never redone,
so ``evalflow_generations_total`` and the latency histogram (both over successful
generations) and the stored energy only ever rise. Failed generations are a gauge
(``evalflow_generations_failed``): a rerun that succeeds replaces the failed row, so
their number can fall. Labels are bounded sets (host, address, model, reason class,
status, series, GPU index), never an experiment name, a config hash or free text. The series
watch's alarms come from ``_trend_alarms``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from evaluation.backends import LIMIT_PREFIX
from evaluation.errors import StorageError
from evaluation.observability._trend_alarms import trend_alarms
from evaluation.storage.models import ConfigRow, Experiment, Generation
from evaluation.storage.runs import experiment_status, starting_runs
from evaluation.storage.verdicts import latest_verdicts

LATENCY_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Request latency buckets (seconds): from a cached 135M model to a long map-reduce."""

_REASON = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::|$)")


def reason_class(error: str | None) -> str:
    """A bounded reason for a stored error (``"BackendUnavailable: ..."`` →
    ``BackendUnavailable``): the exception class the run stored it under, else ``other``."""
    match = _REASON.match((error or "").strip())
    return match.group(1) if match else "other"


@dataclass(frozen=True)
class HostSlots:
    """A host's request slots (its Prefect concurrency limit) and how many are taken.
    ``host`` is the limit's name (``ollama-host-<address>-<port>``) or a host name; the
    metrics label it ``address`` (the name after the prefix) and ``host`` (the host name
    the specs give that address)."""

    host: str
    slots: int
    in_flight: int


@dataclass(frozen=True)
class GpuReading:
    """One local GPU now; ``None`` where NVML could not say."""

    index: int
    util_pct: float | None
    memory_used_bytes: int | None
    power_w: float | None
    energy_j: float | None  # the driver's cumulative counter


class EvalflowCollector(Collector):
    """Everything evalflow exports. ``host_slots`` and ``gpus`` are called at each scrape
    (slots live in Prefect's concurrency limits, read by the caller, which may import
    Prefect; GPUs from NVML); either may be None where not measured, and ``host_slots``
    may answer None when it finds out only then that they are not (no Prefect API set:
    the caller learns that from Prefect's settings, which it reads on the first scrape,
    not when the app is built)."""

    def __init__(
        self,
        engine: Engine,
        *,
        host_slots: Callable[[], Iterable[HostSlots] | None] | None = None,
        gpus: Callable[[], Iterable[GpuReading]] | None = None,
    ) -> None:
        self._engine = engine
        self._host_slots = host_slots
        self._gpus = gpus

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "evalflow_database_up", "1 when the results database answered this scrape"
        )
        names: dict[str, str] = {}
        slots = self._host_slots() if self._host_slots is not None else None
        simulated: list[HostSlots] = []
        try:
            with Session(self._engine) as session:
                families = list(_database_metrics(session))
                families += trend_alarms(session)
                session.commit()  # the verdicts it computed, kept for every reader
                if slots is not None:
                    names = host_names_by_limit(session)
                    simulated = simulated_host_slots(session)
                    counted = simulated_limits(session)  # the live rows count them
                    slots = [s for s in slots if s.host not in counted]
        except (SQLAlchemyError, StorageError):
            families = []
        up.add_metric([], 1.0 if families else 0.0)
        yield up
        yield from families
        if slots is not None:
            simulated_names = {h.host: h.host.removeprefix(SIMULATED_PREFIX) for h in simulated}
            yield from _slot_metrics([*slots, *simulated], {**names, **simulated_names})
        if self._gpus is not None:
            yield from _gpu_metrics(list(self._gpus()))


def _database_metrics(session: Session) -> Iterator[Metric]:
    yield from _generation_metrics(session)
    yield _experiment_metric(session)
    yield from _verdict_metrics(session)


def _generation_metrics(session: Session) -> Iterator[Metric]:
    ok = Generation.status == "ok"
    by = (Generation.host, ConfigRow.model)
    sums = [
        func.sum(case((ok & (Generation.latency_s <= bound), 1), else_=0))
        for bound in LATENCY_BUCKETS_S
    ]
    rows = session.exec(
        select(
            *by,
            func.count(),
            func.sum(case((ok & Generation.latency_s.is_not(None), 1), else_=0)),
            func.coalesce(func.sum(case((ok, Generation.latency_s), else_=None)), 0.0),
            func.coalesce(func.sum(case((ok, Generation.energy_j), else_=None)), 0.0),
            *sums,
        )
        .join(ConfigRow, ConfigRow.hash == Generation.config_hash)
        .where(ok)
        .group_by(*by)
        .order_by(*by)
    ).all()
    generations = CounterMetricFamily(
        "evalflow_generations",
        "Successful generations stored, by host and model",
        labels=["host", "model"],
    )
    latency = HistogramMetricFamily(
        "evalflow_request_duration_seconds",
        "Client-side latency of successful generations, by host and model",
        labels=["host", "model"],
    )
    energy = CounterMetricFamily(
        "evalflow_generation_energy_joules",
        "GPU energy attributed to stored generations (where NVML measured it)",
        labels=["host", "model"],
    )
    for host, model, n, timed, total_s, joules, *cumulative in rows:
        labels = [host or "unknown", model]
        generations.add_metric(labels, n)
        buckets = [
            (_le(b), int(c or 0)) for b, c in zip(LATENCY_BUCKETS_S, cumulative, strict=True)
        ]
        latency.add_metric(labels, [*buckets, ("+Inf", int(timed or 0))], float(total_s))
        energy.add_metric(labels, float(joules))
    yield generations
    yield latency
    yield energy
    yield _failed_metric(session)


def _le(bound: float) -> str:
    return repr(float(bound))


def _failed_metric(session: Session) -> Metric:
    rows = session.exec(
        select(Generation.host, ConfigRow.model, Generation.error, func.count())
        .join(ConfigRow, ConfigRow.hash == Generation.config_hash)
        .where(Generation.status == "failed")
        .group_by(Generation.host, ConfigRow.model, Generation.error)
    ).all()
    counts: dict[tuple[str, str, str], int] = {}
    for host, model, error, n in rows:
        key = (host or "unknown", model, reason_class(error))
        counts[key] = counts.get(key, 0) + n
    failed = GaugeMetricFamily(
        "evalflow_generations_failed",
        "Generations stored as failed now (a rerun that succeeds replaces them), "
        "by host, model and reason (the error's class)",
        labels=["host", "model", "reason"],
    )
    for key in sorted(counts):
        failed.add_metric(list(key), counts[key])
    return failed


def _experiment_metric(session: Session) -> Metric:
    """Experiments by status and whether they are of the simulated backend; a run whose
    process is gone counts as ``crashed``, one claimed whose flow has not begun
    (``starting_runs``: its experiment stored as it last ended or with a crashed run's
    live row, or not stored yet) as ``starting``, as `status` and the monitor show it."""
    rows = session.exec(
        select(Experiment.status, Experiment.simulated, func.count()).group_by(
            Experiment.status, Experiment.simulated
        )
    ).all()
    counts: dict[tuple[str, bool], int] = defaultdict(int)
    for status, simulated, n in rows:
        counts[(status, bool(simulated))] += n
    starting = starting_runs(session)
    claimed = [run.experiment for run in starting]
    stored: dict[str, bool] = {}
    for name, status, simulated in session.exec(
        select(Experiment.name, Experiment.status, Experiment.simulated).where(
            Experiment.name.in_(claimed)
        )
    ).all():
        stored[name] = bool(simulated)
        counts[(status, bool(simulated))] -= 1  # counted as starting below
    for run in starting:  # marked as the monitor marks it (``starting_facts``)
        counts[("starting", stored.get(run.experiment, bool(run.simulated)))] += 1
    if counts.pop(("running", False), 0) + counts.pop(("running", True), 0):
        for experiment in session.exec(
            select(Experiment).where(
                Experiment.status == "running", Experiment.name.not_in(claimed)
            )
        ).scalars():
            status = experiment_status(session, experiment).status
            counts[(status, bool(experiment.simulated))] += 1
    family = GaugeMetricFamily(
        "evalflow_runs",
        'Experiments by the status of their last run, simulated ("true") or not',
        labels=["status", "simulated"],
    )
    for (status, simulated), n in sorted(counts.items()):
        if n:
            family.add_metric([status, "true" if simulated else "false"], n)
    return family


def _verdict_metrics(session: Session) -> Iterator[Metric]:
    regressed = GaugeMetricFamily(
        "evalflow_regression_detected",
        "1 when the latest regression check of the series found a regression, else 0",
        labels=["series"],
    )
    checked = GaugeMetricFamily(
        "evalflow_regression_checked_timestamp_seconds",
        "When the latest regression check of the series ran (Unix time)",
        labels=["series"],
    )
    for row in latest_verdicts(session):
        regressed.add_metric([row.series], 1.0 if row.regressed else 0.0)
        checked.add_metric([row.series], _timestamp(row.checked_at))
    yield regressed
    yield checked


def _timestamp(when: Any) -> float:
    from datetime import UTC

    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


#: A simulated host's address label: it holds no slot lock (its slots are counted in its
#: run's process), so the series come from the runs' live rows (and not from the Prefect
#: limit a run with a shared server sizes for it: ``simulated_limits``).
SIMULATED_ADDRESS = "simulated"
SIMULATED_PREFIX = f"{LIMIT_PREFIX}{SIMULATED_ADDRESS}/"


def simulated_host_slots(session: Session) -> list[HostSlots]:
    """The simulated hosts of the runs going on now, as their live rows count them (what
    `status` and the monitor say: ``sim 4/4 slots``): their slots and requests in flight,
    summed by host name, keyed ``SIMULATED_PREFIX + name`` (address ``simulated``)."""
    from evaluation.storage.models import RunLive

    totals: dict[str, tuple[int, int]] = {}
    rows = session.exec(
        select(Experiment, RunLive)
        .join(RunLive, RunLive.experiment == Experiment.name)
        .where(Experiment.status == "running")
    ).all()
    for experiment, live in rows:
        simulated = _simulated_names(experiment.spec)
        if not simulated or experiment_status(session, experiment).status != "running":
            continue
        for name in simulated & set(live.slots or {}):
            held, taken = totals.get(name, (0, 0))
            totals[name] = (
                held + int((live.slots or {})[name]),
                taken + int((live.in_flight or {}).get(name, 0)),
            )
    return [HostSlots(f"{SIMULATED_PREFIX}{n}", *totals[n]) for n in sorted(totals)]


def _simulated_names(spec: Any) -> set[str]:
    hosts = spec.get("hosts") if isinstance(spec, dict) else None
    return {
        str(h["name"])
        for h in hosts or []
        if isinstance(h, dict)
        and h.get("name")
        and (h.get("kind") == "simulated" or str(h.get("url", "")).startswith("simulated:"))
    }


#: How many of the newest experiments name the hosts behind the slot limits.
NAMING_EXPERIMENTS = 200


def host_names_by_limit(session: Session) -> dict[str, str]:
    """Each host limit's name -> the host name the newest spec calling that address
    gives it: the ``host`` label the generation rows carry (a spec naming no host runs
    the default ``local``)."""
    from evaluation.backends import host_limit_name

    names: dict[str, str] = {}
    for host in _recent_hosts(session):
        names.setdefault(host_limit_name(str(host["url"])), str(host["name"]))
    return names


def simulated_limits(session: Session) -> set[str]:
    """The limit names of the simulated hosts the newest specs name: a run with a shared
    Prefect server sizes one for them too (``ollama-host-local-80`` for
    ``simulated://local``), whose reading beside the live rows' (``simulated_host_slots``)
    counted each slot twice (newcomers' W2). Left out of the scrape."""
    from evaluation.backends import host_limit_name

    return {
        host_limit_name(str(host["url"]))
        for host in _recent_hosts(session)
        if host.get("kind") == "simulated" or str(host["url"]).startswith("simulated:")
    }


def _recent_hosts(session: Session) -> Iterator[dict[str, Any]]:
    """The hosts (with a name and a url) of the newest ``NAMING_EXPERIMENTS`` specs."""
    from evaluation.spec import default_hosts

    specs = session.exec(
        select(Experiment.spec).order_by(Experiment.id.desc()).limit(NAMING_EXPERIMENTS)
    ).all()
    for (spec,) in specs:
        hosts = (spec or {}).get("hosts") if isinstance(spec, dict) else None
        if not hosts:
            hosts = [{"name": h.name, "url": h.url} for h in default_hosts()]
        for host in hosts:
            if isinstance(host, dict) and host.get("name") and host.get("url"):
                yield host


def _slot_metrics(hosts: list[HostSlots], names: Mapping[str, str]) -> Iterator[Metric]:
    """One sample per address, as the slot accounting keys a host: labelled ``host`` (the
    spec's name, as on the generation metrics) and ``address`` (the limit's, which holds
    no credentials: ``host_limit_name`` reads only a URL's host and port), since two
    specs may give different addresses one name. Two readings of one limit (a Prefect
    page read while limits were added, two lock folders whose host names read alike)
    are summed. Listed: the hosts this home's recent experiments name, and any other
    only while a request holds one of its slots: the machine's slot locks (and a shared
    Prefect server's limits) keep every host any run ever called, so an idle stranger
    (another user's stand-in on an ephemeral port) would add a label to every scrape."""
    slots = GaugeMetricFamily(
        "evalflow_host_slots",
        "Request slots of the host (its concurrency limit)",
        labels=["host", "address"],
    )
    in_flight = GaugeMetricFamily(
        "evalflow_requests_in_flight",
        "Requests holding a slot of the host now",
        labels=["host", "address"],
    )
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for host in hosts:
        if not host.in_flight and host.host not in names:
            continue
        # a limit's name holds no "/": a simulated host's key is ``simulated/NAME``
        address = host.host.removeprefix(LIMIT_PREFIX).split("/", 1)[0]
        key = (names.get(host.host) or address, address)
        held, taken = totals.get(key, (0, 0))
        totals[key] = (held + host.slots, taken + host.in_flight)
    for key in sorted(totals):
        slots.add_metric(list(key), totals[key][0])
        in_flight.add_metric(list(key), totals[key][1])
    yield slots
    yield in_flight


def _gpu_metrics(readings: list[GpuReading]) -> Iterator[Metric]:
    names: Mapping[str, tuple[str, str, type]] = {
        "util_pct": ("evalflow_gpu_utilization_ratio", "GPU utilisation (0-1)", GaugeMetricFamily),
        "memory_used_bytes": (
            "evalflow_gpu_memory_used_bytes",
            "GPU memory used",
            GaugeMetricFamily,
        ),
        "power_w": ("evalflow_gpu_power_watts", "GPU power draw", GaugeMetricFamily),
        "energy_j": (
            "evalflow_gpu_energy_joules",
            "GPU energy since the driver loaded (its own counter)",
            CounterMetricFamily,
        ),
    }
    for field_name, (name, doc, kind) in names.items():
        family = kind(name, doc, labels=["gpu"])
        for reading in readings:
            value = getattr(reading, field_name)
            if value is not None:
                scale = 0.01 if field_name == "util_pct" else 1.0
                family.add_metric([str(reading.index)], float(value) * scale)
        yield family
