"""The nightly regression sweep: run the sweep again, compare it with the accepted
baseline, and raise the alarm (event, artifact, Failed run) when it regressed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from evaluation.compare._regression import RegressionDetected, Thresholds
from evaluation.series import ESCALATE_SHARE
from evaluation.spec import load_spec
from evaluation.storage.db import open_database
from flows.deployed_console import deployed_errors_in_one_line
from flows.evaluate import evaluate
from flows.masked_errors import masked_errors
from flows.run_names import experiment_name, nightly_run_name
from tasks.adapters.run_labels import label_flow_run
from tasks.itembank import calibrated_tonight
from tasks.regression import (
    accept,
    compare_with_baseline,
    emit_accepted_event,
    emit_regression_event,
    find_baseline,
    publish_report,
    store_verdict,
)
from tasks.series import record_calibrated, watch_trends
from tasks.sweep import load_sweep


def nightly_name(series: str, day: date) -> str:
    """The experiment a nightly run writes: ``<spec name>-nightly-<YYYY-MM-DD>``. A rerun
    on the same day resumes it."""
    return f"{series}-nightly-{day.isoformat()}"


def _scheduled() -> datetime:
    """When the run was scheduled for (a late start keeps its night's name)."""
    return (flow_run.get_scheduled_start_time() or datetime.now(UTC)).astimezone(UTC)


@flow(name="nightly-regression", flow_run_name=nightly_run_name)
@masked_errors
async def nightly(
    spec_path: str,
    baseline: str | None = None,
    accept_baseline: bool = False,
    experiment: str | None = None,
    database: str | None = None,
    alpha: float = 0.05,
    min_success_rate: float = 0.90,
    max_p95_ratio: float = 2.0,
    min_gpu_util_pct: float = 50.0,
    simulated_time_scale: float = 0.0,
    false_alarms_per_100_nights: float = 2.0,
    level: Literal["full", "calibrated"] = "full",
    cases: int | None = None,
    escalate_at: float = ESCALATE_SHARE,
) -> dict[str, Any]:
    """Run the sweep in ``spec_path`` as tonight's experiment and check it for regressions.

    Args:
        spec_path: the sweep spec (YAML), the same one the baseline ran.
        baseline: the experiment to compare with; default: the accepted baseline of the
            spec's series (``evalflow baseline accept EXPERIMENT``).
        accept_baseline: make tonight's run the accepted baseline after the check (the
            check is still published; the run does not fail).
        experiment: tonight's experiment name; default ``<spec name>-nightly-<date>``.
            ``{date}`` and ``{time}`` in it are the scheduled start's (UTC; e.g.
            ``qa-{date}-{time}`` for a schedule more often than daily).
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
        alpha: significance level of the quality-drop test (Holm-adjusted).
        min_success_rate: alert when a config's share of successful generations is lower.
        max_p95_ratio: alert when a config's p95 latency exceeds this times the baseline's.
        min_gpu_util_pct: alert when a config's mean GPU utilisation is lower (measured
            only where the flow runs on the GPU's machine).
        simulated_time_scale: simulated backend only: each call sleeps its latency × this
            (0: × its host's own ``?time_scale=``, 0 without).
        false_alarms_per_100_nights: the trend watch's promise for the whole series
            (docs/trends.md); a trend alarm fails the run as a rule does.
        level: "calibrated" watches the series on the calibrated level (the suite's
            item bank; ``cases`` of the suite, default 10%) and runs the full suite for a
            config the same night, in the same experiment, only when one of its quality
            streams moved beyond noise; without a usable bank tonight it runs the full
            suite and says why.
        cases: the calibrated level's number of cases.
        escalate_at: the share of the CUSUM's threshold whose evidence sends a
            calibrated night on to the full suite (an alarm always does).
    """
    deployed_errors_in_one_line()
    thresholds = Thresholds(alpha, min_success_rate, max_p95_ratio, min_gpu_util_pct)
    series = load_spec(spec_path).name
    when = _scheduled()
    name = experiment_name(experiment, when) if experiment else nightly_name(series, when.date())
    await label_flow_run(experiment=name, series=series, extra=["nightly"])
    engine = open_database(database)
    fallback = ""
    if level == "calibrated":
        sweep = load_sweep(spec_path)
        fallback = calibrated_tonight(engine, sweep, cases, name)
    tonight = "calibrated" if level == "calibrated" and not fallback else "full"
    summary = await evaluate(
        spec_path=spec_path,
        experiment=name,
        database=database,
        simulated_time_scale=simulated_time_scale,
        level=tonight,
        cases=cases if tonight == "calibrated" else None,
    )
    if fallback:
        record_calibrated(engine, name, [], len(sweep.suite.cases), fallback=fallback)
    trends = watch_trends(engine, series, false_alarms_per_100_nights, escalate_at)
    escalated = ""
    if tonight == "calibrated" and trends["escalate"]:
        escalated = "; ".join(trends["escalate"])
        get_run_logger().warning("calibrated night moved beyond noise: %s", escalated)
        record_calibrated(engine, name, [], 0, escalated=escalated)
        full = await evaluate(  # the same experiment: the calibrated cases are reused
            spec_path=spec_path,
            experiment=name,
            database=database,
            simulated_time_scale=simulated_time_scale,
            configs=trends["escalate_configs"],
        )
        summary = {
            "generated": summary["generated"] + full["generated"],
            "failed": summary["failed"] + full["failed"],
        }
        trends = watch_trends(engine, series, false_alarms_per_100_nights, escalate_at)
    against = baseline or find_baseline(engine, series, name)
    report = compare_with_baseline(engine, name, against, thresholds, series)
    key = publish_report(report, series, trends["markdown"])
    store_verdict(engine, report, series)
    alarms = trends["payload"]["alarms"]
    result = {
        "experiment": name,
        "baseline": against,
        "regressed": report.regressed or bool(alarms),
        "rules": list(report.rules_fired),
        "summary": _summary(report.summary(), alarms),
        "trend_alarms": [a["message"] for a in alarms],
        "artifact_key": key,
        "generated": summary["generated"],
        "failed": summary["failed"],
        "accepted_baseline": accept_baseline,
        "level": tonight,
        "fallback": fallback,
        "escalated": escalated,
    }
    logger = get_run_logger()
    if accept_baseline:
        if result["regressed"]:
            logger.warning("accepted as the new baseline despite: %s", result["summary"])
        emit_accepted_event(accept(engine, name))
        return result
    emit_regression_event(report, series, key, trends["payload"])
    if result["regressed"]:
        raise RegressionDetected(result["summary"])
    logger.info(result["summary"])
    return result


def _summary(rules: str, alarms: list[dict[str, Any]]) -> str:
    """The rules' one line, and the trend watch's alarms after it."""
    if not alarms:
        return rules
    return f"{rules} Trend alarm: " + "; ".join(a["message"] for a in alarms)
