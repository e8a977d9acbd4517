"""The weekly retraining flow on a results database: a first version is trained from the
stored generations and promoted; an empty database fails with a clear message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import pytest
from sqlmodel import Session

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.training import training_generations
from flows.cli import main
from flows.retrain_selector import retrain_selector
from selection.schema import SelectorVersion
from tasks.selector import ARTIFACT_KEY
from tests.flows.test_evaluate import artifact_data
from tests.support.results_db import add_experiment, make_config, make_suite

pytestmark = pytest.mark.usefixtures("prefect_harness")

CONFIGS = [make_config(m, t) for m in ("small:1b", "large:8b") for t in (0.0, 0.9)]


def fill(database_url: str) -> None:
    with session_scope(make_engine(database_url)) as session:
        for k, suite in enumerate((make_suite(8, name="toy-a"), make_suite(8, name="toy-b"))):
            scores = {
                c: {"exact_match": [float((i + j + k) % 3 != 0) for i in range(8)]}
                for j, c in enumerate(CONFIGS)
            }
            add_experiment(session, f"exp-{suite.name}", suite, scores)


def test_first_version_is_trained_and_promoted(database_url):
    fill(database_url)
    result = retrain_selector(database=database_url)
    assert result["promoted"] is True and result["generations"] == 2 * len(CONFIGS) * 8
    with Session(make_engine(database_url)) as session:
        version = session.get(SelectorVersion, result["version_id"])
    assert version is not None
    assert f"Selector version {result['version_id']}" in asyncio.run(artifact_data(ARTIFACT_KEY))


def test_nothing_to_learn_from_is_a_clear_failure(database_url):
    """It names the simulated results left out where some are stored, only then (the
    newcomer's F5: an empty home was told to add --include-simulated)."""
    state = retrain_selector(database=database_url, return_state=True)
    assert state.is_failed()
    assert "no stored generations to train the selector on" in state.message
    assert "simulated" not in state.message
    with session_scope(make_engine(database_url)) as session:
        demo = {c: {"exact_match": [1.0, 0.0]} for c in CONFIGS}
        add_experiment(session, "demo", make_suite(2), demo, simulated=True)
    state = retrain_selector(database=database_url, return_state=True)
    assert state.is_failed()
    assert "--include-simulated" in state.message  # the CLI's flag, as a user types it
    assert "include_simulated parameter" in state.message  # a deployed flow's


def test_the_cli_says_a_stored_version_is_current_again(monkeypatch, capsys):
    """A retrain on data an older version learned from makes that version current again,
    storing no copy; the line said "kept" of every retrain that stored nothing."""
    summary = {
        "version_id": 1,
        "promoted": True,
        "reason": "version 1 learned from these same 40 generations with these settings",
        "generations": 40,
        "stored": False,
    }
    monkeypatch.setattr("flows.retrain_selector.retrain_selector", lambda **kwargs: summary)
    monkeypatch.setattr("flows.cli.selection._too_little_to_train_on", lambda args: None)
    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    assert main(["retrain"]) == 0
    assert capsys.readouterr().out == f"selector v1 current again: {summary['reason']}\n"
    summary.update(promoted=False, version_id=2)
    assert main(["retrain"]) == 0
    assert capsys.readouterr().out.startswith("selector v2 kept: version 1 learned")


def test_the_cli_says_what_it_does_while_it_trains(monkeypatch, capsys):
    """A newcomer's `retrain` printed nothing for 38-77 s until its result: each step
    goes to stderr as it begins (Prefect's start, then the flow's), none with -q."""
    from selection.steps import announce

    def retrain(**kwargs):
        announce("fitting quality (target 1 of 4, 12 (config, suite) rows, cross-validated)")
        return {"version_id": 1, "promoted": True, "reason": "promoted", "generations": 48}

    monkeypatch.setattr("flows.retrain_selector.retrain_selector", retrain)
    monkeypatch.setattr("flows.cli.selection._too_little_to_train_on", lambda args: None)
    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    assert main(["retrain"]) == 0
    captured = capsys.readouterr()
    said = [line.partition(" · ")[0] for line in captured.err.splitlines()]
    assert said == [
        "retrain: starting Prefect",
        "retrain: fitting quality (target 1 of 4, 12 (config, suite) rows, cross-validated)",
    ]
    assert captured.out.startswith("selector v1 trained on 48 generations: promoted")
    assert main(["-q", "retrain"]) == 0
    assert capsys.readouterr().err == ""


def errors(capsys) -> str:
    """What the command printed on stderr but its steps (``retrain: ...``)."""
    lines = capsys.readouterr().err.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("retrain: "))


