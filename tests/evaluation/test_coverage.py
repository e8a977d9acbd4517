"""How much of its suite an experiment ran, said per config: an interrupted run leaves
its configs on different numbers of cases, and a heading counting the cases of all of
them together ("10 of 36") names a number no config's means rest on."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import delete, select, update
from sqlmodel import Session

from evaluation.compare._leaderboard import aggregate_rows, load_leaderboard
from evaluation.storage.coverage import Coverage, experiment_coverage, short_configs
from evaluation.storage.models import CaseRow, Experiment, ExperimentRun, Generation, Score
from tests.support.review_db import build_review_db


def _drop(session: Session, config: str, case_ids: list[str]) -> None:
    uids = select(CaseRow.uid).where(CaseRow.case_id.in_(case_ids))
    ids = select(Generation.id).where(
        Generation.config_hash == config, Generation.case_uid.in_(uids)
    )
    session.exec(delete(Score).where(Score.generation_id.in_(ids)))
    session.exec(
        delete(Generation).where(Generation.config_hash == config, Generation.case_uid.in_(uids))
    )


def test_configs_on_different_cases_are_counted_per_config(tmp_path):
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    a, b = (c.hash for c in db.configs)
    with Session(db.engine) as session:
        _drop(session, a, ["c06", "c07", "c08", "c09"])  # a ran 6 cases, b 9: 10 together
        _drop(session, b, ["c00"])
        session.commit()
        coverage = experiment_coverage(session, session.get(Experiment, db.experiment_id))
        title = load_leaderboard(session, db.experiment).title
    assert coverage == Coverage(fewest=6, most=9, total=10)
    assert title == f"Leaderboard: {db.experiment} (subset: 6 to 9 of 10 cases per config)"


def test_a_full_level_run_that_did_not_finish_says_cut_short_not_subset(tmp_path):
    # recheck G6: a full run whose host died at 4 of 12 cases was titled "(subset: 4 of 12
    # cases)", the words of `--level subset` (a stratified 20%) it did not run
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    a, b = (c.hash for c in db.configs)
    with Session(db.engine) as session:
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level="full"))
        for config in (a, b):
            _drop(session, config, ["c06", "c07", "c08", "c09"])
        session.commit()
        title = load_leaderboard(session, db.experiment).title
        _drop(session, b, ["c05"])
        session.commit()
        apart = experiment_coverage(session, session.get(Experiment, db.experiment_id))
    assert title == f"Leaderboard: {db.experiment} (6 of 10 cases: cut short)"
    assert apart.words() == "5 to 6 of 10 cases per config: cut short"
    assert apart.how == "cut short"  # a verdict's figure: "(0.833, 6 of 10 cases: cut short)"


def test_a_race_that_ended_says_it_stopped_configs_early_not_cut_short(tmp_path):
    # newcomers' C7: a completed race (exit 0, "Race over") was headed "(20 to 36 of 36
    # cases per config: cut short)", the words of a run that did not finish; a race
    # interrupted (its status not completed) is cut short still
    from evaluation.storage.models import RaceRoundRow

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    a, _ = (c.hash for c in db.configs)
    with Session(db.engine) as session:
        experiment = session.get(Experiment, db.experiment_id)
        experiment.status = "completed"
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level="full"))
        session.add(
            RaceRoundRow(
                experiment_id=db.experiment_id,
                round_index=0,
                n_cases=6,
                leader=a,
                spent=16,
                full_grid=20,
            )
        )
        _drop(session, a, ["c06", "c07", "c08", "c09"])
        session.commit()
        board = load_leaderboard(session, db.experiment)
        raced = experiment_coverage(session, experiment)
        experiment.status = "interrupted"
        session.commit()
        interrupted = experiment_coverage(session, experiment)
    assert board.title == (
        f"Leaderboard: {db.experiment} (6 to 10 of 10 cases per config: stopped early by the race)"
    )
    assert (
        raced.how == "race"
    )  # a verdict's figure: "(0.833, 6 of 10 cases: stopped early by the race)"
    assert interrupted.words() == "6 to 10 of 10 cases per config: cut short"


def test_a_run_of_every_case_its_spec_names_is_not_cut_short(tmp_path):
    # recheck: `run next.yaml` (`cases:` naming 12 of 36, all run) was titled "(12 of 36
    # cases: cut short)"; a `--limit` run of such a spec keeps its "first" words
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:
        experiment = session.get(Experiment, db.experiment_id)
        experiment.spec = {**experiment.spec, "cases": ["c00", "c01", "c02", "c03", "c04", "c05"]}
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level="full"))
        for config in (c.hash for c in db.configs):
            _drop(session, config, ["c06", "c07", "c08", "c09"])
        session.commit()
        board = load_leaderboard(session, db.experiment)
        named = experiment_coverage(session, experiment)
        _drop(session, db.configs[0].hash, ["c05"])  # one named case not run: cut short
        session.commit()
        short = experiment_coverage(session, experiment)
        session.exec(update(ExperimentRun).values(level="full, limit 5"))
        limited = experiment_coverage(session, experiment)
    assert board.title == f"Leaderboard: {db.experiment} (6 named cases of 10)"
    assert named.how == "named"  # a verdict's figure: "(0.833, 6 named cases of 10)"
    assert short.words() == "5 to 6 of 10 cases per config: cut short"
    # recheck NEW-3: a `--limit 3` run of such a spec ran suite cases 9-11, "first 3 of 36
    # cases": they are the first of the spec's named cases
    assert limited.words() == (
        "first 5 to 6 of the spec's 6 named cases per config, in suite order"
    )


def _named_spec_run(tmp_path, level: str, ran: list[str], scored: int):
    """An experiment whose spec names 6 of the suite's 10 cases, its last run at
    ``level``, each config having generated the named cases ``ran`` and scored the first
    ``scored`` of them; its comparison as `evalflow compare` computes and stores it, and
    as it reads it back."""
    from evaluation.compare import current_comparison

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    named = ["c02", "c03", "c05", "c06", "c08", "c09"]
    with Session(db.engine, expire_on_commit=False) as session:
        experiment = session.get(Experiment, db.experiment_id)
        experiment.spec = {**experiment.spec, "cases": named}
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level=level))
        for config in (c.hash for c in db.configs):
            _drop(session, config, [f"c{i:02}" for i in range(10) if f"c{i:02}" not in ran])
        uids = select(CaseRow.uid).where(CaseRow.case_id.in_(ran[scored:]))
        unscored = select(Generation.id).where(Generation.case_uid.in_(uids))
        session.exec(delete(Score).where(Score.generation_id.in_(unscored)))
        session.commit()
        computed = current_comparison(session, [(db.experiment, None)])
        read = current_comparison(session, [(db.experiment, None)])
    assert computed.computed and not read.computed
    return computed.verdicts["exact_match"]["verdict"], read.verdicts["exact_match"]["verdict"]


def test_a_stored_verdict_on_the_first_of_a_specs_named_cases_says_so(tmp_path):
    """5d96457 left it: a `--limit 3` run of a spec naming 28 cases said "first 3 of the
    spec's 28 named cases, in suite order" in its heading, and "first 3 of 36 cases" in
    its stored comparison's verdict (compare, the report). Both read the spec now."""
    computed, read = _named_spec_run(tmp_path, "full, limit 3", ["c02", "c03", "c05"], 3)
    assert "first 3 of the spec's 6 named cases, in suite order)" in computed, computed
    assert read == computed


