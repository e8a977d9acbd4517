"""Item banks (evaluation/itembank): the 2PL fit, full-suite estimates with intervals,
the bank's versions in the database, and the estimates `show` prints."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from evaluation.itembank import (
    Bank,
    ConfigEstimate,
    calibrated_estimate,
    cases_for_width,
    current_bank,
    estimates_text,
    experiment_estimates,
    fit_2pl,
    most_informative,
    subset_mean,
)
from evaluation.itembank.schema import ItemBank
from evaluation.labels import NUM_PREDICT_KEY
from evaluation.monitor._home import recent_runs, series_points
from evaluation.report import build_report
from evaluation.series.schema import CalibratedNight, SeriesRun
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import ConfigPipeline, ConfigRow, Experiment, RunSummary
from evaluation.view.app import create_app
from flows.cli import main
from tests.support.itembank_db import build, world


def test_the_fit_orders_cases_by_difficulty_and_configs_by_ability() -> None:
    y, quality = world(12, 120)
    fit = fit_2pl(y, np.ones_like(y))
    hard = y.mean(0)
    assert np.corrcoef(fit.difficulty, -hard)[0, 1] > 0.9
    assert np.corrcoef(fit.ability, quality)[0, 1] > 0.95
    assert (fit.cov[:, 0, 0] > 0).all() and (fit.cov[:, 1, 1] > 0).all()


def test_estimates_of_held_out_configs_cover_and_beat_the_plain_mean() -> None:
    y, _ = world(44, 200, seed=3)
    fit = fit_2pl(y[:20], np.ones_like(y[:20]))
    informative = most_informative(fit, 40)  # the benchmark compares it with random cases
    assert len(informative) == 40 and informative == sorted(informative)
    rng = np.random.default_rng(0)
    covered, errors, plain = [], [], []
    for j in range(20, 44):
        chosen = rng.choice(200, 40, replace=False)
        got = calibrated_estimate(
            fit,
            {int(i): y[j, i] for i in chosen},
            ability_mean=float(fit.ability.mean()),
            ability_sd=float(fit.ability.std()),
            draws=40,
        )
        truth = y[j].mean()
        covered.append(got.low <= truth <= got.high)
        errors.append(abs(got.mean - truth))
        plain.append(abs(y[j, chosen].mean() - truth))
        assert got.low <= got.mean <= got.high and got.cases_run == 40
    assert np.mean(covered) >= 0.8
    assert np.mean(errors) < np.mean(plain)


def test_a_subset_mean_has_a_finite_population_interval() -> None:
    got = subset_mean([1.0, 0.0] * 10, 40)
    assert got.method == "subset mean" and got.low < 0.5 < got.high
    assert subset_mean([1.0, 0.0] * 20, 40).method == "full"
    assert "subset mean from 20 of 40 cases" in got.text()


def test_the_estimates_say_what_n_is() -> None:
    # Under "Full-suite ... (95% intervals)" "n=12" read as 12 observations; spelled
    # "num_predict=12" there, the block named the config unlike every other output
    # (newcomer N5): its label as `show` gives it, and a line says what n= is.
    est = ConfigEstimate("smollm2 t=0 n=12", subset_mean([1.0, 0.0] * 3, 36))
    lines = estimates_text("exact_match", [est]).splitlines()
    assert lines[1].startswith("  smollm2 t=0 n=12  ")
    assert f"  in the labels, {NUM_PREDICT_KEY}" in lines


def test_bank_is_versioned_estimates_in_show_and_falls_back_for_a_new_family(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    y = build(url, sub_models=("m99:1b", "qwen2.5:7b"))
    assert main(["--database", url, "bank", "toy"]) == 0
    out = capsys.readouterr().out
    assert "item bank toy v1 (exact_match): 12 configs (m), 60 cases" in out
    assert "held-out configs (10)" in out
    assert main(["--database", url, "bank", "toy"]) == 0  # nothing new: no new version
    assert "up to date" in capsys.readouterr().out
    assert main(["--database", url, "show", "sub"]) == 0
    out = capsys.readouterr().out
    assert "\nLeaderboard: sub (subset: 10 of 60 cases)\n" in out  # means of 10 cases
    assert "Full-suite exact_match (95% intervals):" in out
    line = next(x for x in out.splitlines() if "m99:1b" in x and "estimated" in x)
    assert line.endswith("estimated from 10 of 60 cases (item bank v1)")
    low, high = (float(v) for v in line.split("[")[1].split("]")[0].split(", "))
    assert low <= y[-2].mean() <= high
    # a new model placed on the leaderboard of the old ones the bank rests on
    placed = out.splitlines()[out.splitlines().index(line) + 1].split()
    assert " ".join(placed[2:]).startswith("of 11 among the 10 configs item bank v1 was")
    best, _, worst = placed[1].partition("–")
    truth = int((y[:10].mean(1) > y[-2].mean()).sum()) + 1  # its rank on every case
    assert int(best) <= truth <= int(worst or best)
    # a model family the bank never saw: the plain subset mean, and why
    assert "subset mean from 10 of 60 cases" in out  # under the board's short label
    assert any(x.startswith("  qwen2.5:7b  ") for x in out.splitlines())
    assert "not calibrated: model family qwen never calibrated in item bank v1" in out
    assert main(["--database", url, "show", "history"]) == 0  # every case run: no estimates
    out = capsys.readouterr().out
    assert "Full-suite" not in out and "Leaderboard: history\n" in out
    engine = make_engine(url)
    with session_scope(engine) as session:  # as `run --level calibrated` records it
        session.add(CalibratedNight(experiment="sub", case_ids=["c"] * 10, suite_cases=60))
    with session_scope(engine) as session:  # the monitor's recent runs: whose best mean
        recent = {r["name"]: r["share"] for r in recent_runs(session)}
    assert recent == {"sub": "calibrated: 10 of 60 cases", "history": ""}
    with session_scope(engine) as session:  # and the series table's points
        for experiment in session.exec(select(Experiment)).scalars():
            session.add(
                RunSummary(experiment_id=experiment.id, series="nightly", configs=1, generations=60)
            )
    with session_scope(engine) as session:
        (listed,) = series_points(session)
    assert {p["experiment"]: p["share"] for p in listed["points"]} == recent
    assert main(["--database", url, "experiments"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert " calibrated 10/60 " in listed["sub"] and "calibrated" not in listed["history"]
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(ItemBank)).scalar() == 1
        bank = current_bank(session, "toy")
    engine.dispose()
    k, width = cases_for_width(bank, 0.5)  # what `plan --level calibrated --width` says
    assert 2 <= k < 60 and width <= 0.5
    page = TestClient(create_app(make_engine(url))).get("/e/sub/summary").text
    assert "<h2>Full-suite exact_match (95% intervals)</h2>" in page
    assert "estimated from 10 of 60 cases (item bank" in page
    assert "among the 10 configs item bank v1 was calibrated on" in page  # its placement
    assert "<th>among the bank's configs</th>" in page
    assert "<h2>Leaderboard (subset: 10 of 60 cases)</h2>" in page
    assert "Verdict on exact_match (subset: 10 of 60 cases)" in page
    assert "Parameter effects on exact_match (subset: 10 of 60 cases)" in page
    # compare and the report say it too: the verdict's mean, the leaderboard, the estimates
    assert main(["--database", url, "compare", "sub"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the verdict is wrapped
    assert "subset: 10 of 60 cases); significantly worse" in out
    assert main(["--database", url, "compare", "sub", "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "## Full-suite estimates" in markdown and "sub: Full-suite exact_match" in markdown
    assert "among the 10 configs item bank v1 was calibrated on" in markdown
    with session_scope(make_engine(url)) as session:
        report = build_report(session, "sub")
    assert "Leaderboard (subset: 10 of 60 cases)" in report
    assert "subset: 10 of 60 cases); significantly worse" in report
    assert "Full-suite exact_match (95% intervals)" in report  # the section's heading
    assert "among the 10 configs item bank v1 was calibrated on" in report
    assert "not calibrated: model family qwen never calibrated" in page


def _m99(session) -> tuple[str, str]:
    """``sub``'s estimates as `show` prints them, and the line of its m99 config."""
    experiment = session.exec(select(Experiment).where(Experiment.name == "sub")).scalar_one()
    text = estimates_text(*experiment_estimates(session, experiment.id), width=1000)
    return text, next(x for x in text.splitlines() if "m99:1b" in x)