def test_too_little_real_data_names_the_simulated_results_left_out(
    database_url, monkeypatch, capsys
):
    """A newcomer with 2 real (config, suite) pairs and the simulated demo stored read
    "need ... at least 3 (config, suite) pairs; have 2; run more configs ...", no word of
    --include-simulated."""
    from selection.frame import NotEnoughTrainingData

    with session_scope(make_engine(database_url)) as session:
        real = {c: {"exact_match": [1.0, 0.0]} for c in CONFIGS[:2]}
        add_experiment(session, "real", make_suite(2, name="toy-a"), real)
    too_few = NotEnoughTrainingData.too_few(2)  # the CLI's early check and the flow alike

    def refuse(**kwargs):
        raise too_few

    monkeypatch.setattr("flows.retrain_selector.retrain_selector", refuse)
    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    assert main(["--database", database_url, "retrain"]) == 1
    assert errors(capsys) == f"error: {too_few}\n"  # nothing simulated stored
    with session_scope(make_engine(database_url)) as session:
        demo = {c: {"exact_match": [1.0, 0.0]} for c in CONFIGS}
        add_experiment(session, "demo", make_suite(2, name="toy-b"), demo, simulated=True)
    assert main(["--database", database_url, "retrain"]) == 1
    assert errors(capsys) == (
        f"error: {too_few}; simulated results are stored and left out: "
        "`evalflow retrain --include-simulated` learns from them too\n"
    )
    assert main(["--database", database_url, "retrain", "--include-simulated"]) == 1
    assert errors(capsys) == f"error: {too_few}\n"


def test_a_recorded_outcome_feeds_the_next_retrain(database_url):
    """The newcomer's F6: one `record_outcome(answer.id, quality=0.8, latency_s=1.4)`, as
    docs/selector.md shows it, broke every later retrain: the stored generations had no
    ``weight``, so beside the outcome's row theirs were NaN ("column 'weight' must be a
    non-negative number on every row")."""
    from selection import recommend, record_outcome

    fill(database_url)
    first = retrain_selector(database=database_url)
    answer = recommend("qa", max_latency_s=10.0, database_url=database_url)
    record_outcome(answer.id, quality=0.8, latency_s=1.4, database_url=database_url)
    second = retrain_selector(database=database_url)
    assert second["stored"] and second["version_id"] == first["version_id"] + 1
    with Session(make_engine(database_url)) as session:
        version = session.get(SelectorVersion, second["version_id"])
        stored = training_generations(session)
    # generations, as stored ones are counted: the outcome's row counted too, and the
    # note after a run said one fewer "more generations are stored" than it had made
    # (recheck R9: 23 after 24)
    assert version.n_generations == second["generations"] == first["generations"] == stored


def test_a_faulty_training_frame_is_no_bad_input(monkeypatch, capsys):
    """The frame `retrain` trains on is read from the results database, not given: a fault
    in it (F6's NaN weights) exited 2, the code of bad input, which the user gave none of."""
    from selection.frame import TrainingDataError

    def retrain(**kwargs):
        raise TrainingDataError("column 'weight' must be a non-negative number on every row")

    monkeypatch.setattr("flows.retrain_selector.retrain_selector", retrain)
    monkeypatch.setattr("flows.cli.selection._too_little_to_train_on", lambda args: None)
    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    assert main(["-q", "retrain"]) == 1
    assert capsys.readouterr().err == (
        "error: the stored results cannot train a selector: column 'weight' must be a "
        "non-negative number on every row\n"
    )


