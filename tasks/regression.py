"""The regression watch's tasks: compare a run with its baseline, publish the alert
artifact, emit the Prefect events automations react to.

Events (resource ``evalflow.experiment.<run>``, with ``prefect.resource.name`` the run and
``evalflow.series`` the spec name; the baseline, when there is one, is a related resource
with role ``baseline``; the flow run is attached by Prefect):

- ``evalflow.regression.detected``: at least one rule fired. Payload: ``RegressionReport.
  payload()`` (experiment, baseline, regressed, rules, summary, alerts, checked,
  thresholds, notes) plus ``artifact_key`` and ``trends`` (the series watch's alarms
  and events, ``evaluation.series.watch_payload``); also fired by a trend alarm alone.
- ``evalflow.regression.passed``: the check ran and nothing fired (same payload); a
  proactive automation on its absence catches a nightly that did not run.
- ``evalflow.baseline.accepted``: a run was accepted in its series (the latest accepted
  run is its baseline; every accept stays in effect). Payload: experiment, series,
  replaced (the series' baseline before, when this accept made a new one, or null).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy.engine import Engine

from evaluation.compare._regression import (
    RegressionReport,
    Thresholds,
    check_regression,
    load_run,
    render_markdown,
)
from evaluation.storage.baselines import (
    Acceptance,
    accept_baseline,
    accepted_baseline,
    accepted_words,
    no_baseline_reason,
)
from evaluation.storage.db import session_scope
from evaluation.storage.verdicts import record_verdict
from tasks.results import artifact_key

DETECTED = "evalflow.regression.detected"
PASSED = "evalflow.regression.passed"
ACCEPTED = "evalflow.baseline.accepted"


@task(name="compare-with-baseline", cache_policy=NO_CACHE)
def compare_with_baseline(
    engine: Engine, experiment: str, baseline: str | None, thresholds: Thresholds, series: str
) -> RegressionReport:
    """The four regression rules, run against ``baseline`` (None: none to compare, and
    the report says why: ``series`` has none, or ``experiment`` is it)."""
    with session_scope(engine) as session:
        run = load_run(session, experiment)
        before = load_run(session, baseline) if baseline else None
        why = "" if baseline else no_baseline_reason(session, series, experiment)
    report = check_regression(run, before, thresholds, no_baseline=why)
    logger = get_run_logger()
    for alert in report.alerts:
        logger.warning("%s: %s", alert.rule, alert.message)
    for note in report.notes:
        logger.info("note: %s", note)
    return report


@task(name="publish-regression-report", cache_policy=NO_CACHE)
def publish_report(report: RegressionReport, series: str, trends: str = "") -> str:
    """The alert artifact, keyed per series so the Artifacts page keeps its history;
    ``trends``: the watch over the series (Markdown), appended."""
    key = artifact_key(series, "regression")
    verdict = "REGRESSION" if report.regressed else "no regression"
    create_markdown_artifact(
        key=key,
        markdown=render_markdown(report) + (f"\n\n{trends}" if trends else ""),
        description=f"Regression check of {report.experiment}: {verdict}",
    )
    return key


@task(name="record-regression-verdict", cache_policy=NO_CACHE)
def store_verdict(engine: Engine, report: RegressionReport, series: str) -> None:
    """Keep the verdict in the results database (the metrics endpoint reads it back). A
    check that compared nothing (no baseline, or nothing in common with it) and found
    nothing is not a verdict: the series' last one stands, so
    ``evalflow_regression_detected`` is not cleared by a run that resumed the accepted
    baseline itself."""
    if not report.compared and not report.regressed:
        get_run_logger().info(
            "verdict not stored (nothing compared): the last verdict of %s stands", series
        )
        return
    with session_scope(engine) as session:
        record_verdict(
            session,
            report.experiment,
            series,
            baseline=report.baseline,
            regressed=report.regressed,
            rules=report.rules_fired,
        )


@task(name="accept-baseline", cache_policy=NO_CACHE)
def accept(engine: Engine, experiment: str) -> Acceptance:
    with session_scope(engine) as session:
        acceptance = accept_baseline(session, experiment)
    get_run_logger().info("%s", accepted_words(acceptance))
    return acceptance


def _resource(experiment: str, series: str) -> dict[str, str]:
    return {
        "prefect.resource.id": f"evalflow.experiment.{experiment}",
        "prefect.resource.name": experiment,
        "evalflow.series": series,
    }


def emit_regression_event(
    report: RegressionReport, series: str, key: str, trends: dict | None = None
) -> Any:
    """``evalflow.regression.detected`` (a rule fired, or the trend watch alarmed) or
    ``evalflow.regression.passed``; ``trends``: the watch's payload (its alarms and
    events), carried as ``trends``."""
    alarmed = bool(trends and trends.get("alarms"))
    related = []
    if report.baseline:
        related.append(
            {
                "prefect.resource.id": f"evalflow.experiment.{report.baseline}",
                "prefect.resource.role": "baseline",
                "prefect.resource.name": report.baseline,
            }
        )
    return emit_event(
        event=DETECTED if report.regressed or alarmed else PASSED,
        resource=_resource(report.experiment, series),
        related=related,
        payload={**report.payload(), "artifact_key": key, "trends": trends},
    )


def emit_accepted_event(acceptance: Acceptance) -> Any:
    return emit_event(
        event=ACCEPTED,
        resource=_resource(acceptance.experiment, acceptance.series),
        payload={
            "experiment": acceptance.experiment,
            "series": acceptance.series,
            "replaced": acceptance.replaced,
        },
    )


@task(name="find-baseline", cache_policy=NO_CACHE)
def find_baseline(engine: Engine, series: str, experiment: str) -> str | None:
    with session_scope(engine) as session:
        found = accepted_baseline(session, series, exclude=experiment)
        why = "" if found else no_baseline_reason(session, series, experiment)
    if found is None:
        get_run_logger().warning(
            "no baseline to compare %s with: %s; accept a run with `evalflow baseline accept "
            "EXPERIMENT` (the latest run accepted is the baseline) or run this flow with "
            "accept_baseline=true",
            experiment,
            why,
        )
    return found
