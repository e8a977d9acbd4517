"""The comparison stage end to end on the embedded Prefect server: the simulated demo
sweep, then the `compare` flow and the `evalflow compare` / `power` commands on it."""

from __future__ import annotations

import asyncio
import math
import re

import numpy as np
import pytest
import yaml
from scipy import stats
from sqlmodel import Session
from statsmodels.stats.power import TTestPower

from evaluation.compare import current_comparison
from evaluation.storage.comparisons import comparisons_frame
from evaluation.storage.db import make_engine
from evaluation.storage.repository import get_experiment, scores_frame
from flows.cli import main
from flows.compare import compare
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.flows.test_evaluate import artifact_data

pytestmark = pytest.mark.usefixtures("prefect_harness")

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"
LARGE = "sim-large:8b t=0 n=128 seed=42 tpl=plain"


@pytest.fixture(scope="module")
def database(prefect_harness, tmp_path_factory) -> str:
    """The demo sweep (12 configs) and a 2-config "nightly" run of the same suite."""
    folder = tmp_path_factory.mktemp("compare")
    url = f"sqlite:///{folder / 'results.db'}"
    asyncio.run(evaluate(spec_path=str(DEMO), database=url))
    nightly = yaml.safe_load(DEMO.read_text()) | {
        "name": "nightly",
        "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
        "models": ["sim-large:8b", "sim-small:1b"],
        "grid": {"temperature": [0.0], "num_predict": [128], "seed": [42]},
        "templates": {"plain": "{input}"},
    }
    spec = folder / "nightly.yaml"
    spec.write_text(yaml.safe_dump(nightly))
    asyncio.run(evaluate(spec_path=str(spec), database=url))
    return url


def stored(url: str, run_label: str):
    with Session(make_engine(url)) as session:
        return comparisons_frame(session, run_label)


def test_cli_compare_reads_the_sweeps_comparison_and_prints_what_the_flow_prints(database, capsys):
    """Right after a sweep, `compare` reads what the sweep's compare stage stored; for
    every selection it prints what the `compare` flow (--publish) prints, computed in
    process (each selection after the first is new) or read back."""
    with Session(make_engine(database)) as session:
        for name in ("demo-simulated", "nightly"):
            assert not current_comparison(session, [(name, None)]).computed
    selections = [
        ["nightly"],
        ["demo-simulated", "--all", "--adjust", "fdr_bh"],
        ["nightly", "--markdown", "--baseline", "sim-small:1b t=0 seed=42 tpl=plain"],
        ["nightly", "demo-simulated", "--config", LARGE, "--baseline", "demo-simulated"],
        ["demo-simulated", "nightly", "--config", f"nightly:{LARGE}", "--markdown"],
    ]
    for args in selections:
        printed = []
        for extra in ([], ["--publish"], []):  # computed here (or read), the flow, read
            assert main(["--database", database, "-q", "compare", *args, *extra]) == 0
            out, err = capsys.readouterr()
            printed.append(out)
            # --publish says where the artifacts went (newcomer N4: not a word), on stderr
            assert ("published Prefect artifacts evalflow-" in err) == bool(extra), err
            if extra:
                assert "-comparison-table to the Prefect API at http://127.0.0.1:" in err
        assert printed[0] == printed[1] == printed[2], args
        assert printed[0].count("Comparison: ") == 1


def test_published_words_say_where_a_temporary_apis_artifacts_are_kept():
    """Without PREFECT_API_URL the artifacts go through the command's own server, which
    stops with it; its SQLite database keeps them (docs/running-for-real.md)."""
    from prefect.settings import get_current_settings

    from flows.cli.stats import published_words

    keys = ["evalflow-x-comparison", "evalflow-x-comparison-table"]
    words = published_words(keys, temporary=True)
    assert words.startswith(
        "published Prefect artifacts evalflow-x-comparison, evalflow-x-comparison-table "
        "through this command's temporary Prefect API (PREFECT_API_URL not set), which "
        "stops with it: they are kept in /"
    )
    url = get_current_settings().server.database.connection_url.get_secret_value()
    assert f"{url.split(':///')[1]}, where `prefect server start` shows them" in words


