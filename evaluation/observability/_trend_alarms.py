"""The series watch's state for Prometheus: per series, whether its last judged run
raised a trend alarm (what ``evalflow trends --fail-on-alarm`` exits 1 on) and on how
many streams. Read from the watch's kept verdict (``evaluation.series.series_verdicts``),
the one the item bank and ``evalflow trends`` keep too: computed only for a series whose
runs changed since any of them last computed it."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlmodel import Session


def trend_alarms(session: Session) -> Iterator[Metric]:
    """``evalflow_trend_alarm`` and ``evalflow_trend_alarm_streams`` per series whose
    watch judged a run, labelled ``simulated="true"`` where a run of the series is of the
    simulated backend (as `trends` marks it [SIMULATED]): an alert on it can say so."""
    from evaluation.itembank import BankEstimates
    from evaluation.series import grouped_experiments, series_verdicts

    alarm = GaugeMetricFamily(
        "evalflow_trend_alarm",
        "1 when the series' last judged run raised a trend alarm (evalflow trends "
        "--fail-on-alarm exits 1), else 0",
        labels=["series", "simulated"],
    )
    streams = GaugeMetricFamily(
        "evalflow_trend_alarm_streams",
        "Streams (config x metric) the series' last judged run alarmed on",
        labels=["series", "simulated"],
    )
    groups = grouped_experiments(session)
    for series, verdict in series_verdicts(session, BankEstimates(session), groups).items():
        if verdict.last_alarms is not None:
            labels = [series, "true" if any(e.simulated for e in groups[series]) else "false"]
            alarm.add_metric(labels, 1.0 if verdict.last_alarms else 0.0)
            streams.add_metric(labels, verdict.last_alarms)
    yield alarm
    yield streams