def test_the_cli_says_how_many_recorded_outcomes_fed_the_fit(database_url, monkeypatch, capsys):
    """Recheck R5: `retrain` said nothing of the outcomes `record_outcome` attached,
    though they moved the fit, and nothing could leave them out: a line before the result
    counts them, and `--no-outcomes` leaves them out (saying so)."""
    from selection import recommend, record_outcome

    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    fill(database_url)
    generations = 2 * len(CONFIGS) * 8
    assert main(["-q", "--database", database_url, "retrain"]) == 0
    assert capsys.readouterr().out.startswith(f"selector v1 trained on {generations} generations")
    answer = recommend("qa", max_latency_s=10.0, database_url=database_url)
    record_outcome(answer.id, quality=0.8, latency_s=1.4, database_url=database_url)
    assert main(["-q", "--database", database_url, "retrain"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (
        "learned from 1 recorded outcome too (record_outcome), each counting 0.5 of a "
        "generation: `evalflow retrain --no-outcomes` leaves them out"
    )
    assert said[1].startswith(f"selector v2 trained on {generations} generations: ")
    assert main(["-q", "--database", database_url, "retrain", "--no-outcomes"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == "left out 1 recorded outcome (--no-outcomes)"
    # version 1's data again: nothing trained, and the count is of generations alone
    assert f"from these same {generations} generations" in said[1]
    assert "outcome" not in said[1]
    assert main(["-q", "--database", database_url, "retrain"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert f"these same {generations} generations and 1 recorded outcome" in said[1]


def test_an_outcome_on_a_simulated_config_is_left_out_of_a_real_only_retrain(
    database_url, monkeypatch, capsys
):
    """The newcomer's F8 (stop 71): an outcome recorded on the simulated demo's pick fed
    a plain `retrain` (real results only), which learned from it as a real result."""
    from selection import recommend, record_outcome

    def retrain(*options: str) -> list[str]:
        assert main(["-q", "--database", database_url, "retrain", *options]) == 0
        return capsys.readouterr().out.splitlines()

    monkeypatch.setattr("flows.run_control.prefect_api", contextlib.nullcontext)
    fill(database_url)
    simulated = make_config("sim-large:8b", 0.0)
    with session_scope(make_engine(database_url)) as session:
        scores = {simulated: {"exact_match": [1.0] * 8}}
        add_experiment(session, "demo", make_suite(8, name="toy-a"), scores, simulated=True)
    retrain("--include-simulated")
    answer = recommend("qa", candidates=[simulated.hash], database_url=database_url)
    assert answer.choice.config_hash == simulated.hash
    record_outcome(answer.id, quality=0.8, latency_s=1.4, database_url=database_url)
    said = retrain()
    assert said[0] == (
        "left out 1 recorded outcome on a config with no real run stored (SIMULATED: "
        "`evalflow retrain --include-simulated` learns from it)"
    )
    assert "outcome" not in said[1]  # the real generations alone
    said = retrain("--include-simulated")
    assert said[0].startswith("learned from 1 recorded outcome too (record_outcome)")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_retrain_with_its_line_and_no_crash_of_prefects(
    database_url, monkeypatch, capfd, signum, code
):
    """Newcomer F7: SIGTERM during the fit (systemd, a container's stop, a CI timeout)
    ended `retrain` with Prefect's "Crash detected!" ERROR lines and no word of its own;
    Ctrl-C printed them too, before its line. Both now say only its line, 130 or 143 as
    a shell reports them."""
    import io
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from flows.cli.app import ON_INTERRUPT

    fill(database_url)

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)  # its handler runs before the next line
        raise AssertionError(f"signal {signum} did not stop the fit")

    def not_taken(*args):  # here of old: a SIGTERM the command left to the process
        raise AssertionError("retrain did not take SIGTERM")

    monkeypatch.setattr("tasks.selector.train_and_maybe_promote", signalled)
    console = PrefectConsoleHandler(stream=io.StringIO())  # as Prefect's logging.yml sets
    logging.getLogger().addHandler(console)
    before = signal.signal(signal.SIGTERM, not_taken)
    try:
        assert main(["--database", database_url, "retrain", "-q"]) == code
        assert signal.getsignal(signal.SIGTERM) is not_taken  # put back
    finally:
        signal.signal(signal.SIGTERM, before)
        logging.getLogger().removeHandler(console)
    shown = console.stream.getvalue()
    assert "Crash" not in shown and "Crashed" not in shown, shown
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == ON_INTERRUPT["retrain"], err