def test_compare_flow_stores_rows_and_publishes_a_simulated_report(database):
    summary = compare(experiments=["demo-simulated"], database=database)

    assert summary["run_label"] == "demo-simulated"
    assert summary["simulated"] is True
    rows = stored(database, "demo-simulated")
    metrics = ["exact_match", "contains", "output_length", "latency_s"]
    assert list(dict.fromkeys(rows["metric"])) == metrics
    assert len(rows) == summary["comparisons_stored"] == len(metrics) * 66  # 12 configs

    markdown = asyncio.run(artifact_data(summary["artifacts"]["markdown"]))
    assert summary["artifacts"]["markdown"] == "evalflow-demo-simulated-comparison"
    assert markdown.startswith("**SIMULATED")
    assert "Pareto front: exact_match vs p95 latency (s)" in markdown
    assert "### Parameter effects" in markdown
    table = asyncio.run(artifact_data("evalflow-demo-simulated-comparison-table"))
    assert "p_adjusted" in table

    # winner or tie, consistent with the stored adjusted comparisons
    for metric, verdict in summary["verdicts"].items():
        part = rows[rows["metric"] == metric]
        configs = set(part["config_a"]) | set(part["config_b"])
        if metric == "output_length":  # descriptive: no better direction, no verdict
            assert verdict["verdict"].startswith("no verdict on output_length: descriptive")
            continue
        assert set(verdict["tied"]) | set(verdict["worse"]) == configs
        tied = verdict["tied"]
        for worse in verdict["worse"]:  # significantly worse than a config at the top
            a, b = part["config_a"], part["config_b"]
            against = part[((a == worse) & b.isin(tied)) | ((b == worse) & a.isin(tied))]
            assert (against["p_adjusted"] < 0.05).any()
        if verdict["winner"]:
            assert verdict["tied"] == [verdict["winner"]] and len(verdict["worse"]) == 11
        else:
            assert f"{len(verdict['tied'])} of 12 within noise of the best, " in verdict["verdict"]
    # the fastest model wins or ties on latency; the slowest is never at the top
    assert all(c.startswith("sim-small") for c in summary["verdicts"]["latency_s"]["tied"])


def test_compare_flow_across_experiments_pairs_the_same_config(database):
    summary = compare(
        experiments=["nightly", "demo-simulated"],
        configs=[LARGE],
        baseline="demo-simulated",
        database=database,
    )
    pair = f"nightly:{LARGE}-vs-demo-simulated:{LARGE}"
    run_label = f"{pair}, baseline demo-simulated:{LARGE}"  # stored beside the pair's own
    assert summary["run_label"] == run_label
    rows = stored(database, run_label)
    assert set(rows["config_a"]) == {f"nightly:{LARGE}"}
    assert set(rows["config_b"]) == {f"demo-simulated:{LARGE}"}
    # the simulated backend is deterministic: the same config gives the same outputs
    assert (rows["n_used"] == 36).all() and (rows["diff"] == 0).all()
    assert rows["note"].str.contains("scored identically on every shared case").all()
    for metric, verdict in summary["verdicts"].items():
        tied = 0 if metric == "output_length" else 2  # descriptive: no verdict at all
        assert verdict["winner"] is None and len(verdict["tied"]) == tied
    assert summary["artifacts"]["markdown"].startswith("evalflow-nightly-sim-large-8b-t-0")