def test_estimates_use_the_leaderboard_metric_and_fall_back_for_other_content_or_pipelines(
    tmp_path, capsys
):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url)
    assert main(["--database", url, "bank", "toy"]) == 0
    capsys.readouterr()
    engine = make_engine(url)
    with session_scope(engine) as session:
        row = current_bank(session, "toy").row  # a newer bank on another metric changes nothing
        fields = row.model_dump(exclude={"id", "metric", "version"})
        session.add(ItemBank(**fields, metric="contains", version=1))
    with session_scope(engine) as session:
        text, line = _m99(session)
        assert text.startswith("Full-suite exact_match") and "(item bank v1)" in line
        # a bank that predicts held-out scores worse than case means: every estimate says so
        row = current_bank(session, "toy", "exact_match").row
        row.heldout_logloss = row.baseline_logloss + 0.1
        session.flush()
        assert (
            "(item bank v1; untrusted: predicts held-out scores worse than case" in _m99(session)[1]
        )
        row.heldout_logloss = row.baseline_logloss - 0.1
        # the experiment ran other content of the suite: the bank is not for it
        session.add(SeriesRun(experiment="sub", series="sub", suite="toy", suite_digest="x+y"))
    with session_scope(engine) as session:
        text, line = _m99(session)
        assert "subset mean from 10 of 60 cases" in line and "estimated" not in text
        assert "content differs from what item bank v1 was calibrated on" in text
        assert "(this ran x, the bank " in text  # the digests, told apart
        assert "needs 8 configs run on that content in full, then `evalflow bank toy`" in text
        session.delete(session.get(SeriesRun, "sub"))
        config = session.exec(select(ConfigRow.hash).where(ConfigRow.model == "m99:1b")).scalar()
        session.add(ConfigPipeline(config_hash=config, pipeline="rag"))
    with session_scope(engine) as session:
        text, line = _m99(session)
        assert "subset mean from 10 of 60 cases" in line and "estimated" not in text
        assert "a pipeline's cases are not exchangeable" in text
    engine.dispose()


