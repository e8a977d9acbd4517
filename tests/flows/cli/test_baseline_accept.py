"""`evalflow baseline accept` says what accepting the run did to each of its series'
streams (201666f: a run in line with the reference confirms the level; one that alarmed
or moved beyond noise restarts its stream there); every accept stays in effect, applied
in the series' order (recheck R5: a later accept forgot an earlier one's restart)."""

from __future__ import annotations

from sqlalchemy import select

from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.models import Experiment
from flows.cli import main
from tests.support.series_db import add_nights

IN_ORDER = "every accept stays in effect, applied in the series' order"


def test_accepting_a_run_says_which_streams_it_confirmed_and_which_it_restarted(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="wt", drop_from=8, seed=1)
    capsys.readouterr()
    assert main(["--database", url, "baseline", "accept", names[9]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{names[9]} is now the accepted baseline of wt",
        f"  confirmed level: 4 streams (each keeps its reference; its alarms up to {names[9]} "
        "acknowledged)",
        f"  restarted at {names[9]}: 1 stream (evidence past half its threshold): exact_match "
        "of t=0",  # named as `show` names it: the one model is not repeated
        f"  restarted at {names[9]}: 1 stream (alarmed): exact_match of t=0.7",
        # the newcomer's F11: a restarted stream is blind while it learns anew
        "  learning again: 2 streams restarted; the watch learns the series' noise for 2 more "
        "full runs, and cannot alarm on them until then",
    ]
    # an earlier run accepted after a later one: both stay, the later one the baseline
    assert main(["--database", url, "baseline", "accept", names[5]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{names[5]} is accepted in wt; {names[9]}, a later run accepted before, stays its "
        f"baseline; {IN_ORDER}",
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {names[5]} "
        "acknowledged)",
    ]
    # the series' last run, in line with names[9]'s restart (still learning): confirmed,
    # names[9]'s restart kept (applied alone, it restarted both streams there again)
    assert main(["--database", url, "baseline", "accept", names[10]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{names[10]} is now the accepted baseline of wt (was {names[9]}; {IN_ORDER})",
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {names[10]} "
        "acknowledged)",
    ]


def test_accepting_the_last_run_restarts_its_streams_for_every_learning_run(tmp_path, capsys):
    """The newcomer's F2 (stop 71): trends.md's example accepts names[9], which names[10]
    has taught once since (2 more); the series' last run restarts them for all 3."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="wt", drop_from=8, seed=1)
    assert _lines(url, capsys, "baseline", "accept", names[10])[-1] == (
        "  learning again: 2 streams restarted; the watch learns the series' noise for 3 more "
        "full runs, and cannot alarm on them until then"
    )


def _lines(url: str, capsys, *args: str) -> list[str]:
    capsys.readouterr()
    main(["--database", url, *args])
    return capsys.readouterr().out.splitlines()


def _since(url: str, capsys) -> list[str]:
    """The `trends` headings of the streams that start elsewhere than their config's."""
    return [line for line in _lines(url, capsys, "trends", "ac") if line.startswith("  (")]


def test_an_accept_back_at_the_level_before_an_accepted_drop_keeps_the_history(tmp_path, capsys):
    """R5: nights 5-6 degraded, accepted at 6 (its level taken), back to normal from 7;
    accepting night 8 (`learning: moved` against night 6's level) restarted there on
    nothing: the watch applied the last accept alone, to the whole history, where night 8
    was in line with nights 0-4, and night 6's restart was gone (nights 5-6 judged again).
    Then it restarted at night 8 (moved while learning): learning anew, blind for a run,
    nights 0-4 lost. Now night 8, in line with nights 0-4, goes back to that level: the
    stream is judged against nights 0-4 again, the nights of the level given up (5-7)
    left out of its reference, nothing to learn."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 7, series="ac", drop_from=5, seed=1)
        names += add_nights(session, 4, series="ac", first=7, seed=1)  # back to normal
    assert _lines(url, capsys, "baseline", "accept", names[6])[-1] == (
        f"  restarted at {names[6]}: 1 stream (evidence past half its threshold): exact_match "
        "of t=0.7"
    )
    assert _since(url, capsys) == [
        f"  (exact_match since {names[6]}, 5 runs: its level accepted there)"
    ]
    assert _lines(url, capsys, "baseline", "accept", names[8]) == [
        f"{names[8]} is now the accepted baseline of ac (was {names[6]}; {IN_ORDER})",
        f"  confirmed level: 5 streams (each keeps its reference; its alarms up to {names[8]} "
        "acknowledged)",
        f"  back at {names[8]}: 1 stream to its level before {names[5]} ({names[5]}…{names[7]} "
        "left out of its reference): exact_match of t=0.7",
    ]
    assert _since(url, capsys) == []  # every stream since the series' first run
    trends = _lines(url, capsys, "trends", "ac")
    assert not any("learning" in line for line in trends)  # judged: nothing to learn


def test_an_accept_back_the_night_after_a_one_night_drop_goes_back_to_the_level(tmp_path, capsys):
    """Newcomers' R3 (the trends.md "Try it" series: the simulated backend answers alike
    every night, one night degraded, then the normal spec again): accepting the degraded
    night restarted its stream (evidence past half its threshold); accepting the next
    night, alike to nights 0-4, restarted it again ("moved while learning": the degraded
    night was left out of its reference but its evidence carried to the next night),
    learning anew, blind for 3 runs. Now it goes back to that level."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = []
        for night in range(7):  # each night drawn alike, night 5 worse
            dropped = 5 if night == 5 else None
            names += add_nights(
                session, 1, series="ac", first=night, drop_from=dropped, drop=0.7, seed=2
            )
    assert _lines(url, capsys, "baseline", "accept", names[5])[-2] == (
        f"  restarted at {names[5]}: 1 stream (evidence past half its threshold): exact_match "
        "of t=0.7"
    )
    assert _lines(url, capsys, "baseline", "accept", names[6])[1:] == [
        f"  confirmed level: 5 streams (each keeps its reference; its alarms up to {names[6]} "
        "acknowledged)",
        f"  back at {names[6]}: 1 stream to its level before {names[5]} ({names[5]} left out "
        "of its reference): exact_match of t=0.7",
    ]
    assert _since(url, capsys) == []  # every stream since the series' first run
    assert not any("learning" in line for line in _lines(url, capsys, "trends", "ac"))


def test_an_accept_in_line_with_an_earlier_restart_confirms_it(tmp_path, capsys):
    """The drop persists: night 6's accept took its level; night 8, in line with it,
    confirms it (the stream still starts at night 6), where applying night 8's accept
    alone to the whole history restarted nothing and judged every night from night 0."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="ac", drop_from=5, seed=1)
    _lines(url, capsys, "baseline", "accept", names[6])
    assert _lines(url, capsys, "baseline", "accept", names[8]) == [
        f"{names[8]} is now the accepted baseline of ac (was {names[6]}; {IN_ORDER})",
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {names[8]} "
        "acknowledged)",
    ]
    since = [f"  (exact_match since {names[6]}, 5 runs: its level accepted there)"]
    assert _since(url, capsys) == since
    trends = _lines(url, capsys, "trends", "ac")
    assert trends[0].endswith(f", baseline {names[8]}")  # the latest accepted run

    # the same run again: nothing changes, and it says so
    with session_scope(make_engine(url)) as session:
        stamp = session.exec(select(Experiment.updated_at).where(Experiment.name == names[8]))
        before = stamp.one()
    again = _lines(url, capsys, "baseline", "accept", names[8])
    assert again[0] == f"{names[8]} is already the accepted baseline of ac: nothing changed"
    with session_scope(make_engine(url)) as session:
        stamp = session.exec(select(Experiment.updated_at).where(Experiment.name == names[8]))
        assert stamp.one() == before
    assert _lines(url, capsys, "baseline", "accept", names[6])[0] == (
        f"{names[6]} is already accepted in ac (its baseline is {names[8]}, a later run): "
        "nothing changed"
    )
    assert _lines(url, capsys, "trends", "ac") == trends
    # gate of the baseline itself: accepting another run no longer makes it the baseline
    # unless it is a later one (the advice said "or accept another"); an earlier one named
    assert main(["--database", url, "gate", names[8]]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: no baseline for {names[8]!r}: {names[8]!r} is itself the accepted baseline "
        f"of series 'ac'; name another with --baseline EXPERIMENT ({names[6]}, accepted "
        "before it)"
    )


def test_accepts_act_in_the_series_order_whichever_was_made_first(tmp_path, capsys):
    """Accepting night 8 and then night 6 (out of order) leaves the watch as accepting 6
    and then 8 does; a run of another series accepted meanwhile changes nothing here."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="ac", drop_from=5, seed=1)
        other = add_nights(session, 5, series="bc", seed=2)
    _lines(url, capsys, "baseline", "accept", names[8])
    assert _lines(url, capsys, "baseline", "accept", other[4]) == [
        f"{other[4]} is now the accepted baseline of bc",
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {other[4]} "
        "acknowledged)",
    ]
    assert _lines(url, capsys, "baseline", "accept", names[6])[:2] == [
        f"{names[6]} is accepted in ac; {names[8]}, a later run accepted before, stays its "
        f"baseline; {IN_ORDER}",
        f"  confirmed level: 5 streams (each keeps its reference; its alarms up to {names[6]} "
        "acknowledged)",
    ]
    assert _since(url, capsys) == [
        f"  (exact_match since {names[6]}, 5 runs: its level accepted there)"
    ]
    assert _lines(url, capsys, "trends", "ac")[0].endswith(f", baseline {names[8]}")
    assert _lines(url, capsys, "trends", "bc")[0].endswith(f", baseline {other[4]}")


def test_trends_on_a_read_only_share_says_where_an_accept_must_run(tmp_path, capsys, monkeypatch):
    """Leftover of R5's stop: `trends` on a copy in a read-only folder (read as a
    snapshot), or a mode=ro URL, advised accepting a run, which is refused there (it
    stores the choice); it says where it must run, as `gate` does (a6329c36). A writable
    database's advice is unchanged. ``os.access`` stands in for the permissions root
    does not have."""
    import os
    import sqlite3

    built = tmp_path / "series.db"
    url = f"sqlite:///{built}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 11, series="wt", drop_from=8, seed=1)
    _lines(url, capsys, "baseline", "accept", names[5])  # before the alarms on 8 and 9
    advice = f"accept {names[9]} or a later run at it"
    plain = [line for line in _lines(url, capsys, "trends", "wt") if line.startswith("note: ")]
    assert plain[-1].endswith(advice), plain
    shared = tmp_path / "shared"  # a teammate's copy, all in the file, in WAL mode
    shared.mkdir()
    path = shared / "series.db"
    sqlite3.connect(built).execute("PRAGMA wal_checkpoint(TRUNCATE)").connection.close()
    path.write_bytes(built.read_bytes())
    access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode: not (mode & os.W_OK and p == shared) and access(p, mode),
    )
    shares = {
        f"sqlite:///{path}": f"{path} is read-only here: its folder is read-only)",
        f"sqlite:///file:{built}?mode=ro&uri=true": (
            f"{built} is read-only here: its URL opens it read-only (mode=ro))"
        ),
    }
    for share, why in shares.items():
        monkeypatch.setenv("COLUMNS", "1000")  # the note on one line
        notes = [line for line in _lines(share, capsys, "trends", "wt") if line.startswith("note")]
        assert notes[-1].endswith(
            f"{advice}, with `evalflow baseline accept` where the results database may be "
            f"written (it stores the choice; {why}"
        ), notes


def test_an_accept_out_of_order_says_what_the_later_accept_now_does(tmp_path, capsys):
    """Recheck R4: night 8 accepted (in line: confirmed), then night 6 (the drop's level
    taken there): night 8's accept then restarted exact_match of t=0.7 (moved while
    learning against night 6's level), which the accept did not say. It now goes back to
    the level before the drop, and the accept says so."""
    url = f"sqlite:///{tmp_path / 'series.db'}"
    with session_scope(make_engine(url)) as session:
        names = add_nights(session, 7, series="ac", drop_from=5, seed=1)
        names += add_nights(session, 4, series="ac", first=7, seed=1)  # back to normal
    assert _lines(url, capsys, "baseline", "accept", names[8])[1:] == [
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {names[8]} "
        "acknowledged)",
    ]
    assert _lines(url, capsys, "baseline", "accept", names[6])[2:] == [
        f"  restarted at {names[6]}: 1 stream (evidence past half its threshold): exact_match "
        "of t=0.7",
        f"  now back at {names[8]}: 1 stream to its level before {names[5]} "
        f"({names[5]}…{names[7]} left out of its reference): exact_match of t=0.7",
    ]
    assert _since(url, capsys) == []
