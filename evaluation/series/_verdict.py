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
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlmodel import Session

from evaluation.series._calibrated_level import SubsetEstimates
from evaluation.series._series import grouped_experiments, series_experiments
from evaluation.series._stream_verdicts import SeriesWatch
from evaluation.series._trends import watch_series
from evaluation.series._watch import RULES, WatchError, WatchSettings
from evaluation.storage.models import Experiment, ViewPage
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
    experiments = series_experiments(session, series)
    fingerprint = _fingerprints(session, {series: experiments})[series]
    page = stored_page(session, _first(experiments), _PAGE + series, fingerprint)
    return _verdict(session, series, experiments, fingerprint, page, banks)


def series_verdicts(
    session: Session,
    banks: SubsetEstimates | None,
    groups: dict[str, list[Experiment]] | None = None,
) -> dict[str, WatchVerdict]:
    """Every series' verdict, as :func:`series_verdict`, their inputs and kept verdicts
    read in one query each (a scrape of 40 series read them per series: 120 ms);
    ``groups``: ``grouped_experiments``, where the caller read them already."""
    groups = grouped_experiments(session) if groups is None else groups
    fingerprints = _fingerprints(session, groups, every=True)
    pages = session.exec(select(ViewPage).where(ViewPage.page.startswith(_PAGE))).scalars()
    kept = {(row.experiment_id, row.page): row for row in pages}
    out = {}
    for series, experiments in sorted(groups.items()):
        row = kept.get((_first(experiments), _PAGE + series))
        page = row.payload if row is not None and row.fingerprint == fingerprints[series] else None
        out[series] = _verdict(session, series, experiments, fingerprints[series], page, banks)
    return out


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
    fingerprint = _fingerprints(session, {series: experiments})[series]  # before it reads
    watch = watch_series(session, series, settings, banks)
    _keep(session, series, experiments, fingerprint, verdict_of(watch))
    return watch


#: The kept verdict's page in ``view_pages`` (``evaluation.storage.pages``), on the
#: series' first run, and its payload's fields: a verdict kept under other rules of the
#: watch (``RULES``) or with other fields is computed again.
_PAGE = "series_verdict:"
_FORMAT = ",".join(f.name for f in fields(WatchVerdict))

#: Per run: what the watch reads of it, counted cheaply. ``updated_at`` moves when a run
#: is registered, changes status or is accepted as a baseline; the aggregates when its
#: scores change (rescored, judged).
_INPUTS = (
    "SELECT e.name, e.id, e.updated_at, e.accepted_baseline, r.series, r.suite_digest, "
    "(SELECT COUNT(*) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.mean) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT SUM(a.n) FROM aggregates a WHERE a.experiment_id = e.id), "
    "(SELECT COUNT(*) FROM series_calibrated_nights c WHERE c.experiment = e.name), "
    "(SELECT COUNT(*) FROM series_run_models m WHERE m.experiment = e.name) "
    "FROM experiments e LEFT JOIN series_runs r ON r.experiment = e.name"
)
_SOME = text(_INPUTS + " WHERE e.id IN :ids").bindparams(bindparam("ids", expanding=True))
_BANKS = text("SELECT MAX(id) FROM item_banks")


def _fingerprints(
    session: Session, groups: dict[str, list[Experiment]], *, every: bool = False
) -> dict[str, str]:
    """Per series of ``groups`` (``every``: all the database's), what the watch reads of
    its runs: each one's counted inputs and its status as ``experiment_status`` judges it
    (a stored 'running' whose process died is crashed, as the watch's points say), and
    the newest item bank."""
    ids = [e.id for experiments in groups.values() for e in experiments]
    connection = session.connection()
    found = connection.execute(text(_INPUTS)) if every else connection.execute(_SOME, {"ids": ids})
    rows = {row[1]: list(row) for row in found}
    banks = connection.execute(_BANKS).scalar()
    return {
        series: json.dumps(
            [
                RULES,
                _FORMAT,
                banks,
                *[
                    [*rows[e.id], _status(session, e)]
                    for e in sorted(experiments, key=lambda e: e.id)
                    if e.id in rows
                ],
            ],
            default=str,
        )
        for series, experiments in groups.items()
    }


def _status(session: Session, experiment: Experiment) -> str:
    """Its status as ``experiment_status`` judges it: only a stored 'running' can differ."""
    if experiment.status != "running":
        return experiment.status
    return experiment_status(session, experiment).status


def _first(experiments: list[Experiment]) -> int:
    """The run the series' verdict is kept on: its first."""
    return min(e.id for e in experiments)


def _verdict(
    session: Session,
    series: str,
    experiments: list[Experiment],
    fingerprint: str,
    page: Any,
    banks: SubsetEstimates | None,
) -> WatchVerdict:
    """The kept verdict ``page`` (None: none kept with ``fingerprint``), else computed
    and kept."""
    if page is not None:
        return WatchVerdict(tuple(page["alarmed"]), page["last_alarms"])
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
    keep_page(session, _first(experiments), _PAGE + series, fingerprint, payload)