def test_a_subset_mean_interval_stays_within_what_the_known_scores_allow() -> None:
    got = subset_mean([1.0, 1.0, 1.0, 0.0], 36)
    assert (got.low, got.high) == (3 / 36, 35 / 36)
    one = subset_mean([1.0], 36)
    assert (one.low, one.high) == (1 / 36, 1.0)


def test_a_subset_mean_interval_stays_on_its_metrics_scale() -> None:
    """chrF on 0..100 (newcomer N2: 31.596 [-5.165, 68.356] beside "never past what the
    cases run fix"): the cases not run all at 0 or all at 100 bound the mean."""
    values = [0.0, 2.0, 95.0, 1.0, 0.5, 3.0, 0.0, 99.0, 1.5, 0.0, 4.0, 2.0]
    got = subset_mean(values, 36, scale=(0.0, 100.0))
    assert got.low >= sum(values) / 36 and got.low > 0
    assert got.high <= (sum(values) + 24 * 100) / 36
    lengths = subset_mean([3.0, 0.0, 0.0, 40.0], 36, scale=(0.0, float("inf")))
    assert lengths.low >= 43 / 36  # words: never below 0, no upper end


def test_the_bank_summary_warns_when_it_predicts_worse_than_case_means() -> None:
    row = ItemBank(
        suite="toy",
        metric="exact_match",
        version=2,
        suite_digest="d",
        configs=["a"] * 8,
        families=["m"],
        cases=60,
        scores=480,
        heldout_logloss=0.70,
        baseline_logloss=0.60,
    )
    text = Bank(row, None, []).summary()  # type: ignore[arg-type]
    assert "predicts worse than each case's plain mean" in text
    assert Bank(row, None, []).untrusted  # type: ignore[arg-type]
    assert "held-out configs: not checked" in text


def test_a_placement_says_when_the_config_is_one_of_the_banks_own() -> None:
    from evaluation.itembank._bank import placement
    from evaluation.itembank._estimate import Estimate

    est = Estimate(0.7, 0.6, 0.8, 4, 36, "calibrated", bank=2)
    board = [(0.9, "a"), (0.75, "b"), (0.5, "c")]
    assert placement(est, board, 2) == (
        "rank 2–3 of 4 among the 3 configs item bank v2 was calibrated on "
        "(below a 0.900, above c 0.500)"
    )
    assert placement(est, board, 2, measured=0.75).endswith(
        "among the 3 other configs item bank v2 was calibrated on (below a 0.900, above c "
        "0.500); its own score on every case, measured: 0.750"
    )
    assert "untrusted" in Estimate(0.7, 0.6, 0.8, 4, 36, "calibrated", untrusted=True).text()


