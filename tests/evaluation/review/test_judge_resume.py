"""An interrupted judge keeps what it completed and a rerun skips it (the newcomer's
22-minute run stored nothing on Ctrl-C and the rerun asked everything again); progress
lines while it runs; SIGTERM stops it as Ctrl-C does."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from evaluation.review.judging import judge_experiment
from evaluation.review.schema import Judgement
from tests.evaluation.test_judge import MODEL, _judge, grades_by_correctness
from tests.support.review_db import build_review_db
from tests.support.standin_ollama import StandInConfig, running_standin


class Recorder:
    """A progress listener that remembers what it was told and can stop the run (as
    Ctrl-C does: asyncio cancels the main task) after ``stop_after`` verdicts."""

    def __init__(self, engine, stop_after: int | None = None) -> None:
        self.engine = engine
        self.stop_after = stop_after
        self.task: asyncio.Task | None = None
        self.started: tuple[int, int] | None = None
        self.asked: str | None = None  # the judge whose server it waited on
        self.stored_rows: list[int] = []  # rows in the database at each completion

    def asking(self, judge: str) -> None:
        self.asked = judge

    def start(self, stored: int, todo: int) -> None:
        self.started = (stored, todo)

    def completed(self, scored: bool) -> None:
        with Session(self.engine) as session:
            self.stored_rows.append(session.exec(select(func.count(Judgement.id))).one())
        if len(self.stored_rows) == self.stop_after:
            self.task.cancel()


def _judging(db, server, recorder, **kw):
    async def go():
        async with _judge(server) as judge:
            recorder.task = asyncio.ensure_future(
                judge_experiment(
                    db.engine, db.experiment, judge, concurrency=1, progress=recorder, **kw
                )
            )
            return await recorder.task

    return asyncio.run(go())


def _rows(engine) -> list[Judgement]:
    with Session(engine) as session:
        return session.exec(select(Judgement)).all()


def test_an_interrupted_judge_keeps_its_verdicts_and_a_rerun_skips_them(database_url):
    # 2 configs x 3 cases: 6 grades (1 call each) and 3 pairs (2 calls each), 9 verdicts
    db = build_review_db(database_url, n_cases=3, temperatures=(0.0, 0.7))
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:
        first = Recorder(db.engine, stop_after=7)  # every grade and one pair
        with pytest.raises(asyncio.CancelledError):
            _judging(db, server, first)
        assert server.stats.requests == 6 + 2
        rows = _rows(db.engine)
        assert len(rows) == 6 * 3 + 1 * 2  # nothing completed was lost
        assert first.started == (0, 9)

        again = Recorder(db.engine)
        run = _judging(db, server, again)
        assert again.started == (7, 2)  # said how many were already done
        assert server.stats.requests == 8 + 2 * 2  # only the two pairs left
    assert run.already_stored == 7
    assert (run.generations, run.scored, run.pairs, run.pairs_judged) == (6, 6, 3, 3)
    assert len(_rows(db.engine)) == 6 * 3 + 3 * 2  # no verdict twice


def test_a_rerun_with_every_verdict_stored_does_not_wait_on_the_server(database_url):
    """It waited ~40 s on a busy server, silently, to then ask it nothing: with every
    verdict stored it says so and never calls the server (here gone: it would fail)."""
    from evaluation.review.progress import JudgeProgress

    db = build_review_db(database_url, n_cases=2, temperatures=(0.0, 0.7))
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:
        first = Recorder(db.engine)
        _judging(db, server, first, waiting_line_after_s=0)  # as a silent server would
    assert first.asked == f"ollama:{MODEL}"  # said it was waiting on the server
    lines: list[str] = []
    again = Recorder(db.engine)
    again.start = lambda stored, todo: JudgeProgress(lines.append).start(stored, todo)
    run = _judging(db, server, again)  # the server is down now
    assert again.asked is None and run.already_stored == 6
    assert lines == ["all 6 verdicts already stored; nothing to ask the judge"]


def test_verdicts_are_stored_as_they_complete_not_at_the_end(database_url):
    """A kill -9 loses at most the batch not yet flushed: with flushing at every
    completion, each verdict is in the database when the next is asked."""
    db = build_review_db(database_url, n_cases=2, temperatures=(0.0, 0.7))
    config = StandInConfig(models=(MODEL,), reply=grades_by_correctness)
    with running_standin(config) as server:
        recorder = Recorder(db.engine)
        _judging(db, server, recorder, flush_every_s=0)
    assert recorder.stored_rows == [3, 6, 9, 12, 14, 16]  # 4 grades x 3 criteria, 2 pairs


def test_progress_lines_say_done_total_rate_and_eta_at_most_every_interval():
    from evaluation.review.progress import JudgeProgress

    lines: list[str] = []
    now = [0.0]
    progress = JudgeProgress(lines.append, interval_s=30, clock=lambda: now[0])
    progress.start(3, 10)
    assert lines == ["3 of 13 verdicts already stored (skipped); judging the other 10"]
    for t, scored in ((10, True), (20, False), (31, True), (40, True)):
        now[0] = t
        progress.completed(scored)
    assert lines[1:] == ["3/10 verdicts (30%), 5.8/min, ETA 1 min 13 s, 1 unscored"]
    JudgeProgress(lines.append).start(0, 5)  # a first run says nothing yet
    assert len(lines) == 2


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_stops_the_judge_as_ctrl_c_does(sigint):
    """Without the handler SIGTERM killed the process where it stood (nothing stored);
    with it asyncio cancels the run, whose cleanup (storing) runs, then Ctrl-C's exit.
    Also when a shell started the judge in the background, which ignores SIGINT (CI:
    "DID NOT RAISE KeyboardInterrupt")."""
    from flows.cli._signals import StoppedBySignal, stop_signals_as_interrupt

    before = signal.getsignal(signal.SIGINT)
    handler = signal.SIG_IGN if sigint == "ignored" else signal.default_int_handler
    signal.signal(signal.SIGINT, handler)

    cleaned = []

    async def judge():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    try:
        with pytest.raises(StoppedBySignal) as stopped, stop_signals_as_interrupt():
            asyncio.run(judge())
        assert stopped.value.signum == signal.SIGTERM  # so the command exits 143
        assert signal.getsignal(signal.SIGINT) is handler  # as it was
    finally:
        signal.signal(signal.SIGINT, before)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("hangup", ["default", "ignored"])
def test_sighup_stops_the_block_as_sigterm_does_unless_ignored(hangup):
    """SIGHUP (the terminal closed) killed `judge`, `rescore` and `retrain` where they
    stood (129, nothing stored, no line); now it stops the block as SIGTERM does and the
    command exits 129. One ignored from the start (``nohup``) stays ignored."""
    from flows.cli._signals import StoppedBySignal, exit_code, stop_signals_as_interrupt

    ignored = hangup == "ignored"
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN if ignored else signal.SIG_DFL)
    cleaned = []

    async def judge():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.sleep(0 if ignored else 30)
        finally:
            cleaned.append(True)

    try:
        if ignored:
            with stop_signals_as_interrupt():
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
                asyncio.run(judge())  # goes on to its end
        else:
            with pytest.raises(StoppedBySignal) as stopped, stop_signals_as_interrupt():
                asyncio.run(judge())
            assert exit_code(stopped.value) == 129
        assert signal.getsignal(signal.SIGHUP) is (signal.SIG_IGN if ignored else signal.SIG_DFL)
    finally:
        signal.signal(signal.SIGHUP, before)
    assert cleaned == [True]


def test_ctrl_c_in_the_block_stays_ctrl_c():
    """Only SIGTERM turns the interrupt into 143: Ctrl-C keeps 130."""
    from flows.cli._signals import exit_code, stop_signals_as_interrupt

    with pytest.raises(KeyboardInterrupt) as stopped, stop_signals_as_interrupt():
        raise KeyboardInterrupt
    assert exit_code(stopped.value) == 130


@pytest.mark.parametrize(
    ("signum", "sigint", "code"),
    [
        (signal.SIGTERM, signal.default_int_handler, 143),
        (signal.SIGINT, signal.SIG_IGN, 130),  # a script's background judge, `kill -INT`
    ],
)
def test_a_signal_on_the_judge_command_stops_it_and_a_rerun_asks_only_the_rest(
    database_url, capsys, signum, sigint, code
):
    """`evalflow judge` exited 130 on SIGTERM, as on Ctrl-C: `run` exits 128 + the
    signal (143), which a supervisor tells apart. What was completed is kept, the rerun
    asks only for the rest, no verdict twice. A judge started with SIGINT ignored (a
    script's background job) ignored `kill -INT` and judged on to the end (exit 0); it
    takes it now, as `run` does."""
    from flows.cli import main
    from tests.support.processes import sigint_at_start

    db = build_review_db(database_url, n_cases=3, temperatures=(0.0, 0.7))
    calls = []

    def signalled_at_the_fourth(model, messages):
        calls.append(model)
        if len(calls) == 4:
            os.kill(os.getpid(), signum)
        return grades_by_correctness(model, messages)

    command = ["--database", database_url, "judge", db.experiment, "--model", MODEL]
    command += ["--kind", "ollama", "--concurrency", "1"]
    standin = StandInConfig(models=(MODEL,), reply=signalled_at_the_fourth)
    with running_standin(standin) as server, sigint_at_start(sigint):
        assert main([*command, "--url", server.url]) == code
        assert signal.getsignal(signal.SIGINT) is sigint  # as it was
        assert (
            capsys.readouterr()
            .err.strip()
            .endswith("interrupted: rerun the same command to resume (verdicts stored are skipped)")
        )
        kept = len(_rows(db.engine))
        assert 3 * 3 <= kept < 6 * 3 + 3 * 2  # the three grades before it, at least
        assert main([*command, "--url", server.url]) == 0
    err = capsys.readouterr().err
    assert "of 9 verdicts already stored (skipped)" in err
    rows = _rows(db.engine)
    assert len(rows) == 6 * 3 + 3 * 2  # every verdict once
    assert len(calls) <= 12 + 1  # at most the request the signal cut off asked again
