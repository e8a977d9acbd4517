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
    watch judged a run."""
    from evaluation.itembank import BankEstimates
    from evaluation.series import series_verdicts

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
    for series, verdict in series_verdicts(session, BankEstimates(session)).items():
        if verdict.last_alarms is not None:
            alarm.add_metric([series], 1.0 if verdict.last_alarms else 0.0)
            streams.add_metric([series], verdict.last_alarms)
    yield alarm
    yield streams
