"""`evalflow power`: the numbers against scipy's normal quantiles, the stated default
assumption without a pilot, a pilot's variances, and bad pilots explained, not crashed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from scipy import stats

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.conftest import REPO
from tests.support.results_db import add_experiment, make_config, make_suite

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"
N_CASES = 36  # qa-short


def z_sum(m: int, alpha: float = 0.05, power: float = 0.8) -> float:
    return stats.norm.ppf(1 - alpha / (2 * m)) + stats.norm.ppf(power)


def power_row(out: str, metric: str) -> list[str]:
    """The cells of ``metric``'s row after its name: pairs, Var(d) typical/worst, MDD
    typical/worst, cases typical/worst."""
    line = next(x for x in out.splitlines() if x.startswith(metric))
    return line[len(metric) :].split()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_without_a_pilot_the_assumption_is_stated(database_url, capsys):
    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO), "--delta", "0.03")
    assert code == 0
    assert "ASSUMED, no pilot: a binary metric at p = 0.5" in out
    assert "correlation 0.5" in out
    assert "12 configs, 36 cases, 1 sample per case" in out
    assert "all pairs, m = 66" in out
    cells = power_row(out, "binary metric (assumed)")
    z = z_sum(66)
    assert float(cells[1]) == 0.25  # p(1 − p)·2·(1 − ρ)
    assert float(cells[3]) == pytest.approx(z * math.sqrt(0.25 / N_CASES), rel=1e-3)
    assert int(cells[5]) == math.ceil(z**2 * 0.25 / 0.03**2)
    assert "cases share groups" in out  # qa-short is clustered: the formulas say so


def test_a_baseline_and_other_levels_change_the_comparisons(tmp_path, database_url, capsys):
    spec = yaml.safe_load(DEMO.read_text()) | {
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "baseline": "sim-small:1b t=0 seed=42 tpl=plain",
        "samples_per_case": 3,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, out, _ = run(capsys, "--database", database_url, "power", str(path),
                       "--delta", "0.1", "--alpha", "0.01", "--power", "0.9")  # fmt: skip
    assert code == 0
    assert "each config versus the baseline, m = 11" in out
    assert "3 samples per case" in out
    cells = power_row(out, "binary metric (assumed)")
    assert int(cells[5]) == math.ceil(z_sum(11, 0.01, 0.9) ** 2 * 0.25 / 0.1**2)


def test_a_pilots_variances_are_used(database_url, capsys):
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
    code, out, _ = run(capsys, "--database", database_url, "power", str(DEMO),
                       "--delta", "0.05", "--pilot", "pilot")  # fmt: skip
    assert code == 0
    assert "Variances: pilot experiment pilot (3 configs, 20 cases)" in out
    assert "pilot pilot has no usable scores on output_length" in out
    z = z_sum(66)

    # exact_match: x (the best) versus y and w
    variances = sorted([np.var(a - b, ddof=1), np.var(a - c, ddof=1)])
    cells = power_row(out, "exact_match")
    assert cells[0] == "2"
    assert float(cells[1]) == pytest.approx(np.median(variances), rel=1e-3)
    assert float(cells[2]) == pytest.approx(variances[-1], rel=1e-3)
    assert float(cells[4]) == pytest.approx(z * math.sqrt(variances[-1] / N_CASES), rel=1e-3)
    assert int(cells[6]) == math.ceil(z**2 * variances[-1] / 0.05**2)

    # contains: y and w (tied best) scored identically, left out and said so; the pair
    # with x uses the 15 cases x could be scored on
    cells = power_row(out, "contains")
    keep = ~np.isnan(la)
    assert cells[0] == "1"
    assert float(cells[1]) == pytest.approx(np.var((la - lb)[keep], ddof=1), rel=1e-3)
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
    assert cells[:3] == ["-", "undefined", "undefined"]  # pairs, Var(d) typical and worst
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
    assert "error: no experiment 'nope'" in err
    for bad in (["--delta", "-0.1"], ["--delta", "0.1", "--alpha", "1.5"]):
        with pytest.raises(SystemExit) as info:
            main(["--database", database_url, "power", str(DEMO), *bad])
        assert info.value.code == 2
    assert "must be" in capsys.readouterr().err


def _none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]
