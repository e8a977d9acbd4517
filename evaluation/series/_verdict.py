"""The series watch's verdict as the readers that need no more than it read it: the
runs it alarmed on (the item bank leaves them out) and how many streams its last judged
run alarmed on (Prometheus' ``evalflow_trend_alarm``). The whole watch costs seconds on
a series of a few dozen nights, so its verdict with the default settings is kept in
``view_pages`` with the fingerprint of what the watch reads, by whichever reader computed
the watch first (``evalflow trends``, the monitor's series page, the nightly run, the
bank, a scrape); every other reads it back in one query until a run of the series is
added, changes, ends (or its process dies) or is accepted, or an item bank is
calibrated."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from sqlalchemy import bindparam, text
from sqlmodel import Session

from evaluation.series._series import grouped_experiments, series_experiments
from evaluation.series._trends import SeriesWatch, SubsetEstimates, watch_series
from evaluation.series._watch import RULES, WatchError, WatchSettings
from evaluation.storage.models import Experiment
from evaluation.storage.pages import keep_page, stored_page
from evaluation.storage.runs import experiment_status


@dataclass(frozen=True)
class WatchVerdict:
    """The watch's verdict on a series with the default settings: ``alarmed``, the runs
    it raised an ALARM on that were not accepted as a baseline since; ``last_alarms``,
    the streams its last judged run alarmed on (what ``trends --fail-on-alarm`` exits 1
    on), None before any run is judged or where the watch refuses the series."""

    alarmed: tuple[str, ...] = ()
    last_alarms: int | None = None


def verdict_of(watch: SeriesWatch) -> WatchVerdict:
    """The verdict of a watch computed in full."""
    accepted = {p.experiment for p in watch.points if p.accepted_baseline}
    alarmed = {
        night.experiment
        for stream in watch.streams
        for night in stream.nights
        if night.alarm and night.experiment not in accepted
    }
    return WatchVerdict(tuple(sorted(alarmed)), None if watch.judged is None else len(watch.alarms))


def series_verdict(session: Session, series: str, banks: SubsetEstimates | None) -> WatchVerdict:
    """Series ``series``' verdict: the kept one while what the watch reads is unchanged,
    else computed (``banks``: as ``watch_series``) and kept. SeriesNotFound when the
    series has no run."""
    return _verdict(session, series, series_experiments(session, series), banks)


def series_verdicts(session: Session, banks: SubsetEstimates | None) -> dict[str, WatchVerdict]:
    """Every series' verdict, as :func:`series_verdict`."""
    return {
        series: _verdict(session, series, experiments, banks)
        for series, experiments in sorted(grouped_experiments(session).items())
    }


def watch_and_keep(
    session: Session,
    series: str,
    settings: WatchSettings | None = None,
    banks: SubsetEstimates | None = None,
) -> SeriesWatch:
    """``watch_series``, its verdict kept for the other readers when ``settings`` are the
    default ones (a watch with others is not the series' verdict)."""
    settings = settings or WatchSettings()
    if settings != WatchSettings():
        return watch_series(session, series, settings, banks)
    experiments = series_experiments(session, series)
    fingerprint = _fingerprint(session, experiments)  # before the watch reads
    watch = watch_series(session, series, settings, banks)
    _keep(session, series, experiments, fingerprint, verdict_of(watch))
    return watch


#: The kept verdict's page in ``view_pages`` (``evaluation.storage.pages``), on the
#: series' first run, and its payload's fields: a verdict kept under other rules of the
#: watch (``RULES``) or with other fields is computed again.
_PAGE = "series_verdict:"
_FORMAT = ",".join(f.name for f in fields(WatchVerdict))

#: Per run of the series: what the watch reads of it, counted cheaply. ``updated_at``
#: moves when a run is registered, changes status or is accepted as a baseline; the
#: aggregates when its scores change (rescored, judged).
_INPUTS = text(
    "SELECT e.name, e.id, e.updated_at, e.accepted_baseline, r.series, r.suite_digest, "
    "(SELECT COUNT(*) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.mean) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.n) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT COUNT(*) FROM series_calibrated_nights c WHERE c.experiment = e.name), "
    "(SELECT COUNT(*) FROM series_run_models m WHERE m.experiment = e.name) "
    "FROM experiments e LEFT JOIN series_runs r ON r.experiment = e.name "
    "WHERE e.id IN :ids ORDER BY e.id"
).bindparams(bindparam("ids", expanding=True))
_BANKS = text("SELECT MAX(id) FROM item_banks")


def _fingerprint(session: Session, experiments: list[Experiment]) -> str:
    """What the watch reads of ``experiments``: per run its counted inputs and its
    status as ``experiment_status`` judges it (a stored 'running' whose process died is
    crashed, as the watch's points say), and the newest item bank."""
    ids = [e.id for e in experiments]
    rows = [list(row) for row in session.connection().execute(_INPUTS, {"ids": ids})]
    status = {  # only a stored 'running' can be judged another
        e.name: experiment_status(session, e).status if e.status == "running" else e.status
        for e in experiments
    }
    banks = session.connection().execute(_BANKS).scalar()
    return json.dumps(
        [RULES, _FORMAT, banks, *[[*row, status.get(row[0])] for row in rows]], default=str
    )


def _verdict(
    session: Session, series: str, experiments: list[Experiment], banks: SubsetEstimates | None
) -> WatchVerdict:
    fingerprint = _fingerprint(session, experiments)
    payload = stored_page(session, min(e.id for e in experiments), _PAGE + series, fingerprint)
    if payload is not None:
        last = payload["last_alarms"]
        return WatchVerdict(tuple(payload["alarmed"]), last)
    try:
        verdict = verdict_of(watch_series(session, series, banks=banks))
    except WatchError:  # a series the watch refuses: no verdict, nothing alarmed
        verdict = WatchVerdict()
    _keep(session, series, experiments, fingerprint, verdict)
    return verdict


def _keep(
    session: Session,
    series: str,
    experiments: list[Experiment],
    fingerprint: str,
    verdict: WatchVerdict,
) -> None:
    payload = {"alarmed": list(verdict.alarmed), "last_alarms": verdict.last_alarms}
    keep_page(session, min(e.id for e in experiments), _PAGE + series, fingerprint, payload)