def test_cli_compare_prints_the_report_and_refuses_bad_input(database, capsys):
    code = main(["--database", database, "compare", "nightly", "--adjust", "fdr_bh", "--markdown"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("**SIMULATED")
    assert "# Comparison: nightly" in out and "Benjamini–Hochberg-adjusted" in out

    code = main(["--database", database, "compare", "nightly", "demo-simulated",
                 "--config", "no-such-config"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "error: experiments nightly, demo-simulated have no config 'no-such-config'" in err

    code = main(["--database", database, "compare", "nope"])
    assert code == 2
    assert "known experiments (newest first): nightly, demo-simulated" in capsys.readouterr().err


def test_cli_compare_prints_a_table_that_fits_100_columns(database, capsys):
    assert main(["--database", database, "compare", "demo-simulated"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100 and len(lines) < 80
    assert lines[0].startswith("*** SIMULATED") and lines[1] == "Comparison: demo-simulated"
    assert "exact_match:" in lines and "latency_s:" in lines
    assert "**Verdict" not in out and "|---" not in out  # a table, not markdown
    assert "58 more pairs (--all lists every pair)" in out  # 66 pairs, 8 shown per metric
    assert "seed=42" not in out  # short labels
    assert not re.search(r"\d\.\d{5,}", out)  # no 0.7777777777777778
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["A", "B"])
    assert lines[head + 1].split()[-1] == "*"  # most significant first
    table = asyncio.run(artifact_data("evalflow-demo-simulated-comparison-table"))
    assert not re.search(r"\d\.\d{7,}", str(table))  # the artifact is rounded too

    assert main(["--database", database, "compare", "demo-simulated", "--all"]) == 0
    everything = capsys.readouterr().out
    assert "more pairs" not in everything and len(everything.splitlines()) > 4 * 66


def test_cli_power_uses_the_stored_run_of_the_spec_as_pilot(database, capsys):
    assert main(["--database", database, "power", str(DEMO), "--delta", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "Spreads: pilot experiment demo-simulated (12 configs, 36 cases)" in out
    assert "all pairs, m = 66" in out

    # reference: exact_match, each config versus the best; qa-short's 9 groups of 4 make
    # it the clustered t, planned on the variance of a group's mean difference (numpy)
    with Session(make_engine(database)) as session:
        frame = scores_frame(session, get_experiment(session, "demo-simulated").id)
    rows = frame[frame["metric"] == "exact_match"]
    wide = rows.pivot_table(index="case_id", columns="config", values="value")
    groups = rows.drop_duplicates("case_id").set_index("case_id")["group"].reindex(wide.index)
    best = wide.mean().idxmax()
    spreads, variances = [], []
    for c in (c for c in wide if c != best):
        d = wide[best] - wide[c]
        if d.nunique() == 1:
            continue  # scored identically: left out
        sums = (d - d.mean()).groupby(groups).sum()
        unit = float((sums**2).sum()) / 36**2 * 9 / 8 * 9  # SE_cl² · C
        within = float(((d - d.groupby(groups).transform("mean")) ** 2).sum()) / (36 - 9)
        spreads.append(max(unit, within / 4))  # τ² + σ²/k, τ² floored at 0
        variances.append(float(np.var(d, ddof=1)))
    spread = float(np.median(spreads))
    from tests.flows.cli.test_stats import power_row  # the table may stack a metric's name

    cells = ["exact_match", *power_row(out, "exact_match")]
    assert cells[1] == "clustered paired t"
    assert float(cells[3]) == pytest.approx(spread, rel=1e-3)
    level, sd = 0.05 / 66, math.sqrt(spread)
    power = TTestPower().power
    assert power(effect_size=float(cells[5]) / sd, nobs=9, alpha=level) == pytest.approx(
        0.8, abs=2e-3
    )  # MDD at the suite's 9 groups
    needed = int(cells[9])  # groups for δ: the fewest at which the t reaches 80%
    assert power(effect_size=0.05 / sd, nobs=needed, alpha=level) >= 0.8
    assert power(effect_size=0.05 / sd, nobs=needed - 1, alpha=level) < 0.8
    assert int(cells[7]) == needed * 4
    z = stats.norm.ppf(1 - level / 2) + stats.norm.ppf(0.8)
    assert int(cells[7]) > math.ceil(z**2 * np.median(variances) / 0.05**2)  # the old z answer


def test_cli_artifact_and_report_give_one_readable_verdict(database, capsys):
    import html

    from evaluation.compare._leaderboard import ranked_table
    from evaluation.report import gather, render_report

    summary = compare(experiments=["demo-simulated"], database=database)
    verdict = summary["verdicts"]["exact_match"]["verdict"]
    markdown = asyncio.run(artifact_data(summary["artifacts"]["markdown"]))
    assert f"**Verdict:** {verdict}" in markdown
    assert main(["--database", database, "compare", "demo-simulated", "--markdown"]) == 0
    assert f"**Verdict:** {verdict}" in capsys.readouterr().out
    with Session(make_engine(database)) as session:
        data = gather(session, "demo-simulated")
    assert data.comparison.verdict == verdict
    assert html.escape(verdict) in render_report(data)
    # the same configs tied, and "#1" is the same config in the verdict and the report
    hashes = dict(zip(data.board.table["label"], data.board.table["config"], strict=True))
    assert {hashes[c] for c in summary["verdicts"]["exact_match"]["tied"]} == set(
        data.comparison.tied_at_top
    )
    assert data.names[data.comparison.ranking[0][0]] == "#1"
    # one ranking: the terminal leaderboard lists the configs (ties included: two share
    # the best mean here) in the report's order
    assert tuple(ranked_table(data.board)["config"]) == data.order
    # readable: configs by their distinguishing label, no hashes, no 600-character lines
    assert len(verdict) < 240 and "seed=42" not in verdict and "#" not in verdict
    assert not any(h[:8] in verdict for h in hashes.values())