def test_show_says_when_the_suite_was_last_run_with_other_content(tmp_path, capsys) -> None:
    from evaluation.storage.models import SuiteRow

    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, n_configs=8, n_cases=12, sub_cases=())
    assert main(["--database", url, "bank", "toy"]) == 0
    engine = make_engine(url)
    with session_scope(engine) as session:  # as after a run of an edited copy
        session.get(SuiteRow, "toy").fingerprint = "feedc0de00000000"
    engine.dispose()
    capsys.readouterr()
    assert main(["--database", url, "bank", "toy", "--show"]) == 0
    out = capsys.readouterr().out
    assert "new results since: the suite was last run with other content (feedc0de" in out
    assert "`evalflow bank toy` makes a new version" in out


def test_a_subset_mean_of_few_groups_is_clustered_as_the_leaderboard() -> None:
    """Newcomer's `--limit 5`: the leaderboard gave `0.80 [0.02, 1.00]` (clustered, 2
    groups) and the full-suite block under it `0.800 [0.285, 0.972]`, as if 4 cases of
    one passage and 1 of another were 5 independent cases. Clustered alike (t on 1 df),
    it is cut only at what the known scores fix: 4/36 and 35/36."""
    values, groups = [1.0, 1.0, 1.0, 0.0, 1.0], ["apollo-11"] * 4 + ["marie-curie"]
    plain = subset_mean(values, 36)
    clustered = subset_mean(values, 36, "no item bank", groups)
    assert (plain.low, plain.high) == pytest.approx((0.285, 0.972), abs=1e-3)
    assert (clustered.low, clustered.high) == pytest.approx((4 / 36, 35 / 36))
    own = subset_mean(values, 36, groups=[None] * 5)  # every case its own group: plain
    assert (own.low, own.high) == (plain.low, plain.high)
    text = estimates_text("contains", [ConfigEstimate("smollm2 t=0", clustered)])
    assert "clustered by case group as the leaderboard's" in " ".join(text.split())
    assert max(map(len, text.splitlines())) <= 100


def test_subset_means_alone_are_not_headed_full_suite() -> None:
    """The newcomer's interrupted run (no item bank): "Full-suite contains (95%
    intervals):" over "subset mean from 33 of 36 cases" and "from 16 of 36 cases"; a
    heading says "Full-suite" only over rows an item bank estimated."""
    values = [1.0, 0.0, 1.0] * 11
    rows = [ConfigEstimate("t=0", subset_mean(values, 36)),
            ConfigEstimate("t=0.7", subset_mean(values[:16], 36))]  # fmt: skip
    text = estimates_text("contains", rows)
    assert text.splitlines()[0] == (
        "contains on each config's cases run (95% intervals; no item bank estimate):"
    )
    assert "subset mean from 33 of 36 cases" in text and "Full-suite" not in text


def test_the_bank_leaves_out_the_nights_the_watch_alarmed_on_and_runs_not_completed():
    """A newcomer's bank pooled every stored score of a config, the two nights its host
    was degraded (the series watch alarmed on both) included: "measured 0.337" where
    every normal night scored 0.417. Now the runs the watch raised an ALARM on (unless
    accepted as a baseline since) and those that did not complete are left out, the note
    says which and why, and ``all_runs`` (`bank --all-runs`) keeps them."""
    from evaluation.itembank import stored_scores
    from evaluation.itembank._left_out import LeftOut
    from evaluation.storage.models import SuiteRow
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import RunProcess, claim_experiment
    from tests.support.series_db import CHANGING, SUITE, add_nights

    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, 11, series="wt", drop_from=10, seed=1)
        content = session.get(SuiteRow, SUITE.name).fingerprint
        for run in session.exec(select(SeriesRun)).scalars():
            run.suite_digest = content  # the suite's content as last run
        get_experiment(session, names[3]).status = "failed"
        # killed (kill -9): stored 'running', its process gone, crashed as `status` says
        get_experiment(session, names[5]).status = "running"
        here = RunProcess.current()
        claim_experiment(session, names[5], RunProcess(here.pid, "gone", here.hostname))
    with session_scope(engine) as session:
        kept = stored_scores(session, SUITE.name, "exact_match")
        every = stored_scores(session, SUITE.name, "exact_match", all_runs=True)
    assert kept.left == LeftOut(alarmed=(names[10],), not_completed=(names[3], names[5]))
    assert kept.notes()[0] == (
        f"left out 1 run its series watch raised an ALARM on ({names[10]}; not accepted as "
        f"a baseline) and 2 runs not completed ({names[3]}, {names[5]}): --all-runs keeps them"
    )
    assert every.left == LeftOut() and every.notes() == []
    assert every.w.sum() == kept.w.sum() + 3 * 2 * len(SUITE.cases)  # three nights, 2 configs
    dropped = kept.configs.index(CHANGING.hash)
    assert kept.y[dropped].mean() > every.y[dropped].mean()  # the degraded night pulled it
    with session_scope(engine) as session:
        get_experiment(session, names[10]).accepted_baseline = True  # its level, accepted
    with session_scope(engine) as session:
        assert stored_scores(session, SUITE.name, "exact_match").left.alarmed == ()


