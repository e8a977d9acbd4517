"""`evalflow baseline withdraw RUN` undoes a mistaken accept: since every accept stays in
effect (678b48ce, recheck R5), accepting the right run no longer replaced a wrong one.
Withdrawing clears that run's accept; the series' streams are judged as the accepts that
remain say, and the latest run still accepted is the baseline."""

from __future__ import annotations

from fastapi.testclient import TestClient

from evaluation.storage.baselines import withdraw_baseline
from evaluation.storage.db import make_engine, session_scope
from evaluation.view.app import create_app
from flows.cli import main
from tests.support.series_db import add_nights

IN_ORDER = "the other accepts stay in effect, applied in the series' order"


def _run(url: str, capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["--database", url, *args])
    return rc, capsys.readouterr().out.splitlines()


def _readers(url: str, capsys, last: str) -> dict[str, object]:
    """What trends, gate (against the series' baseline) and the monitor's series page
    say of series wt."""
    page = TestClient(create_app(make_engine(url))).get("/series/wt")
    return {
        "trends": _run(url, capsys, "trends", "wt"),
        "gate": _run(url, capsys, "gate", last),
        "monitor": (page.status_code, page.text),
    }


def test_a_mistaken_accept_withdrawn_leaves_every_reader_as_if_it_was_never_made(
    tmp_path, capsys, monkeypatch
):
    """wt-night-03 accepted (right), then wt-night-09 by mistake (inside a drop: it
    restarts the dropped stream there, hiding the drop, and becomes the baseline the gate
    compares with). Accepting wt-night-03 again changes nothing; withdrawing wt-night-09
    brings trends, gate and the monitor's page back to what they said before it."""
    monkeypatch.setenv("COLUMNS", "1000")
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="wt", drop_from=8, seed=1)
    assert _run(url, capsys, "baseline", "accept", names[3])[0] == 0
    right = _readers(url, capsys, names[10])
    assert right["trends"][1][0].endswith(f", baseline {names[3]}")

    assert _run(url, capsys, "baseline", "accept", names[9])[0] == 0
    wrong = _readers(url, capsys, names[10])
    assert wrong["trends"][1][0].endswith(f", baseline {names[9]}")
    for reader in right:
        assert wrong[reader] != right[reader], reader
    # accepting the right run again no longer undoes it
    assert _run(url, capsys, "baseline", "accept", names[3])[1][0] == (
        f"{names[3]} is already accepted in wt (its baseline is {names[9]}, a later run): "
        "nothing changed"
    )

    assert _run(url, capsys, "baseline", "withdraw", names[9]) == (
        0,
        [
            f"{names[9]} is no longer accepted in wt; its baseline is now {names[3]} (was "
            f"{names[9]}); {IN_ORDER}",
            f"  confirmed level withdrawn: 4 streams (its alarms up to {names[9]} no longer "
            "acknowledged by it)",
            f"  restart at {names[9]} withdrawn: 1 stream (evidence past half its threshold), "
            f"judged from {names[0]} again: exact_match of t=0",
            f"  restart at {names[9]} withdrawn: 1 stream (alarmed), judged from {names[0]} "
            "again: exact_match of t=0.7",
            f"  alarm no longer acknowledged: 1 stream: exact_match of t=0.7 (alarm on {names[9]})",
        ],
    )
    assert _readers(url, capsys, names[10]) == right

    # withdrawn twice, or a run never accepted: refused, nothing written (the corpus has
    # the one-line form: verb-baseline-withdraw-not-accepted)
    for run in (names[9], names[5]):
        assert main(["--database", url, "baseline", "withdraw", run]) == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"error: {run} is not accepted in wt: nothing to withdraw (its accepted runs: "
            f"{names[3]})"
        )
    # the last accept withdrawn: no baseline, as before any accept
    assert _run(url, capsys, "baseline", "withdraw", names[3])[1][0] == (
        f"{names[3]} is no longer accepted in wt; wt has no accepted baseline now"
    )
    assert main(["--database", url, "gate", names[10]]) == 2
    assert "series 'wt' has no accepted baseline" in capsys.readouterr().err


def test_withdrawing_the_middle_of_three_accepts_applies_the_other_two_alone(tmp_path, capsys):
    """R5's series (nights 5-6 degraded, back to normal from 7), accepted at 3, 6 and 8:
    night 6's accept restarted the degraded stream there, and night 8's went back to the
    level before the drop. Withdrawing night 6 says night 8 now confirms the level (in
    line with nights 0-4), and the watch is that of accepting 3 and 8 alone."""
    built = {}
    for db, accepts in (("three", (3, 6, 8)), ("two", (3, 8))):
        url = f"sqlite:///{tmp_path / db}.db"
        with session_scope(make_engine(url)) as session:
            names = add_nights(session, 7, series="ac", drop_from=5, seed=1)
            names += add_nights(session, 4, series="ac", first=7, seed=1)  # back to normal
        for night in accepts:
            assert _run(url, capsys, "baseline", "accept", names[night])[0] == 0
        built[db] = url
    with session_scope(make_engine(built["three"])) as session:
        checked = withdraw_baseline(session, names[6], write=False)  # the Python API
    assert (checked.baseline, checked.was_baseline, checked.others) == (
        names[8],
        False,
        (names[3], names[8]),
    )
    assert _run(built["three"], capsys, "baseline", "withdraw", names[6]) == (
        0,
        [
            f"{names[6]} is no longer accepted in ac; its baseline stays {names[8]}; {IN_ORDER}",
            f"  confirmed level withdrawn: 5 streams (its alarms up to {names[6]} no longer "
            "acknowledged by it)",
            f"  restart at {names[6]} withdrawn: 1 stream (evidence past half its threshold), "
            f"judged from {names[0]} again: exact_match of t=0.7",
            f"  now confirmed at {names[8]}: 1 stream: exact_match of t=0.7",
        ],
    )
    three = _run(built["three"], capsys, "trends", "ac")[1]
    two = _run(built["two"], capsys, "trends", "ac")[1]
    assert three[0].endswith(f", baseline {names[8]}")
    assert three[1:] == two[1:]  # the first line says when the last run started


def test_a_read_only_url_is_refused_before_the_series_is_watched(tmp_path, capsys, monkeypatch):
    """Stop 72's leftover: withdraw on a mode=ro URL watched the series (seconds) before
    its write was refused, and so did accept before a later accepted run; both are
    refused up front now, in the words of accept's refused write."""
    import evaluation.series

    path = tmp_path / "series.db"
    with session_scope(make_engine(f"sqlite:///{path}")) as session:
        names = add_nights(session, 4, series="ro", seed=1)
    assert _run(f"sqlite:///{path}", capsys, "baseline", "accept", names[3])[0] == 0

    def watched(*args: object, **kwargs: object) -> None:
        raise AssertionError("the series was watched before the write was refused")

    monkeypatch.setattr(evaluation.series, "watch_series", watched)
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    for action in (("withdraw", names[3]), ("accept", names[1])):
        assert main(["--database", read_only, "baseline", *action]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: the results database file:{path}: it is read-only (attempt to write a "
            "readonly database): its URL opens it read-only (mode=ro); drop mode=ro from the "
            "URL to write to it"
        ]