def test_a_verdict_on_part_of_the_named_cases_a_resume_generated_says_what_it_rests_on(
    tmp_path,
):
    """A `--limit 3` run resumed in full, stopped while it scored: every named case
    generated ("named"), 3 of them scored, which the verdict's means rest on. It said
    "3 named cases of 10" (the generated cases' words on the scored cases' count)."""
    computed, _ = _named_spec_run(tmp_path, "full", ["c02", "c03", "c05", "c06", "c08", "c09"], 3)
    assert "3 of the spec's 6 named cases)" in computed, computed
    assert "named cases of 10" not in computed


def test_a_first_cases_estimate_of_a_spec_that_names_its_cases_says_so():
    """Recheck NEW-3: "mean of the suite's first 3 of 36 cases" of suite cases 9-11."""
    from evaluation.itembank._estimate import Estimate

    est = Estimate(0.5, 0.1, 0.9, 3, 36, "subset mean", first_cases=True, of_named=28)
    assert est.text().endswith(
        "mean of the first 3 of the spec's 28 named cases (in suite order) of the suite's 36,"
        " not a random sample of it"
    )
    assert "the suite's first 3 of 36" in replace(est, of_named=0).text()


def test_one_count_where_every_config_ran_the_same_cases():
    assert Coverage(8, 8, 36).words() == "subset: 8 of 36 cases"
    assert Coverage(36, 36, 36).words() == ""  # the whole suite: nothing to say
    assert Coverage(6, 36, 36).words() == "subset: 6 to 36 of 36 cases per config"
    # a `--limit 10` run interrupted part way: its verdicts said "first 8 of 36 cases"
    # (``how``) under a heading of "subset: 6 to 9 ..."; both say "first" now
    assert Coverage(6, 9, 36, first=True).words() == "first 6 to 9 of 36 cases per config"