def test_the_runs_a_series_alarmed_on_are_kept_and_computed_again_when_a_run_changes(
    monkeypatch,
):
    """The whole watch cost 2.5-3 s per read of a 12-night series (`show` of a calibrated
    run, `bank`); its verdict is kept with the fingerprint of its inputs: read back, it is
    the watch's own answer, and a night added or a baseline accepted computes it again."""
    import evaluation.series._verdict as kept
    from evaluation.series import series_verdict
    from evaluation.storage.baselines import accept_baseline
    from evaluation.storage.models import ViewPage
    from tests.support.series_db import add_nights

    watch = kept.watch_series

    def alarmed(session):
        return set(series_verdict(session, "wt", None).alarmed)

    def uncached(session):
        shown = watch(session, "wt")
        accepted = {p.experiment for p in shown.points if p.accepted_baseline}
        return {
            n.experiment
            for s in shown.streams
            for n in s.nights
            if n.alarm and n.experiment not in accepted
        }

    def refused(*_args, **_kwargs):
        raise AssertionError("the watch ran again")

    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        names = add_nights(session, 11, series="wt", drop_from=10, seed=1)
    with session_scope(engine) as session:
        assert alarmed(session) == uncached(session) == {names[10]}
        assert session.exec(select(func.count()).select_from(ViewPage)).scalar_one() == 1
    monkeypatch.setattr(kept, "watch_series", refused)
    with session_scope(engine) as session:
        assert alarmed(session) == {names[10]}  # read back, not watched
    monkeypatch.setattr(kept, "watch_series", watch)
    with session_scope(engine) as session:
        names += add_nights(session, 1, series="wt", drop_from=0, seed=2, first=11)
    with session_scope(engine) as session:
        assert alarmed(session) == uncached(session)
        assert names[11] in alarmed(session)
    with session_scope(engine) as session:
        accept_baseline(session, names[10])
    with session_scope(engine) as session:
        assert alarmed(session) == uncached(session)
        assert names[10] not in alarmed(session)


HEADING = "exact_match on the cases run (95% intervals for the mean of the whole suite)"


