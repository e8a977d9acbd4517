"""`evalflow recommend --write-spec FILE`: a spec of just the configs the `next:` lines
name (selection/next_spec.py). A newcomer could read what to measure next but had to
hand-write a spec to measure it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlmodel import Session

from evaluation.spec import expand, load_spec
from evaluation.storage.models import Experiment
from selection.next_spec import NothingToWrite, next_spec, to_yaml
from selection.recommendation import Recommendation, ToMeasure
from selection.recommender import recommend_from_model
from selection.training import train_selector
from tests.support.results_db import add_experiment, make_suite

from .conftest import FAST
from .test_measurement_weight import few_real_runs
from .test_suite_mix import RUNS, _config


@pytest.fixture(scope="module")
def world():
    """The newcomer's runs (tests/selection/test_suite_mix.py)."""
    return train_selector(few_real_runs(RUNS), FAST).model


def _stored(
    session: Session,
    tmp_path,
    name: str,
    suite: str,
    metrics: tuple[str, ...] = ("contains",),
    *,
    simulated: bool = False,
) -> None:
    path = tmp_path / f"{suite}.jsonl"
    path.write_text('{"id": "c0", "input": "question", "references": ["answer"]}\n')
    spec = {
        "name": name,
        "suite": str(path),
        "models": ["other:1b"],
        "grid": {"temperature": [0.0, 0.8]},
        "templates": {"plain": "{input}"},
        "hosts": [{"name": "local", "url": "http://127.0.0.1:11434", "slots": 1, "kind": None}],
        "metrics": list(metrics),
        "baseline": "other:1b t=0",
    }
    session.add(Experiment(name=name, suite=suite, task_type="qa", spec=spec, simulated=simulated))


def _write_spec(tmp_path, suite, answer, database_url, monkeypatch):
    """The suite's files (its cases), then `recommend qa --write-spec` of ``answer``."""
    import selection
    from flows.cli import main

    (tmp_path / f"{suite.name}.jsonl").write_text(
        "".join(f'{{"id": "{c.id}", "input": "q", "references": ["a"]}}\n' for c in suite.cases)
    )
    (tmp_path / f"{suite.name}.suite.yaml").write_text(
        f"name: {suite.name}\nversion: '1'\ntask_type: qa\ndefault_metrics: [contains]\n"
    )
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    path = tmp_path / "next.yaml"
    assert main(["--database", database_url, "recommend", "qa", "--write-spec", str(path)]) == 0
    return path


def test_the_spec_written_runs_just_the_configs_to_measure_next(world, engine, tmp_path):
    answer = recommend_from_model(world, "qa")
    thin = _config("smol", 0.4)
    first = answer.measure_next[0]
    assert first.option.config_hash == thin.hash and first.suites == ("hard",)
    with Session(engine) as session:
        _stored(session, tmp_path, "easy-run", "easy")
        _stored(session, tmp_path, "hard-run", "hard")
        session.commit()
        found = next_spec(session, answer)
    assert found is not None and found.based_on == "hard-run"
    path = tmp_path / "next.yaml"
    path.write_text(to_yaml(found.spec))
    spec = load_spec(path)
    on_hard = {m.option.config_hash for m in answer.measure_next if "hard" in m.suites}
    assert {c.hash for c in expand(spec)} == on_hard == {c.hash for c in found.configs}
    assert thin.hash in on_hard and spec.suite.name == "hard.jsonl"
    assert spec.baseline is None and spec.hosts[0].url == "http://127.0.0.1:11434"
    with Session(engine) as session:
        nothing = next_spec(session, recommend_from_model(world, "qa", candidates=[thin.hash]))
    assert nothing == NothingToWrite("the answer names nothing to measure next")  # one candidate