def test_failed_generations_are_no_case_the_means_rest_on(tmp_path):
    """A run whose server died mid-run stored the cases it never answered as failed
    generations: counted, the title read "Leaderboard: real-smol" (36 of 36) over
    entries that said "subset mean from 33 of 36 cases"."""
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    a, _ = (c.hash for c in db.configs)
    with Session(db.engine) as session:
        uids = select(CaseRow.uid).where(CaseRow.case_id.in_(["c07", "c08", "c09"]))
        session.exec(
            update(Generation)
            .where(Generation.config_hash == a, Generation.case_uid.in_(uids))
            .values(status="failed", output=None, error="never answered")
        )
        session.commit()
        coverage = experiment_coverage(session, session.get(Experiment, db.experiment_id))
        title = load_leaderboard(session, db.experiment).title
    assert coverage == Coverage(fewest=7, most=10, total=10)
    assert (coverage.failed, coverage.ran) == ((0, 3), (10, 10))
    assert title == (
        f"Leaderboard: {db.experiment} (0 to 3 of 10 cases failed per config: figures over "
        "the 7 to 10 scored)"
    )


FAILED_WORDS = "first 6 of 10 cases; 2 failed: figures over the 4 scored"


def _limit_6_with_2_failed(session: Session, db) -> None:
    """``db``'s experiment as a `--limit 6` run that ended with cases c01 and c04 failed
    (every generation timed out) for every config: ``FAILED_WORDS``."""
    session.add(
        ExperimentRun(
            experiment=db.experiment, token="t", pid=1, level="full, limit 6", status="completed"
        )
    )
    for config in (c.hash for c in db.configs):
        _drop(session, config, ["c06", "c07", "c08", "c09"])
    uids = select(CaseRow.uid).where(CaseRow.case_id.in_(["c01", "c04"]))
    failed = select(Generation.id).where(Generation.case_uid.in_(uids))
    session.exec(delete(Score).where(Score.generation_id.in_(failed)))
    session.exec(
        update(Generation)
        .where(Generation.case_uid.in_(uids))
        .values(status="failed", output=None, error="timed out after 1 s")
    )
    session.get(Experiment, db.experiment_id).status = "completed"
    session.commit()


def test_a_run_with_failed_cases_counts_them_run_and_says_the_figures_rest_on_the_rest(
    tmp_path,
):
    """Newcomer F6: a `--limit 6` run whose 2 requests timed out was headed "first 4 of
    36 cases" (6 were run) over a quality mean of the 4 scored (0.750, where every
    healthy night read 0.667): failures read as quality up. show, the report, the view's
    summary and the monitor's run page say it alike (one source: Coverage.words)."""
    from fastapi.testclient import TestClient

    from evaluation.report.data import gather
    from evaluation.report.html import render_report
    from evaluation.view.app import create_app
    from evaluation.view.stored import summary_page

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:
        _limit_6_with_2_failed(session, db)
        board = load_leaderboard(session, db.experiment)
        summary = summary_page(session, db.experiment)
        report = render_report(gather(session, db.experiment))
    words = FAILED_WORDS
    assert board.title == f"Leaderboard: {db.experiment} ({words})"
    assert summary.coverage == words
    assert f"Leaderboard ({words})" in report
    page = TestClient(create_app(db.engine)).get(f"/e/{db.experiment}/live")
    assert f"<h3>Leaderboard ({words})</h3>" in page.text


def test_a_verdict_on_a_run_with_failed_cases_says_them_as_its_heading_does(tmp_path):
    """a9437646 left it: the heading of a `--limit 6` run with 2 cases failed said "first
    6 of 10 cases; 2 failed: figures over the 4 scored", its comparison's verdicts (compare,
    the stored comparison the run's log and the report read) "first 4 of 10 cases"."""
    from evaluation.compare import current_comparison

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine, expire_on_commit=False) as session:
        _limit_6_with_2_failed(session, db)
        computed = current_comparison(session, [(db.experiment, None)])
        read = current_comparison(session, [(db.experiment, None)])
    assert computed.computed and not read.computed
    verdict = computed.verdicts["exact_match"]["verdict"]
    assert f"{FAILED_WORDS})" in verdict, verdict
    assert "first 4 of 10" not in verdict
    assert read.verdicts["exact_match"]["verdict"] == verdict