def test_a_limit_runs_means_are_not_called_full_suite_estimates(tmp_path, capsys, monkeypatch):
    """The newcomer's F13: a `--limit 3` run printed "Full-suite contains (95% intervals)"
    over "1.000 [0.375, 1.000] subset mean from 3 of 8 cases", though the cases were the
    suite's first three, not a sample of it. Newcomer F9: that block was 187 columns at
    80, each row repeating the sentence, and its intervals differed from the
    leaderboard's unexplained: it fits, says the sentence once and why they differ."""
    from evaluation.storage.runs import RunProcess, claim_experiment, record_level

    monkeypatch.setenv("COLUMNS", "80")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build(url, sub_models=("qwen2.5:7b", "gemma3-270m"))  # no bank: the plain subset mean
    with session_scope(make_engine(url)) as session:
        claim_experiment(session, "sub", RunProcess.current())
        record_level(session, "sub", "full", limit=10)
    assert main(["--database", url, "show", "sub"]) == 0
    out = capsys.readouterr().out
    assert "Full-suite" not in out
    assert f"{HEADING}:" in out
    assert max(map(len, out.splitlines())) <= 80
    words = " ".join(out.split())
    assert words.count("mean of the suite's first 10 of 60 cases, not a random sample of it") == 1
    # newcomer N13: "as for a random subset" over "not a sample: the interval is a random
    # subset's" read as a contradiction; what the intervals are is said once
    assert "random subset" not in words and "not a sample" not in words
    assert "each interval: where the mean over all the suite's cases would lie" in words
    # newcomer F12: titled "(subset: 10 of 60 cases)" ("subset" is also `--level subset`,
    # a stratified 20%), the block in spec order with full labels (each row wrapped in its
    # interval at 80 columns): the first cases, the leaderboard's order and labels
    lines = out.splitlines()
    assert "Leaderboard: sub (first 10 of 60 cases)" in lines
    ranked = [line.split()[1] for line in lines if line.startswith("#")]
    at = lines.index(f"{HEADING}:")
    assert [line.split()[0] for line in lines[at + 1 : at + 3]] == ranked
    assert ranked == ["gemma3-270m", "qwen2.5:7b"] and lines[at + 3].startswith("  each: ")
    # recheck: the verdict said "(1.000, subset: 10 of 60 cases)" under that heading
    assert main(["--database", url, "compare", "sub"]) == 0
    compared = capsys.readouterr().out
    verdict = " ".join(compared.split("\n\n")[1].split())
    assert "gemma3-270m (1.000, first 10 of 60 cases)" in verdict and "subset" not in verdict
    # newcomer N5: compare's block named them by their full labels, `show`'s short ones
    block = compared.split("sub: exact_match on the cases run")[1].splitlines()[1:3]
    assert {line.strip().split("  ")[0] for line in block} == set(ranked)
    # the view and the report titled that block "Full-suite estimates" over rows saying
    # "no full-suite interval": as `show`, the means of the cases run
    page = TestClient(create_app(make_engine(url))).get("/e/sub/summary").text
    with session_scope(make_engine(url)) as session:
        report = build_report(session, "sub")
    for shown in (page, report):
        # newcomer N12: their block named configs by full labels ('n=24' under a board
        # saying 'num_predict=24'), in spec order: as `show`, the board's names and order
        block = shown.split('id="estimates"')[1].split("</table>")[0]
        assert re.findall(r"<tr><td>([^<]*)</td>", block) == ranked
        # with no item bank nothing is placed among its configs: no empty column for it
        assert "among the bank" not in block and "<td></td>" not in block
        assert "Full-suite" not in shown
        # the Pareto front's cost as the leaderboard names it (was "against latency_p95_s")
        assert "against p95 latency (s)" in shown and "latency_p95_s" not in shown


def test_a_config_run_on_every_case_reads_as_measured_not_estimated(tmp_path, capsys):
    """Newcomers' C4: beside a config a race stopped early, those that ran the whole suite
    read "0.694 [0.694, 0.694] estimated from 36 of 36 cases (item bank v1)": an item bank
    estimate of nothing, with a zero-width interval. They read as what they are: the
    suite's own score, measured, with no interval, said once why."""
    from evaluation.storage.db import session_scope as scope
    from tests.support.results_db import MISSING, add_experiment, make_config, make_suite

    url = f"sqlite:///{tmp_path / 'r.db'}"
    y = build(url)
    assert main(["--database", url, "bank", "toy"]) == 0
    capsys.readouterr()
    engine = make_engine(url)
    with scope(engine) as session:  # m0 ran every case, m99 ten of them
        part = [y[-1, i] if i % 6 == 0 else MISSING for i in range(60)]
        runs = {make_config("m0:1b"): list(y[0]), make_config("m99:1b"): part}
        scores = {config: {"exact_match": values} for config, values in runs.items()}
        add_experiment(session, "mixed", make_suite(60), scores)
    engine.dispose()
    assert main(["--database", url, "show", "mixed"]) == 0
    out = capsys.readouterr().out
    (full,) = [x for x in out.splitlines() if x.startswith("  m0:1b ")]
    assert (
        full.split(maxsplit=1)[1]
        == f"{y[0].mean():.3f} on all 60 cases: measured, nothing estimated"
    )
    assert "estimated from 60 of 60" not in out and "[" not in full
    (part_line,) = [x for x in out.splitlines() if x.startswith("  m99:1b ")]
    assert part_line.endswith("estimated from 10 of 60 cases (item bank v1)")
    said = " ".join(out.split())
    assert "a config run on every case has the suite's own score, measured: no interval" in said
