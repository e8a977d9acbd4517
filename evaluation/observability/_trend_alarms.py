"""The series watch's state for Prometheus: per series, whether its last judged run
raised a trend alarm (what ``evalflow trends --fail-on-alarm`` exits 1 on) and on how
many streams. Computed by the watch itself (``watch_series``, as ``evalflow trends``
does) on stored rows, and again only for a series one of whose runs started, ended or
was accepted as a baseline since: a scrape in between costs one small query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlmodel import Session

from evaluation.errors import EvalError
from evaluation.series.schema import SeriesRun
from evaluation.storage.models import Experiment


class TrendAlarms:
    """The watch's verdict per series, kept until the series' stored runs change."""

    def __init__(self) -> None:
        self._stamp: tuple[Any, ...] | None = None
        # series -> (its runs' fingerprint, streams alarmed on its last judged run or None)
        self._kept: dict[str, tuple[tuple[Any, ...], int | None]] = {}

    def metrics(self, session: Session) -> Iterator[Metric]:
        stamp = _stamp(session)
        if stamp != self._stamp:
            self._kept = _watch_changed_series(session, self._kept)
            self._stamp = stamp
        alarm = GaugeMetricFamily(
            "evalflow_trend_alarm",
            "1 when the series' last judged run raised a trend alarm (evalflow trends "
            "--fail-on-alarm exits 1), else 0",
            labels=["series"],
        )
        streams = GaugeMetricFamily(
            "evalflow_trend_alarm_streams",
            "Streams (config x metric) the series' last judged run alarmed on",
            labels=["series"],
        )
        for series, (_, alarmed) in sorted(self._kept.items()):
            if alarmed is not None:
                alarm.add_metric([series], 1.0 if alarmed else 0.0)
                streams.add_metric([series], alarmed)
        yield alarm
        yield streams


def _stamp(session: Session) -> tuple[Any, ...]:
    """What changes when a run is registered, changes status or metrics, or is accepted
    (each sets ``updated_at``), or joins a series."""
    experiments = session.exec(
        select(func.count(), func.max(Experiment.id), func.max(Experiment.updated_at))
    ).one()
    joined = session.exec(select(func.count()).select_from(SeriesRun)).one()
    return (*experiments, joined)


def _watch_changed_series(
    session: Session, kept: dict[str, tuple[tuple[Any, ...], int | None]]
) -> dict[str, tuple[tuple[Any, ...], int | None]]:
    """Every series: its runs' fingerprint and its alarmed streams (None: no judged run
    yet, or a series the watch refuses), the watch run again only where the fingerprint
    changed."""
    from evaluation.itembank import BankEstimates
    from evaluation.series import list_series, watch_series

    runs = {
        name: (status, updated)
        for name, status, updated in session.exec(
            select(Experiment.name, Experiment.status, Experiment.updated_at)
        ).all()
    }
    banks = BankEstimates(session)
    out = {}
    for summary in list_series(session):
        fingerprint = tuple(runs.get(name) for name in summary.experiments)
        if summary.name in kept and kept[summary.name][0] == fingerprint:
            out[summary.name] = kept[summary.name]
            continue
        try:
            watch = watch_series(session, summary.name, banks=banks)
        except EvalError:  # a series the watch refuses (too many streams, say): not exported
            out[summary.name] = (fingerprint, None)
            continue
        out[summary.name] = (fingerprint, None if watch.judged is None else len(watch.alarms))
    return out