def _could_not_score(session: Session, case_id: str, metric: str) -> None:
    """Case ``case_id``'s scores on ``metric`` as a scorer that could not make one left
    them (None), its generations ok."""
    uid = select(CaseRow.uid).where(CaseRow.case_id == case_id)
    generations = select(Generation.id).where(Generation.case_uid.in_(uid))
    session.exec(
        update(Score)
        .where(Score.generation_id.in_(generations), Score.metric == metric)
        .values(value=None)
    )
    session.commit()


def test_a_verdict_counts_the_cases_run_as_the_heading_and_says_those_not_scored(tmp_path):
    """mon item 3: a case run whose score could not be made (None) made the verdict's
    figure count the cases run one lower than the heading ("first 5 of 10 cases; 2
    failed" under "first 6 of 10 cases; 2 failed"): the verdict took its cases run as
    those scored plus those failed. It now takes them from the heading's own count
    (``storage.coverage``) and says the difference."""
    from evaluation.compare import current_comparison

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine, expire_on_commit=False) as session:
        _limit_6_with_2_failed(session, db)
        _could_not_score(session, "c02", "exact_match")
        title = load_leaderboard(session, db.experiment).title
        verdicts = current_comparison(session, [(db.experiment, None)]).verdicts
    assert title == f"Leaderboard: {db.experiment} ({FAILED_WORDS})"
    exact = verdicts["exact_match"]["verdict"]
    assert "first 6 of 10 cases; 2 failed, 1 not scored: figures over the 3 scored" in exact
    assert "first 5 of 10" not in exact
    assert f"{FAILED_WORDS})" in verdicts["contains"]["verdict"]  # every case scored there


def test_a_whole_suite_run_with_a_case_not_scored_is_no_subset(tmp_path):
    # its verdict said "subset: 9 of 10 cases" of a run of the whole suite
    from evaluation.compare import current_comparison

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine, expire_on_commit=False) as session:
        session.get(Experiment, db.experiment_id).status = "completed"
        _could_not_score(session, "c02", "exact_match")
        verdicts = current_comparison(session, [(db.experiment, None)]).verdicts
    exact = verdicts["exact_match"]["verdict"]
    assert "1 of 10 cases not scored: figures over the 9 scored" in exact, exact
    assert "subset" not in exact


def test_generations_stored_after_the_scores_are_not_counted_in_the_heading(tmp_path):
    # newcomer N9: after an interrupted resume `status` headed the board "12 to 36 of 36
    # cases per config: cut short" over rows (and a verdict) of the 12 cases' scores: the
    # heading counted generations the scores do not rest on
    from evaluation.metrics import get_metrics
    from evaluation.storage.repository import generations_frame, replace_aggregates, scores_frame
    from tests.support.review_db import METRICS

    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10, temperatures=(0.0, 0.7))
    later = ["c06", "c07", "c08", "c09"]
    with Session(db.engine) as session:
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level="full"))
        uids = select(CaseRow.uid).where(CaseRow.case_id.in_(later))
        unscored = select(Generation.id).where(Generation.case_uid.in_(uids))
        session.exec(delete(Score).where(Score.generation_id.in_(unscored)))
        generations = generations_frame(session, db.experiment_id)
        scored = generations[~generations["case_id"].isin(later)]  # what the scores saw
        rows = aggregate_rows(
            scored, scores_frame(session, db.experiment_id), get_metrics(METRICS), db.suite
        )
        replace_aggregates(session, db.experiment_id, rows)
        session.commit()
        title = load_leaderboard(session, db.experiment).title
        experiment = session.get(Experiment, db.experiment_id)
        experiment.status = "running"
        session.commit()
        live = load_leaderboard(session, db.experiment).title
    assert title == (
        f"Leaderboard: {db.experiment} (scores of 6 of 10 cases; 8 generations stored "
        "since not scored yet: resume to score them)"
    )
    assert live.endswith("8 generations stored since not scored yet)")  # the run scores them


