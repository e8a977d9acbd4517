"""The watch's rules have a version (``RULES``, beside them in evaluation/series/_watch.py)
that the kept verdicts carry: a change of the rules is a new version, so no reader goes on
reading what the old rules said. The verdicts on fixed series are pinned to the version,
so a change that moves any of them fails here until the version is raised."""

from __future__ import annotations

import hashlib

import evaluation.series._trends as trends
import evaluation.series._verdict as kept
from evaluation.series import series_verdict
from evaluation.series._watch import RULES
from evaluation.storage.baselines import accept_baseline
from evaluation.storage.db import make_engine, session_scope
from tests.support.series_db import CHANGING, CUT, add_nights

#: RULES -> the digest of the verdicts on the pinned series (``_verdicts``).
PINNED = {
    1: "b6bf83649476669f",
    2: "1f5e2dd8272a6f97",  # labels as `show` gives them
    3: "1f5e2dd8272a6f97",  # tokens/s: impossible values none, a case within 4x the median
    4: "1f5e2dd8272a6f97",  # a label's config change judged across, not restarted
    5: "1f5e2dd8272a6f97",  # a changed config's nights out of the reference once it moved
    6: "1f5e2dd8272a6f97",  # a speed alarm the machine's load explains set down
    # the same weights under a new server restart nothing; a new digest's first run is
    # judged across it (from 7 on, the pinned series include both, each with a drop)
    7: "d5f1e3d522e7aca0",
    # a run that said no digest between digests A and B hides no event (from 8 on, the
    # pinned series include it)
    8: "a25b93cedf009af8",
    # a new model's stream learns its spread with the runs before its event; its first
    # run, where those had not learned, judged by the run that first judges the new
    # model's stream (from 9 on, the pinned series include a new model on the third run)
    9: "4bc890bbcd616840",
    # a run accepted back at the level before an accepted drop goes back to it (from 10
    # on, the pinned series include one)
    10: "92272c97c35f20c0",
    # and the evidence of the nights of that level with them (the CUSUM restarts after them)
    11: "a520c17167309927",
    # a new model's first run judged against the runs up to the last that said the old
    # one, not a night that said nothing (from 12 on, the pinned series include one)
    12: "e632fff2e930634e",
    # a learning night that would have alarmed alone leaves the later nights' reference
    # and spread, as an alarmed night does (from 13 on, the pinned series include one)
    13: "d7656333ce1ab82e",
    # the one config of a model in a run and in the run before, under other labels, is one
    # stream judged across the edit (from 14 on, the pinned series include one)
    14: "04acfa5d6025c09e",
}


def _verdicts() -> str:
    """Every stream's nights as the watch judges them (alarm, judged, moved, partial,
    evidence and z to 2 decimals), its threshold and segment, on eleven fixed series: a
    drop and a slowdown; a drop whose alarmed night was accepted (its stream restarts);
    a partial (smoke) night; a good night accepted before a drop (its level confirmed);
    a drop with a server upgrade over the same weights; a drop with a new digest; a drop
    with a new digest after a run that said none; a drop with a new digest on the third
    run; a drop accepted, then a run back at the level before accepted; a new server
    version after a night that said nothing; a collapse on a learning night, repeated
    on a judged one; a one-config series whose num_predict is cut, its quality dropping."""
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 14, series="drop", drop_from=8, slow_from=11, seed=4)
        accepted = add_nights(session, 12, series="accepted", drop_from=7, seed=5)
        add_nights(session, 9, series="partial", partial=(6,), drop_from=8, seed=6)
        confirmed = add_nights(session, 12, series="confirmed", drop_from=8, seed=7)
        add_nights(session, 9, series="upgraded", server_from=7, drop_from=7, seed=8)
        add_nights(session, 9, series="new-digest", digest_from=7, drop_from=7, seed=9)
        add_nights(session, 9, series="unsaid", digest_from=7, drop_from=7, unsaid=(6,), seed=9)
        add_nights(session, 7, series="early", digest_from=2, drop_from=2, seed=10)
        back = add_nights(session, 7, series="back", drop_from=5, seed=1)
        back += add_nights(session, 4, series="back", first=7, seed=1)
        never = tuple(range(10))  # a server that says no digest, one night nothing at all
        add_nights(
            session, 10, series="quiet", server_from=9, drop_from=9, unsaid=never, quiet=(8,)
        )
        add_nights(session, 7, series="collapsed", collapsed=(2, 5), seed=11)
        one = {"configs": (CHANGING,), "edited_from": 7, "edited_as": CUT}
        add_nights(session, 9, series="cut", drop_from=7, seed=12, **one)
    with session_scope(engine) as session:
        accept_baseline(session, accepted[10])
        accept_baseline(session, confirmed[6])
        accept_baseline(session, back[6])  # a drop's level taken, then back at the old one
        accept_baseline(session, back[8])
    lines = []
    with session_scope(engine) as session:
        for series in (
            "drop",
            "accepted",
            "partial",
            "confirmed",
            "upgraded",
            "new-digest",
            "unsaid",
            "early",
            "back",
            "quiet",
            "collapsed",
            "cut",
        ):
            watch = trends.watch_series(session, series)
            for s in watch.streams:
                lines.append(f"{series} {s.label} {s.metric} {s.threshold:.3f} {s.segment_start}")
                lines += [
                    f"  {n.experiment} {n.alarm:d}{n.judged:d}{n.moved:d}{n.partial:d} "
                    f"{n.evidence:.2f} {'-' if n.z is None else f'{n.z:.2f}'}"
                    for n in s.nights
                ]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_the_verdicts_on_the_pinned_series_are_those_of_this_version_of_the_rules():
    digest = _verdicts()
    assert PINNED.get(RULES) == digest, (
        f"the watch's verdicts on the pinned series are not those pinned for RULES = {RULES}: "
        "if the rules changed, raise RULES in evaluation/series/_watch.py (the verdicts "
        f"kept under the old rules are then computed again) and pin {{{RULES + 1}: "
        f"{digest!r}}} here"
    )


def test_a_verdict_kept_under_other_rules_is_computed_again(monkeypatch):
    """`_FORMAT` in the bank's page had to be raised by hand when the rules changed;
    the kept verdict carries ``RULES`` instead, so another version computes it again."""
    computed = []
    watch = kept.watch_series

    def counted(*args, **kwargs):
        computed.append(args[1])
        return watch(*args, **kwargs)

    monkeypatch.setattr(kept, "watch_series", counted)
    engine = make_engine("sqlite://")
    with session_scope(engine) as session:
        add_nights(session, 6, series="a", seed=1)
    with session_scope(engine) as session:
        first = series_verdict(session, "a", None)
        assert series_verdict(session, "a", None) == first
    assert computed == ["a"]  # kept, then read back
    monkeypatch.setattr(kept, "RULES", RULES + 1)
    with session_scope(engine) as session:
        assert series_verdict(session, "a", None) == first
    assert computed == ["a", "a"]  # other rules: computed again
