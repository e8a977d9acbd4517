"""`evalflow power`: the plan for the test each comparison will run (clustered t for a
grouped suite, exact McNemar for one 0/1 score per case, paired t otherwise), checked
against statsmodels' t power and a seeded McNemar simulation; the stated default
assumption without a pilot, a pilot's spreads, and bad pilots explained, not crashed."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import TTestPower

from evaluation.compare._power_plan import plan_power
from evaluation.statistics.power import mcnemar_power
from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"
N_CASES = 36  # qa-short


ICC = 0.1  # the stated intra-group correlation of the no-pilot assumption
PER_GROUP = 4  # qa-short: 9 groups of 4 cases


def z_sum(m: int, alpha: float = 0.05, power: float = 0.8) -> float:
    return stats.norm.ppf(1 - alpha / (2 * m)) + stats.norm.ppf(power)


def power_row(out: str, metric: str) -> list[str]:
    """The cells of ``metric``'s row: test, pairs, spread typical/worst, MDD typical/worst,
    cases typical/worst, and for a grouped suite groups typical/worst. The width is
    kept: a metric's name may stand on a line of its own above its row."""
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100  # not a terminal: the leaderboard's width
    at = next(i for i, x in enumerate(lines) if x.startswith(metric))
    line = lines[at + 1] if lines[at] == f"{metric}:" else lines[at][len(metric) :]
    return re.split(r"\s{2,}", line.strip())


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def t_power(delta: float, sd: float, units: int, level: float) -> float:
    """statsmodels' one-sample t power: not our code."""
    return float(TTestPower().power(effect_size=delta / sd, nobs=units, alpha=level))


def assert_fewest_t_units(units: int, delta: float, sd: float, level: float, power=0.8):
    assert t_power(delta, sd, units, level) >= power
    assert t_power(delta, sd, units - 1, level) < power


def simulated_mcnemar_power(share: float, delta: float, n: int, level: float) -> float:
    """Seeded simulation of statsmodels' exact McNemar test: a share ``share`` of cases
    differ, A − B = δ among them; p = min(1, 2·Binom(min(b, c); b + c, ½))."""
    rng = np.random.default_rng(11)
    counts = rng.multinomial(n, [(share + delta) / 2, (share - delta) / 2, 1 - share], 3000)
    b, c = counts[:, 0], counts[:, 1]
    p = np.minimum(1, 2 * stats.binom.cdf(np.minimum(b, c), b + c, 0.5))
    for i in range(5):  # the vectorised p is statsmodels' own
        table = [[0, b[i]], [c[i], 0]]
        assert p[i] == pytest.approx(mcnemar(table, exact=True).pvalue)
    return float(np.mean(p <= level))


def ungrouped_spec(tmp_path: Path, **fields) -> Path:
    """The demo spec on qa-short with its groups removed (36 independent cases)."""
    suite = tmp_path / "flat.jsonl"
    rows = [json.loads(x) for x in (REPO / "benchmarks/suites/qa-short.jsonl").open()]
    suite.write_text("".join(json.dumps(r | {"group": None}) + "\n" for r in rows))
    sidecar = (REPO / "benchmarks/suites/qa-short.suite.yaml").read_text()
    (tmp_path / "flat.suite.yaml").write_text(sidecar.replace("qa-short", "qa-flat"))
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(yaml.safe_load(DEMO.read_text()) | {"suite": str(suite)} | fields)
    )
    return path


def test_without_a_pilot_a_grouped_suite_is_planned_for_the_clustered_t(database_url, capsys):
    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO), "--delta", "0.03")
    assert code == 0
    assert "ASSUMED, no pilot: a binary metric at p = 0.5" in out
    assert "correlation 0.5" in out
    assert f"intra-group correlation {ICC:g}" in out
    assert "12 configs, 36 cases in 9 groups (4 per group), 1 sample per case" in out
    assert "all pairs, m = 66" in out
    cells = power_row(out, "binary metric (assumed)")
    assert cells[0] == "clustered paired t"
    unit = 0.25 * (ICC + (1 - ICC) / PER_GROUP)  # Var(a group's mean difference)
    assert float(cells[2]) == pytest.approx(unit, rel=1e-3)
    level = 0.05 / 66
    # MDD at the suite's 9 groups: the t on 8 df reaches 80% there
    assert t_power(float(cells[4]), math.sqrt(unit), 9, level) == pytest.approx(0.8, abs=2e-3)
    groups = int(cells[8])
    assert_fewest_t_units(groups, 0.03, math.sqrt(unit), level)
    assert int(cells[6]) == groups * PER_GROUP
    assert groups * PER_GROUP > math.ceil(z_sum(66) ** 2 * 0.25 / 0.03**2)  # the old z answer