def test_the_configs_short_of_the_suite_are_read_with_the_coverage(tmp_path):
    """`show` asks whether a config ran part of the suite (the full-suite estimates under
    its board) of the counts its heading read: the configs and counts ``short_configs``
    scans the generations again for (~0.03 s of `show` at 100,000), a config whose every
    generation failed left out as there."""
    db = build_review_db(f"sqlite:///{tmp_path / 'r.db'}", n_cases=10)
    a, b, c = (config.hash for config in db.configs)

    def both(session: Session) -> tuple[dict[str, int], dict[str, int]]:
        experiment = session.get(Experiment, db.experiment_id)
        read = experiment_coverage(session, experiment).short_configs()
        return read, short_configs(session, db.experiment_id, 10)

    with Session(db.engine) as session:
        assert both(session) == ({}, {})  # every config ran every case
        _drop(session, a, ["c06", "c07", "c08", "c09"])
        session.exec(update(Generation).where(Generation.config_hash == c).values(status="failed"))
        session.commit()
        assert both(session) == ({a: 6, b: 10}, {a: 6, b: 10})


def _stopped_in_round_one(tmp_path):
    """A race with a latency limit that stopped the board's first config in round 1 (6
    of 10 cases): (database url, experiment, first, second, labels)."""
    from evaluation.compare._leaderboard import ranked_rows
    from evaluation.storage.models import RaceRoundRow

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = build_review_db(url, n_cases=10, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:
        board = load_leaderboard(session, db.experiment)
        first, second = (str(r["config"]) for r in ranked_rows(board))
        experiment = session.get(Experiment, db.experiment_id)
        experiment.status = "completed"
        session.add(ExperimentRun(experiment=db.experiment, token="t", pid=1, level="full"))
        limit = {"config": first, "reason": "limit", "by": "latency_s p95 > 0.3"}
        stopped = limit | {
            "n_cases": 6,
            "diff": None,
            "ci": None,
            "p_value": 0.0,
            "p_adjusted": 0.0,
            "test": "",
        }
        round_one = {"n_cases": 6, "leader": second, "spent": 12, "full_grid": 20}
        session.add(
            RaceRoundRow(
                experiment_id=db.experiment_id,
                round_index=0,
                survivors=[first, second],
                eliminated=[stopped],
                **round_one,
            )
        )
        last = {"n_cases": 10, "leader": second, "spent": 16, "full_grid": 20}
        session.add(
            RaceRoundRow(
                experiment_id=db.experiment_id,
                round_index=1,
                survivors=[second],
                outcome="exhausted",
                pick=second,
                **last,
            )
        )
        _drop(session, first, ["c06", "c07", "c08", "c09"])
        session.commit()
        labels = load_leaderboard(session, db.experiment).labels
    return url, db, first, second, labels


def _stopped_words(first: str, second: str, labels: dict[str, str]) -> str:
    return (
        f"Stopped early by the race, yet ranked above every config it kept: #1 {labels[first]} "
        "(6 cases; round 1: latency_s p95 > 0.3). Their figures are over the cases they ran "
        f"only, and the race did not keep them; the best-ranked config it kept is #2 "
        f"{labels[second]}"
    )


def test_a_config_the_race_stopped_that_leads_the_board_is_said_under_it(tmp_path, capsys):
    # newcomers' C7: a race with a latency limit stopped the sim-large configs in round 1
    # (20 of 36 cases); their means over those cases ranked them #1-#3 on `show`'s
    # leaderboard, above the race's pick, and nothing under the board said so
    from flows.cli.app import main

    url, db, first, second, labels = _stopped_in_round_one(tmp_path)
    assert main(["--database", url, "show", db.experiment]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{_stopped_words(first, second, labels)} (Race, below)" in out


def test_compare_the_report_and_view_say_it_under_their_boards_too(tmp_path, capsys):
    # C7b: compare, the report and view's summary showed the same board without the line
    from html import unescape

    from evaluation.report.data import gather
    from evaluation.report.html import render_report
    from evaluation.view.summary import experiment_summary
    from flows.cli.app import main

    url, db, first, second, labels = _stopped_in_round_one(tmp_path)
    said = _stopped_words(first, second, labels)
    assert main(["--database", url, "compare", db.experiment]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{db.experiment}: {said} (the race: evalflow show {db.experiment})" in out
    assert main(["--database", url, "compare", db.experiment, "--markdown"]) == 0
    assert f"**{db.experiment}: {said} (the race: evalflow show {db.experiment})**" in (
        capsys.readouterr().out
    )
    with Session(db.engine) as session:
        html = render_report(gather(session, db.experiment))
        summary = experiment_summary(session, db.experiment)
    assert f"{said} (Race, below)" in " ".join(unescape(html).split())
    assert summary.stopped == said  # no race on the page: no pointer to one
