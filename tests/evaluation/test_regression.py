"""The regression rules on hand-made runs, checked against scipy/statsmodels directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from evaluation.compare._regression import (
    RunData,
    Thresholds,
    check_regression,
    p95_latency,
    render_markdown,
)
from tests.support.reference_stats import multipletests

N = 40


def scores(values_by_config: dict[str, list[float]], metric: str = "exact_match") -> pd.DataFrame:
    rows = [
        {
            "config": config,
            "case_id": f"c{i}",
            "sample_index": 0,
            "group": None,
            "metric": metric,
            "value": v,
        }
        for config, values in values_by_config.items()
        for i, v in enumerate(values)
    ]
    return pd.DataFrame(
        rows, columns=["config", "case_id", "sample_index", "group", "metric", "value"]
    )


def generations(latency_by_config: dict[str, list[float]], failed: dict[str, int] | None = None):
    rows = []
    for config, latencies in latency_by_config.items():
        n_failed = (failed or {}).get(config, 0)
        for i, latency in enumerate(latencies):
            bad = i < n_failed
            rows.append(
                {
                    "config_hash": config,
                    "status": "failed" if bad else "ok",
                    "latency_s": None if bad else latency,
                }
            )
    return pd.DataFrame(rows)


def run(name, score_values, latencies, *, failed=None, gpu=None, metrics=("exact_match",)):
    return RunData(
        experiment=name,
        suite="qa",
        metrics=metrics,
        labels={c: f"label-{c}" for c in latencies},
        scores=scores(score_values),
        generations=generations(latencies, failed),
        gpu_util=gpu or {},
    )


def steady(value: float = 1.0) -> list[float]:
    return [value] * N


def test_quality_drop_uses_mcnemar_with_holm_adjustment():
    base_a, base_b = steady(1.0), [1.0 if i % 2 else 0.0 for i in range(N)]
    now_a = [0.0 if i < 12 else 1.0 for i in range(N)]  # 12 of 40 right answers lost
    now_b = list(base_b)
    latencies = {"a": steady(0.5), "b": steady(0.5)}
    baseline = run("base", {"a": base_a, "b": base_b}, latencies)
    current = run("now", {"a": now_a, "b": now_b}, latencies)

    report = check_regression(current, baseline)

    p_a = mcnemar([[28, 12], [0, 0]], exact=True).pvalue  # discordant: 12 vs 0
    expected = multipletests([p_a, 1.0], method="holm")[1]
    assert [a.rule for a in report.alerts] == ["quality_drop"]
    alert = report.alerts[0]
    assert alert.config == "a" and alert.metric == "exact_match"
    assert alert.p_value == pytest.approx(expected[0])
    assert alert.observed == pytest.approx(np.mean(now_a))
    assert alert.reference == pytest.approx(1.0)
    assert report.checked["quality_drop"] == 2
    assert report.regressed and report.rules_fired == ("quality_drop",)
    assert "exact_match fell from 1.000 to 0.700" in report.summary()


def test_a_significant_improvement_is_not_an_alert():
    worse, better = [0.0] * N, steady(1.0)
    latencies = {"a": steady(0.5)}
    report = check_regression(
        run("now", {"a": better}, latencies), run("b", {"a": worse}, latencies)
    )
    assert not report.regressed
    (comparison,) = report.comparisons
    assert comparison.diff == pytest.approx(1.0) and comparison.p_adjusted < 0.05
    assert not comparison.worse


def test_small_drop_within_noise_is_not_an_alert():
    base = steady(1.0)
    now = [0.0 if i < 2 else 1.0 for i in range(N)]  # McNemar exact p = 0.5
    latencies = {"a": steady(0.5)}
    report = check_regression(run("now", {"a": now}, latencies), run("b", {"a": base}, latencies))
    assert report.comparisons[0].p_adjusted == pytest.approx(mcnemar([[38, 2], [0, 0]]).pvalue)
    assert not report.regressed


def test_success_rate_below_threshold_fires_per_config():
    latencies = {"a": steady(0.5)[:10], "b": steady(0.5)[:10]}
    current = run("now", {}, latencies, failed={"a": 2, "b": 1})  # 80% and 90%
    report = check_regression(current, None)
    (alert,) = report.alerts
    assert alert.rule == "success_rate" and alert.config == "a"
    assert alert.observed == pytest.approx(0.8)
    assert report.checked["success_rate"] == 2
    assert "no baseline" in " ".join(report.notes)


def test_p95_latency_ratio_against_the_baseline():
    rng = np.random.default_rng(1)
    before = list(rng.uniform(0.2, 0.4, N))
    slow = [3 * x for x in before]
    similar = [1.5 * x for x in before]
    baseline = run("base", {}, {"a": before, "b": before})
    current = run("now", {}, {"a": slow, "b": similar})
    report = check_regression(current, baseline)
    (alert,) = report.alerts
    assert alert.rule == "latency_p95" and alert.config == "a"
    assert alert.observed == pytest.approx(np.percentile(slow, 95))
    assert alert.reference == pytest.approx(np.percentile(before, 95))
    assert report.checked["latency_p95"] == 2


def test_p95_ignores_failed_generations():
    frame = generations({"a": [1.0] * 19 + [100.0]}, failed={"a": 0})
    frame.loc[19, ["status", "latency_s"]] = ["failed", None]
    assert p95_latency(frame) == {"a": pytest.approx(1.0)}


def test_gpu_utilisation_rule_and_its_absence():
    latencies = {"a": steady(0.5), "b": steady(0.5)}
    report = check_regression(run("now", {}, latencies, gpu={"a": 31.0, "b": 75.0}), None)
    (alert,) = report.alerts
    assert (alert.rule, alert.config, alert.observed) == ("gpu_utilisation", "a", 31.0)

    unmeasured = check_regression(run("now", {}, latencies), None)
    assert not unmeasured.regressed
    assert unmeasured.checked["gpu_utilisation"] == 0
    assert any("GPU utilisation not measured" in n for n in unmeasured.notes)


def test_different_suites_are_not_compared():
    latencies = {"a": steady(0.5)}
    baseline = run("base", {"a": steady(1.0)}, latencies)
    other = RunData(**{**baseline.__dict__, "suite": "summaries"})
    report = check_regression(run("now", {"a": [0.0] * N}, latencies), other)
    assert not report.regressed and report.checked["quality_drop"] == 0
    assert "not checked" in report.notes[0]


def test_payload_is_json_and_markdown_names_every_alert():
    latencies = {"a": steady(0.5)}
    baseline = run("base", {"a": steady(1.0)}, latencies)
    current = run("now", {"a": [0.0] * N}, {"a": steady(2.0)}, failed={"a": 10}, gpu={"a": 5.0})
    report = check_regression(current, baseline)
    assert set(report.rules_fired) == {
        "quality_drop",
        "success_rate",
        "latency_p95",
        "gpu_utilisation",
    }
    payload = json.loads(json.dumps(report.payload()))
    assert payload["regressed"] is True and payload["baseline"] == "base"
    assert {a["rule"] for a in payload["alerts"]} == set(report.rules_fired)
    markdown = render_markdown(report)
    assert "REGRESSION" in markdown
    for alert in report.alerts:
        assert alert.message in markdown


@pytest.mark.parametrize(
    "bad",
    [{"alpha": 0}, {"min_success_rate": 1.5}, {"max_p95_ratio": 0}, {"min_gpu_util_pct": 101}],
)
def test_thresholds_are_validated(bad):
    with pytest.raises(ValueError):
        Thresholds(**bad)


def test_the_report_gives_every_drop_an_interval_or_says_why_it_has_none():
    """A run losing the right answer on every one of 6 cases read "-1 [-1, -1]"; 0/1
    scores now get Tango's interval, and equal differences on another scale none."""
    latencies = {"a": [0.5] * 6}
    report = check_regression(
        run("now", {"a": [0.0] * 6}, latencies), run("base", {"a": [1.0] * 6}, latencies)
    )
    (comparison,) = report.comparisons
    low, high = comparison.ci
    z2 = 1.959963984540054**2
    assert (low, high) == pytest.approx((-1.0, -(6 - z2) / (6 + z2)))  # Tango's, closed form
    assert "[-1, -0.219" in render_markdown(report)
    rated = RunData(
        experiment="now",
        suite="qa",
        metrics=("rougeL",),
        labels={"a": "label-a"},
        scores=scores({"a": [0.5] * 6}, "rougeL"),
        generations=generations(latencies),
        gpu_util={},
    )
    base = RunData(**{**rated.__dict__, "experiment": "base",
                      "scores": scores({"a": [0.75] * 6}, "rougeL")})  # fmt: skip
    shown = render_markdown(check_regression(rated, base))
    assert "-0.25 (no interval: all 6 cases differ by it)" in shown


def test_an_alert_never_reads_as_if_its_figure_met_the_limit():
    """Rounded to the usual precision each of these read "90% < 90%", "50% < 50%" and
    "2.0x ... (limit 2x)": the figures get the digits that tell them from the limit."""
    before = run("base", {}, {"a": [1.0] * 200})
    current = run("now", {}, {"a": [2.04] * 200}, failed={"a": 21}, gpu={"a": 49.7})
    messages = {a.rule: a.message for a in check_regression(current, before).alerts}
    assert messages["success_rate"].startswith("success rate 89.5% < 90.0% on label-a")
    assert messages["gpu_utilisation"].startswith("mean GPU utilisation 49.7% < 50.0%")
    assert "is 2.04x the baseline's 1 s on label-a (limit 2.00x)" in messages["latency_p95"]
