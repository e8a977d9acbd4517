"""`evalflow baseline accept` says what accepting the run did to each of its series'
streams (201666f: a run in line with the reference confirms the level; one that alarmed
or moved beyond noise restarts its stream there)."""

from __future__ import annotations

from evaluation.storage.db import make_engine, session_scope
from flows.cli import main
from tests.support.series_db import add_nights


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
    assert main(["--database", url, "baseline", "accept", names[5]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{names[5]} is now the accepted baseline of wt (was {names[9]})",
        f"  confirmed level: 6 streams (each keeps its reference; its alarms up to {names[5]} "
        "acknowledged)",
    ]
    # the newcomer's F2 (stop 71): trends.md's example accepts names[9], which names[10]
    # has taught once since (2 more); the series' last run restarts them for all 3
    assert main(["--database", url, "baseline", "accept", names[10]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  learning again: 2 streams restarted; the watch learns the series' noise for 3 more "
        "full runs, and cannot alarm on them until then"
    )
