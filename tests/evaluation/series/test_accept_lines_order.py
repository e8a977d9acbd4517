"""The streams an accept's or a withdrawal's "now restarted at RUN" / "now confirmed at
RUN" lines name come in the series' order (recheck R8: they came in a set's hash order,
another on every invocation, where the lines above follow the series)."""

from __future__ import annotations

from types import SimpleNamespace

from evaluation.series._render import _changed_accepts


def test_the_streams_a_later_accept_now_restarts_are_named_in_the_series_order() -> None:
    keys = [(f"config-{i:02d}", metric) for i in range(12) for metric in ("contains", "em")]
    was = {k: SimpleNamespace(accepts=(("n06", None), ("n08", ""))) for k in keys}
    now = {k: SimpleNamespace(accepts=(("n06", "alarmed"), ("n08", "moved"))) for k in keys}
    names = {k: f"{k[1]} of {k[0]}" for k in keys}
    changed = _changed_accepts(was, now, set(keys), names, "n06")
    assert changed.keys == set(keys)
    assert changed.lines == [
        "now restarted at n08: 24 streams (moved): " + ", ".join(names[k] for k in keys)
    ]