def test_recommend_write_spec_writes_it_once_and_says_how_to_run_it(
    world, database_url, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    import selection
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main

    answer = recommend_from_model(world, "qa")
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard")
    engine.dispose()
    path = tmp_path / "next.yaml"
    argv = ["--database", database_url, "recommend", "qa", "--write-spec", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"  next: {answer.suggestions[0]}" in out
    assert f"wrote {path}: " in out and f"`evalflow run {path}`" in out
    assert {c.hash for c in expand(load_spec(path))} == {
        m.option.config_hash for m in answer.measure_next if "hard" in m.suites
    }
    # a pick with nothing to measure next: a note, and the answer's exit code (0); it
    # exited 1, which recommend otherwise means "nothing feasible" (newcomer N3)
    settled = recommend_from_model(world, "qa", candidates=[_config("smol", 0.4).hash])
    assert settled.choice is not None
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: settled)
    assert main([*argv[:-1], str(tmp_path / "none.yaml")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.endswith(
        "note: --write-spec: nothing written: the answer names nothing to measure next\n"
    )
    assert not (tmp_path / "none.yaml").exists()
    # a task type with nothing stored: the next: lines ask for a new sweep (a re-check
    # read "names nothing to measure next" right under them)
    first_sweep = Recommendation(
        "no_data", "summarization", "no results", suggestions=("run a sweep over …",)
    )
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: first_sweep)
    assert main([*argv[:-1], str(tmp_path / "none.yaml")]) == 1  # no pick: the answer's 1
    assert capsys.readouterr().out.endswith(
        "note: --write-spec: nothing written: the answer names no stored summarization "
        "configuration to measure (its next: lines ask for a new sweep, whose spec is yours "
        "to write)\n"
    )
    assert not (tmp_path / "none.yaml").exists()


@pytest.mark.parametrize("simulated", [False, True])
def test_the_spec_written_says_the_retrain_that_learns_from_its_runs(
    simulated, world, database_url, tmp_path, capsys, monkeypatch
):
    """Newcomer F2: a spec written from SIMULATED runs stores SIMULATED results, which a
    plain `evalflow retrain` leaves out (exit 1 where nothing else is stored); the line
    after --write-spec said to run just that."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    import selection
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main

    answer = recommend_from_model(world, "qa")
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard", simulated=simulated)
    engine.dispose()
    path = tmp_path / "next.yaml"
    assert main(["--database", database_url, "recommend", "qa", "--write-spec", str(path)]) == 0
    (wrote,) = [line for line in capsys.readouterr().out.splitlines() if "wrote" in line]
    flag = " --include-simulated" * simulated
    assert wrote.endswith(f"`evalflow run {path}`, then `evalflow retrain{flag}`"), wrote


def test_a_config_left_out_of_the_spec_says_why(world, engine, tmp_path):
    """A re-check read "(another suite, or no grid with the first)" of a config that
    made a grid with the first: each one left out now says which."""
    answer = recommend_from_model(world, "qa")
    elsewhere = ToMeasure(answer.choice, ("easy",))
    with Session(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard")
        session.commit()
        both = replace(answer, measure_next=(answer.measure_next[0], elsewhere))
        found = next_spec(session, both)
    assert found is not None
    assert found.left_out == (f"{answer.choice.label} (to be measured on easy, not hard)",)


def test_a_measurement_stored_since_the_version_answering_is_not_asked_for_again(world, engine):
    """A second user ran the pick on the suite its `next:` line named; the retrain was
    not promoted, and the answer from the version before still asked for that run
    ("it was not run there") and --write-spec wrote the same spec again."""
    from selection import _staleness

    answer = recommend_from_model(world, "qa")
    thin = _config("smol", 0.4)
    assert thin.hash in {m.option.config_hash for m in answer.measure_next}
    with Session(engine) as session:
        suite = make_suite(3, name="hard")
        add_experiment(session, "thin-hard", suite, {thin: {"exact_match": [0, 1, 0]}})
        session.commit()
        found = _staleness.stored_since(session, answer, world, 1, "evalflow retrain")
    assert thin.hash not in {m.option.config_hash for m in found.measure_next}
    assert len(found.measure_next) == len(answer.measure_next) - 1
    said = [s for s in found.suggestions if thin.hash in s]
    assert said == [
        f"{thin.label} (hash {thin.hash}) has been run on 3 cases of hard since version 1 "
        "was trained (3 generations stored), so it is not to be measured again: `evalflow "
        "retrain` trains on it and compares"
    ]
    others = [s for s in answer.suggestions if thin.hash not in s]
    assert [s for s in found.suggestions if thin.hash not in s] == others


PARTLY = [  # RUNS, with smol at 0.4 on 6 of easy's 10 cases and 12 of hard's 36
    *(run for run in RUNS if run[:2] != ("smol:135m", 0.4)),
    ("smol:135m", 0.4, None, "easy", 4, 6),
    ("smol:135m", 0.4, None, "hard", 5, 12),
]


@pytest.fixture
def partly(engine):
    """Version 1, trained on ``PARTLY``, stored and current in ``engine``."""
    return _stored_version(engine, few_real_runs(PARTLY))


@pytest.fixture
def partly_simulated(engine):
    """Version 1, trained on ``PARTLY`` as SIMULATED results (`retrain
    --include-simulated` on the demo), stored and current in ``engine``."""
    return _stored_version(engine, few_real_runs(PARTLY).assign(simulated=True))


def _stored_version(engine, frame):
    from selection.versions import PromotionDecision, save_version

    trained = train_selector(frame, FAST)
    with Session(engine) as session:
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        session.commit()
    return engine


def _ran(
    engine, name: str, suite: str, cases: range, size: int, *, simulated: bool = False
) -> None:
    """smol at 0.4 stored on ``cases`` of ``suite`` (c0…, as the training frame's)."""
    from evaluation.suites import Case, Suite
    from tests.support.results_db import MISSING

    whole = Suite(
        suite,
        "1",
        "qa",
        ("exact_match",),
        tuple(Case(id=f"c{i}", input=f"q {i}", references=("a",)) for i in range(size)),
    )
    scores = [float(i % 2) if i in cases else MISSING for i in range(size)]
    with Session(engine) as session:
        config = {_config("smol", 0.4): {"exact_match": scores}}
        add_experiment(session, name, whole, config, simulated=simulated)
        session.commit()


def test_more_cases_stored_since_of_a_config_the_version_saw_are_not_asked_for_again(partly):
    """Newcomer F7: `next: measure more of gemma3-270m … (12 cases so far, 12 more on
    qa-short)`; the spec --write-spec wrote ran those 12 cases, and the answer asked for
    them again word for word (24 stored) and --write-spec wrote the config again on 12
    more. The check was by the (config, suite) pairs the version never saw, and the
    config had run on qa-short before: now by the cases."""
    from selection import recommend

    thin = _config("smol", 0.4)
    _ran(partly, "first", "easy", range(6), 10)  # what version 1 learned of it
    _ran(partly, "first-hard", "hard", range(12), 36)
    asked = recommend("qa", engine=partly)
    line = next(s for s in asked.suggestions if thin.hash in s)
    assert line.startswith(
        f"measure more of {thin.label} (18 cases so far, 4 more on easy, 24 more on hard) "
        f"(hash {thin.hash}) on easy and hard: "
    )
    _ran(partly, "more-easy", "easy", range(6, 10), 10)  # half of what it asked for
    half = recommend("qa", engine=partly)
    assert [s for s in half.suggestions if thin.hash in s] == [
        f"measure {thin.label} (hash {thin.hash}) on hard still: it has been run on 4 more "
        "cases of easy (10 stored) since version 1 was trained (4 generations stored), not "
        "on hard; `evalflow retrain` trains on it and compares"
    ]
    assert [m.suites for m in half.measure_next if m.option.config_hash == thin.hash] == [("hard",)]
    _ran(partly, "more-hard", "hard", range(12, 36), 36)  # the rest
    done = recommend("qa", engine=partly)
    assert [s for s in done.suggestions if thin.hash in s] == [
        f"{thin.label} (hash {thin.hash}) has been run on 4 more cases of easy (10 stored) "
        "and 24 more cases of hard (36 stored) since version 1 was trained (28 generations "
        "stored), so it is not to be measured again: `evalflow retrain` trains on it and "
        "compares"
    ]
    assert thin.hash not in {m.option.config_hash for m in done.measure_next}
    assert "cases so far" not in " ".join(done.suggestions)


def test_the_spec_puts_first_the_metric_the_selector_read_quality_from(
    world, engine, database_url, tmp_path, capsys, monkeypatch
):
    """The spec took the newest experiment's metrics as they were: where it listed
    exact_match first and the selector had read quality from contains (other experiments
    of the task type listed that first), the new run's quality, its first metric, was
    another than the one the selector was trained on."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    import selection
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main

    answer = replace(
        recommend_from_model(world, "qa"), quality_metrics={"contains": 5, "exact_match": 2}
    )
    with Session(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard", ("exact_match", "rougeL", "contains"))
        session.commit()
        found = next_spec(session, answer)
    assert found is not None and found.spec["metrics"] == ["contains", "exact_match", "rougeL"]
    assert found.metrics_changed == (
        "contains first: the selector read quality from it on qa (for 5 configs; "
        "exact_match for 2), and hard-run puts exact_match first"
    )
    with Session(engine) as session:  # a base that reads it first already is kept
        _stored(session, tmp_path, "hard-run-2", "hard", ("output_length", "contains"))
        session.commit()
        found = next_spec(session, answer)
    assert found.spec["metrics"] == ["output_length", "contains"] and not found.metrics_changed
    # one that does not measure it gets it first, and the CLI says so
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    bound = make_engine(database_url)
    with session_scope(bound) as session:
        _stored(session, tmp_path, "hard-run", "hard", ("exact_match",))
    bound.dispose()
    path = tmp_path / "next.yaml"
    assert main(["--database", database_url, "recommend", "qa", "--write-spec", str(path)]) == 0
    assert load_spec(path).metrics == ("contains", "exact_match")
    assert (
        "  metrics: contains first: the selector read quality from it on qa (for 5 configs; "
        "exact_match for 2), and hard-run does not measure it\n"
    ) in capsys.readouterr().out


def test_recommend_quiet_says_the_answer_its_reason_and_what_to_measure_next(
    world, database_url, capsys, monkeypatch
):
    """`recommend -q` printed the whole answer (17+ lines); -q is "only the result":
    the pick, its config: line (what a spec takes), the one line of its reason and the
    next: lines."""
    import selection
    from evaluation.storage.db import make_engine
    from flows.cli import main

    make_engine(database_url).dispose()  # a results database (the answer is stubbed)
    answer = recommend_from_model(world, "qa")
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    assert main(["--database", database_url, "-q", "recommend", "qa"]) == 0
    lines = capsys.readouterr().out.splitlines()
    whole = answer.explain().splitlines()
    assert lines[0] == whole[0] and lines[0].startswith("qa: use ")
    assert lines[1] in whole and lines[1].startswith("  config: ")
    assert lines[2] in whole and lines[2].startswith("  why: ")
    assert lines[3:] == [f"  next: {s}" for s in answer.suggestions] and answer.suggestions
    assert len(whole) > 2 * len(lines)


def test_a_spec_written_from_a_version_older_than_the_results_says_so(
    world, database_url, tmp_path, capsys, monkeypatch
):
    """After the spec --write-spec wrote was run, the same stale next: line and spec came
    again, the answer's staleness note at its foot: the spec's line says it."""
    import selection
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main

    newer = (
        "4 more generations are stored than version 1, which answers, learned from: "
        "`evalflow retrain` trains on them and compares"
    )
    answer = replace(recommend_from_model(world, "qa"), version_id=1, newer_results=newer)
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    monkeypatch.setenv("COLUMNS", "1000")
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard")
    engine.dispose()
    path = tmp_path / "next.yaml"
    assert main(["--database", database_url, "recommend", "qa", "--write-spec", str(path)]) == 0
    assert capsys.readouterr().out.endswith(
        "\n  note: selector v1 is older than the stored results, so what it asks to measure "
        f"may have run since: {newer}\n"
    )


def test_recommend_fits_the_width(world, database_url, tmp_path, capsys, monkeypatch):
    """Newcomer F3: the answer's lines were 240-352 characters at 80 columns. Each wraps
    at spaces, further lines indented under it."""
    import selection
    from evaluation.storage.db import make_engine
    from flows.cli import main

    make_engine(database_url).dispose()  # a results database (the answer is stubbed)
    answer = recommend_from_model(world, "qa")
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    monkeypatch.setenv("COLUMNS", "80")
    main(["--database", database_url, "recommend", "qa"])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines, err
    assert max(map(len, answer.explain().splitlines())) > 80  # what it printed before
    assert max(map(len, lines)) <= 80
    assert " ".join(" ".join(lines).split()) == " ".join(answer.explain().split())


def test_a_config_stored_on_some_cases_is_measured_on_those_it_lacks(
    world, database_url, tmp_path, capsys, monkeypatch
):
    """Newcomer N5: `next: measure more of … (12 cases so far, 6 more on qa-short)`, and
    the spec written ran the config over the whole suite as a new experiment: `plan`
    said 36 generations and nothing stored, `run` redid the 12 stored cases (in other
    experiments) and ran 30 where the line asked for 6. The spec now names the cases it
    lacks (those other configs were stored on), and plan says what is stored."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    from evaluation.run._sweep import prepare_sweep
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main
    from tests.support.results_db import MISSING

    answer = recommend_from_model(world, "qa")
    thin, other = _config("smol", 0.4), _config("gem", 0.0)
    assert answer.measure_next[0].option.config_hash == thin.hash
    suite = make_suite(8, name="hard")
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        scores = {
            thin: {"contains": [1, 0, 1, *[MISSING] * 5]},  # 3 cases stored
            other: {"contains": [1, 1, 0, 1, 0, *[MISSING] * 3]},  # 5: 2 more
        }
        add_experiment(session, "first-runs", suite, scores)
        _stored(session, tmp_path, "hard-run", "hard")  # the newest, whose spec is taken
    with session_scope(engine) as session:  # what N4's advice reads: the whole suite's size
        from selection.recommender import _suite_sizes

        assert _suite_sizes(session) == {"hard": 8}
    engine.dispose()
    path = _write_spec(tmp_path, suite, answer, database_url, monkeypatch)
    out = capsys.readouterr().out
    assert (
        f"wrote {path}: 1 config to measure next on 2 cases of hard.jsonl (3 cases stored in "
        "first-runs: not run again)"
    ) in out
    sweep = prepare_sweep(path)
    assert [c.hash for c in sweep.configs] == [thin.hash]
    assert [item.case.id for item in sweep.work_items()] == ["c003", "c004"]
    assert main(["--database", database_url, "plan", str(path)]) == 0
    plan = capsys.readouterr().out
    assert "generations       2  (1 config × 2 cases × 1 sample)" in plan
    assert (
        "note: the spec's cases: runs 2 of hard's 8 cases; stored by other experiments, not "
        f"run again: {thin.label} on 3 other cases (first-runs)"
    ) in plan
    # recheck: `plan --limit 1` said "cases 1 of 2" over a note that it runs both
    assert main(["--database", database_url, "plan", str(path), "--limit", "1"]) == 0
    assert (
        "note: the spec's cases: names 2 of hard's 8 cases, --limit 1 runs the first 1 of "
        "them (in the suite's order); stored by other experiments"
    ) in capsys.readouterr().out


def test_work_a_run_in_progress_will_generate_is_said_by_write_spec_and_plan(
    world, database_url, tmp_path, capsys, monkeypatch
):
    """Newcomer N3: `recommend --write-spec` while a sweep of the same config ran wrote a
    spec of 5 cases that sweep then generated too; `plan` of it said only that 31 other
    cases were stored, and `run` generated the 5 again (61 s, greedy: identical). Both
    now say what the run in progress will generate, and once it has, `plan` says the
    named cases are stored elsewhere too."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.repository import set_experiment_status
    from evaluation.storage.runs import RunProcess, claim_experiment, record_level
    from flows.cli import main
    from tests.support.results_db import MISSING

    answer = recommend_from_model(world, "qa")
    thin, other = _config("smol", 0.4), _config("gem", 0.0)
    suite = make_suite(8, name="hard")
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        scores = {
            thin: {"contains": [1, 0, 1, *[MISSING] * 5]},  # 3 cases stored so far
            other: {"contains": [1, 1, 0, 1, 0, *[MISSING] * 3]},
        }
        live = add_experiment(session, "live", suite, scores).id  # running: the whole suite
        claim_experiment(session, "live", RunProcess.current(), level="full")
        _stored(session, tmp_path, "hard-run", "hard")
    engine.dispose()
    path = _write_spec(tmp_path, suite, answer, database_url, monkeypatch)
    said = (
        "note: a run in progress will generate 2 of the 2 generations this spec has to go: "
        f"live (running: {thin.label} on 2 cases); a run of this spec would generate them "
        "again for its own experiment: plan it again once that run has ended (`evalflow "
        "status`)"
    )
    assert f"  {said}\n" in capsys.readouterr().out
    assert main(["--database", database_url, "plan", str(path)]) == 0
    assert f"\n{said}\n" in capsys.readouterr().out
    # a run cut by --limit 4 reaches one of them
    with session_scope(make_engine(database_url)) as session:
        record_level(session, "live", "full", 4)
    assert main(["--database", database_url, "plan", str(path)]) == 0
    assert "will generate 1 of the 2 generations this spec has to go" in capsys.readouterr().out
    # once it has run them, plan says they are stored there too, and nothing in progress
    with session_scope(make_engine(database_url)) as session:
        add_experiment(
            session, "live", suite, {thin: {"contains": [1, 0, 1, 1, 1, *[MISSING] * 3]}}
        )
        set_experiment_status(session, live, "completed")
    assert main(["--database", database_url, "plan", str(path)]) == 0
    plan = capsys.readouterr().out
    assert "in progress" not in plan
    assert (
        f"; named but stored by other experiments too, so generated again for this one: "
        f"{thin.label} on 2 cases (live)"
    ) in plan


def test_a_run_starting_with_a_limit_will_generate_only_its_first_cases(database_url):
    """Recheck NEW-2: with `run --limit 10` starting (claimed, its flow not yet started),
    `recommend --write-spec` said it "will generate 28 of the 28 generations this spec has
    to go"; it generated 2. The claim records the level with its limit; a claim that
    does not say it is read as "up to"."""
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.running_work import running_work
    from evaluation.storage.runs import RunProcess, claim_experiment, level_words
    from tests.support.results_db import MISSING

    thin, suite = _config("smol", 0.4), make_suite(8, name="hard")
    order = [case.id for case in suite.cases]
    with session_scope(make_engine(database_url)) as session:
        add_experiment(session, "live", suite, {thin: {"contains": [1, 0, 1, *[MISSING] * 5]}})
        claim_experiment(session, "live", RunProcess.current(), level=level_words("full", 4))
        [limited] = running_work(session, "hard", [thin.hash], "next")
        add_experiment(
            session, "told", make_suite(8, name="told"), {thin: {"contains": [1, *[MISSING] * 7]}}
        )
        claim_experiment(session, "told", RunProcess.current())
        [untold] = running_work(session, "told", [thin.hash], "next")
    to_go = [limited.will_generate(thin.hash, c, f"hard/{c}", 0, order) for c in order]
    assert to_go == [False] * 3 + [True] + [False] * 4 and limited.exact
    assert not untold.exact and untold.limit is None


def test_the_cases_no_config_was_run_on_are_written_as_the_next_spec(
    database_url, tmp_path, capsys, monkeypatch
):
    """Newcomer F2: every config run with `--limit` on the same cases of a suite, the
    answer's advice to run them on the rest was a note; `--write-spec` then said "nothing
    written: the answer names nothing to measure next" and `-q` dropped the advice. They
    are `next:` lines now, and the spec runs them on the cases no config was run on."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    from evaluation.run._sweep import prepare_sweep
    from evaluation.storage.db import make_engine, session_scope
    from evaluation.storage.training import training_frame
    from selection import quality_metric
    from selection.recommender import recommend
    from selection.versions import train_and_maybe_promote
    from tests.support.results_db import MISSING, make_config

    configs = [make_config(m, t) for m in ("small:1b", "large:8b") for t in (0.0, 0.9)]
    limited, whole = make_suite(8, name="toy-a"), make_suite(8, name="toy-b")
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        for k, suite in enumerate((limited, whole)):
            scores = {
                c: {"exact_match": [float((i + j + k) % 3 != 0) for i in range(8)]}
                for j, c in enumerate(configs)
            }
            if suite is limited:  # run with --limit 3: 5 cases no config was run on
                scores = {
                    c: {m: [*v[:3], *[MISSING] * 5] for m, v in s.items()}
                    for c, s in scores.items()
                }
            add_experiment(session, f"exp-{suite.name}", suite, scores)
        _stored(session, tmp_path, "toy-a-run", "toy-a", ("exact_match",))
    with session_scope(engine) as session:
        frame = training_frame(session, quality_metric)
    train_and_maybe_promote(engine, frame, hyperparameters=FAST)
    answer = recommend("qa", engine=engine)
    engine.dispose()
    assert answer.measure_next and {m.suites for m in answer.measure_next} == {("toy-a",)}
    assert "next: measure more of" in answer.brief()  # -q keeps it
    path = _write_spec(tmp_path, limited, answer, database_url, monkeypatch)
    out = capsys.readouterr().out
    assert f"wrote {path}: 1 config to measure next on 5 cases of toy-a.jsonl" in out, out
    assert [item.case.id for item in prepare_sweep(path).work_items()] == [
        f"c00{i}" for i in range(3, 8)
    ]


def test_simulated_cases_stored_since_a_version_that_learned_from_simulated_ones_give_way(
    partly_simulated,
):
    """Recheck R7/R8: after `retrain --include-simulated`, the demo's spec --write-spec
    wrote was run and `next: measure more of … (12 cases so far, 24 more on qa-short)`
    came back word for word (half run: the same), and --write-spec then said "no stored
    qa experiment to take a suite and hosts from": only real cases were looked for."""
    from selection import recommend

    thin, engine = _config("smol", 0.4), partly_simulated
    _ran(engine, "first", "easy", range(6), 10, simulated=True)
    _ran(engine, "first-hard", "hard", range(12), 36, simulated=True)
    _ran(engine, "more-easy", "easy", range(6, 10), 10, simulated=True)
    half = recommend("qa", engine=engine)
    assert [s for s in half.suggestions if thin.hash in s] == [
        f"measure {thin.label} (hash {thin.hash}) on hard still: it has been run on 4 more "
        "cases of easy (10 stored) since version 1 was trained (4 generations stored), not "
        "on hard; `evalflow retrain --include-simulated` trains on it and compares"
    ]
    _ran(engine, "more-hard", "hard", range(12, 36), 36, simulated=True)
    done = recommend("qa", engine=engine)
    assert thin.hash not in {m.option.config_hash for m in done.measure_next}
    assert "cases so far" not in " ".join(s for s in done.suggestions if thin.hash in s)


def test_a_next_config_stored_on_every_case_leaves_nothing_to_write_and_says_so(
    world, database_url, tmp_path, capsys, monkeypatch
):
    """Recheck R11: where each config a `next:` line names is stored on every case of its
    suite, `--write-spec` said "no stored qa experiment to take a suite and hosts from"
    of a database that had one: nothing is left to measure, and the exit code stays the
    answer's."""
    monkeypatch.setenv("COLUMNS", "1000")  # whole lines: what they say, not the width
    import selection
    from evaluation.storage.db import make_engine, session_scope
    from flows.cli import main

    answer = recommend_from_model(world, "qa")
    first = answer.measure_next[0]  # smol at 0.4 on hard
    answer = replace(answer, measure_next=(first,))
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        _stored(session, tmp_path, "hard-run", "hard")
    _ran(engine, "hard-all", "hard", range(36), 36)  # every case of hard
    engine.dispose()
    monkeypatch.setattr(selection, "recommend", lambda *a, **k: answer)
    path = tmp_path / "next.yaml"
    assert main(["--database", database_url, "recommend", "qa", "--write-spec", str(path)]) == 0
    assert capsys.readouterr().out.endswith(
        "note: --write-spec: nothing written: nothing is left to measure on hard: the config "
        "the next: lines name there is stored on every case of it\n"
    )
    assert not path.exists()