def test_without_a_pilot_independent_cases_get_exact_mcnemar(tmp_path, database_url, capsys):
    spec = ungrouped_spec(tmp_path)
    code, out, _ = run(capsys, "--database", database_url, "power", str(spec), "--delta", "0.1")
    assert code == 0
    assert "12 configs, 36 cases, 1 sample per case" in out
    cells = power_row(out, "binary metric (assumed)")
    assert cells[0] == "exact McNemar"
    assert float(cells[2]) == 0.25  # discordant share 2p(1 − p)(1 − ρ)
    n, level = int(cells[6]), 0.05 / 66
    assert mcnemar_power(0.25, 0.1, n, alpha=0.05, n_comparisons=66) >= 0.8
    assert simulated_mcnemar_power(0.25, 0.1, n, level) == pytest.approx(0.8, abs=0.03)
    assert cells[4] == "n/a"  # 36 cases cannot reach 80% at α/66
    assert "36 cases cannot reach 80% power with McNemar" in out


def test_a_baseline_and_other_levels_change_the_comparisons(tmp_path, database_url, capsys):
    spec = ungrouped_spec(
        tmp_path, baseline="sim-small:1b t=0 seed=42 tpl=plain", samples_per_case=3
    )
    code, out, _ = run(capsys, "--database", database_url, "power", str(spec),
                       "--delta", "0.1", "--alpha", "0.01", "--power", "0.9")  # fmt: skip
    assert code == 0
    assert "each config versus the baseline, m = 11" in out
    assert "3 samples per case" in out
    cells = power_row(out, "binary metric (assumed)")
    assert cells[0] == "paired t"  # 0/1 scores averaged over 3 samples: no McNemar
    assert_fewest_t_units(int(cells[6]), 0.1, 0.5, 0.01 / 11, power=0.9)


def test_a_grouped_pilot_plans_the_clustered_t(database_url, capsys):
    fails = [0, 0, 0, 4, 4, 0, 3, 0, 1]  # y's misses per group: differences cluster
    y = np.ones(36)
    for g, k in enumerate(fails):
        y[g * 4 : g * 4 + k] = 0
    groups = [f"g{i // 4}" for i in range(36)]
    x_, y_ = make_config("x:1b"), make_config("y:1b")
    with session_scope(make_engine(database_url)) as session:
        add_experiment(
            session,
            "grouped",
            make_suite(36, groups=groups),
            {x_: {"exact_match": [1.0] * 36}, y_: {"exact_match": list(y)}},
        )
    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO),
                       "--delta", "0.1", "--pilot", "grouped")  # fmt: skip
    assert code == 0
    cells = power_row(out, "exact_match")
    assert cells[:2] == ["clustered paired t", "1"]
    d = 1 - y
    sums = np.array([np.sum((d - d.mean())[g * 4 : g * 4 + 4]) for g in range(9)])
    se_cl = math.sqrt(np.sum(sums**2)) / 36 * math.sqrt(9 / 8)  # Miller's clustered SE
    unit = se_cl**2 * 9  # Var(a group's mean difference), the pilot's 4 per group kept
    assert float(cells[2]) == pytest.approx(unit, rel=1e-3)
    level = 0.05 / 66
    groups_needed = int(cells[8])
    assert_fewest_t_units(groups_needed, 0.1, math.sqrt(unit), level)
    assert int(cells[6]) == groups_needed * PER_GROUP
    # clustering costs cases: more than the z formula and the paired t on n − 1 df
    assert int(cells[6]) > math.ceil(z_sum(66) ** 2 * np.var(d, ddof=1) / 0.1**2)
    paired = next(n for n in range(2, 10_000) if t_power(0.1, np.std(d, ddof=1), n, level) >= 0.8)
    assert int(cells[6]) > paired


def test_a_pilots_spreads_are_used(tmp_path, database_url, capsys):
    a = np.array([1.0] * 14 + [0.0] * 6)  # x: the best on exact_match
    b = a.copy()
    b[[0, 1, 2, 15]] = 1 - b[[0, 1, 2, 15]]  # y: four cases differ
    c = np.zeros(20)  # w
    rng = np.random.default_rng(3)
    la, lb = rng.random(20) * 0.5, 0.5 + rng.random(20) * 0.5
    la[:5] = np.nan  # x cannot be scored on five cases
    x, y, w = make_config("x:1b"), make_config("y:1b"), make_config("w:1b")
    with session_scope(make_engine(database_url)) as session:
        add_experiment(
            session,
            "pilot",
            make_suite(20),
            {
                x: {"exact_match": list(a), "contains": _none(la)},
                y: {"exact_match": list(b), "contains": _none(lb)},
                w: {"exact_match": list(c), "contains": _none(lb)},
            },
        )
    spec = ungrouped_spec(tmp_path)
    code, out, _ = run(capsys, "--database", database_url, "power", str(spec),
                       "--delta", "0.05", "--pilot", "pilot")  # fmt: skip
    assert code == 0
    assert "Spreads: pilot experiment pilot (3 configs, 20 cases)" in out
    assert "pilot pilot has no usable scores on output_length" in out
    level = 0.05 / 66

    # exact_match, one 0/1 score per case: exact McNemar on the discordant shares of x
    # (the best) versus y (4 of 20) and w (14 of 20)
    cells = power_row(out, "exact_match")
    assert cells[:4] == ["exact McNemar", "2", "0.45", "0.7"]
    n = int(cells[7])
    assert mcnemar_power(0.7, 0.05, n, alpha=0.05, n_comparisons=66) >= 0.8
    assert simulated_mcnemar_power(0.7, 0.05, n, level) == pytest.approx(0.8, abs=0.03)
    assert n > math.ceil(z_sum(66) ** 2 * np.var(a - c, ddof=1) / 0.05**2)  # the old z answer

    # contains, not 0/1: the paired t. y and w (tied best) scored identically, left out
    # and said so; the pair with x uses the 15 cases x could be scored on
    cells = power_row(out, "contains")
    keep = ~np.isnan(la)
    var_d = np.var((la - lb)[keep], ddof=1)
    assert cells[:2] == ["paired t", "1"]
    assert float(cells[2]) == pytest.approx(var_d, rel=1e-3)
    assert t_power(float(cells[4]), math.sqrt(var_d), N_CASES, level) == pytest.approx(
        0.8, abs=2e-3
    )
    assert_fewest_t_units(int(cells[6]), 0.05, math.sqrt(var_d), level)
    assert "contains: 1 pair(s) scored identically on every case left out" in out


def test_a_pilot_without_usable_pairs_says_why(database_url, capsys):
    x, y = make_config("x:1b"), make_config("y:1b")
    with session_scope(make_engine(database_url)) as session:
        add_experiment(
            session,
            "flat",
            make_suite(4),
            {x: {"exact_match": [1.0, 0, 1, 0]}, y: {"exact_match": [1.0, 0, 1, 0]}},
        )
        add_experiment(
            session,
            "tiny",
            make_suite(1, name="one"),
            {x: {"contains": [1.0]}, y: {"contains": [0.0]}},
        )
    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO),
                       "--delta", "0.05", "--pilot", "flat")  # fmt: skip
    assert code == 0
    cells = power_row(out, "exact_match")
    assert cells[1:4] == ["-", "n/a", "n/a"]  # pairs, spread typical and worst
    assert "exact_match: 1 pair(s) scored identically on every case left out" in out
    assert "nan" not in out.lower()

    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO),
                       "--delta", "0.05", "--pilot", "tiny")  # fmt: skip
    assert code == 0
    assert "contains: 1 pair(s) with < 2 shared cases left out" in out


def test_bad_arguments_are_refused(database_url, capsys):
    code, _, err = run(capsys, "--database", database_url, "power", str(DEMO),
                       "--delta", "0.05", "--pilot", "nope")  # fmt: skip
    assert code == 2
    assert "error: no experiment named 'nope'" in err
    for bad in (["--delta", "-0.1"], ["--delta", "0.1", "--alpha", "1.5"]):
        with pytest.raises(SystemExit) as info:
            main(["--database", database_url, "power", str(DEMO), *bad])
        assert info.value.code == 2
    assert "expected a number > 0" in capsys.readouterr().err


def _none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def pilot_frame(d: np.ndarray, groups: list[str | None]) -> pd.DataFrame:
    """Long pilot rows: config x scores ``d`` higher than config y (0 everywhere)."""
    rows = [
        {"config": cfg, "case_id": f"c{i}", "sample_index": 0, "metric": "contains",
         "value": float(v), "group": g}
        for i, (v, g) in enumerate(zip(d, groups, strict=True))
        for cfg, v in (("x", v), ("y", 0.0))
    ]  # fmt: skip
    return pd.DataFrame(rows)


def plan(pilot: pd.DataFrame):
    kw = dict(sweep="s", n_cases=36, samples_per_case=1, n_configs=2, has_baseline=False)
    return plan_power(**kw, delta=0.1, metrics=("contains",), pilot=pilot, n_clusters=9).metrics[0]


def test_a_pilot_with_other_group_sizes_is_rebuilt_for_the_suites():
    rng = np.random.default_rng(5)
    effect = np.repeat(rng.normal(0, 0.3, 12), 2)  # 12 groups of 2 in the pilot
    d = effect + rng.normal(0, 0.5, 24)
    groups = [f"g{i // 2}" for i in range(24)]
    row = plan(pilot_frame(d, groups))
    # one-way variance components: σ² within, τ² from the clustered SE at k = 2,
    # rebuilt at the suite's 4 cases per group
    g = pd.Series(d).groupby(groups)
    sigma2 = float(((pd.Series(d) - g.transform("mean")) ** 2).sum()) / (24 - 12)
    se2 = float(((pd.Series(d - d.mean()).groupby(groups).sum()) ** 2).sum()) / 24**2 * 12 / 11
    tau2 = max(0.0, se2 * 12 - sigma2 / 2)
    assert row.test == "clustered paired t"
    assert row.typical.var_diff == pytest.approx(tau2 + sigma2 / 4)
    assert row.typical.clusters_needed is not None
    assert row.typical.cases_needed == row.typical.clusters_needed * 4


def test_an_ungrouped_pilot_for_a_grouped_suite_states_the_assumed_icc():
    d = np.random.default_rng(6).normal(0.1, 0.5, 30)
    row = plan(pilot_frame(d, [None] * 30))
    assert row.typical.var_diff == pytest.approx(np.var(d, ddof=1) * (ICC + (1 - ICC) / 4))
    assert "the pilot's cases share no groups" in row.note


def test_a_clustered_plan_fits_80_columns_and_an_mdd_beyond_the_range_says_so():
    """The newcomer's F7: `power` on 8 configs × 12 cases in 3 groups drew a table 92 wide
    at 80 columns (stacked, still 11 columns) and `MDD at n = 12: 5.867` on a 0-1
    metric. The test goes beside the metric's name; an MDD beyond the range says so."""
    from evaluation.compare._power_plan import render_power

    plan = plan_power(
        sweep="nc-real", n_cases=12, n_clusters=3, samples_per_case=1, n_configs=8,
        has_baseline=False, delta=0.1, metrics=("contains",),
    )  # fmt: skip
    text = render_power(plan, 80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, text
    at = lines.index("binary metric (assumed), clustered paired t:")
    assert re.split(r"\s{2,}", lines[at + 1].strip())[3:5] == ["> 1", "> 1"]
    flat = " ".join(text.split())
    assert "binary metric (assumed): the MDD at n = 12 (" in flat
    assert "is beyond the metric's range (differences of at most 1)" in flat
    wide = render_power(plan, 200).splitlines()  # room for every column: one line a row
    assert any(line.startswith("binary metric (assumed)  clustered paired t") for line in wide)
