"""Comparability events: where two consecutive points of a series did not run the same
thing. A point after an event is never compared with a point before it as if nothing
had changed: the watch starts a new segment there and says what changed (after a
model's event, the first run's change against the runs before is shown: ``_across``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Literal

from evaluation.series._digest import digests_differ
from evaluation.series._series import ModelRan, SeriesPoint

EventKind = Literal[
    "suite_changed",
    "model_digest_changed",
    "quantization_changed",
    "server_version_changed",
    "context_length_changed",
]


@dataclass(frozen=True)
class SeriesEvent:
    """Between ``previous`` and ``experiment``: ``what`` changed from ``before`` to
    ``after`` (for a model event, ``model`` on ``host``)."""

    experiment: str
    previous: str
    time: datetime
    kind: EventKind
    before: str
    after: str
    model: str = ""
    host: str = ""

    @property
    def message(self) -> str:
        """The change, and what the watch does across it: after a model's event it
        learns afresh, its first run's change against the runs before shown, not judged
        (``_across``); nothing is compared across a suite change."""
        if self.model:
            return f"{self.change}: learned afresh; the first run's change across it shown"
        return f"{self.change}: not compared across"

    @property
    def change(self) -> str:
        """What changed, between which runs."""
        subject = {
            "suite_changed": "suite digest",
            "model_digest_changed": "model digest",
            "quantization_changed": "quantisation",
            "server_version_changed": "server version",
            "context_length_changed": "context length",
        }[self.kind]
        where = f" of {self.model} on {self.host}" if self.model else ""
        return (
            f"{subject}{where} changed from {_short(self.before)} to {_short(self.after)} "
            f"between {self.previous} and {self.experiment}"
        )


def _short(value: str) -> str:
    if value.startswith("sha256:"):
        value = value[7:]
    return value[:12] if len(value) == 64 else (value or "(unknown)")


def events_between(before: SeriesPoint, after: SeriesPoint) -> list[SeriesEvent]:
    """What makes ``after`` not comparable with ``before``. A fact either run did not
    record (an older run, a server that does not say) is not an event: unknown is not
    a change."""
    out: list[SeriesEvent] = []

    def add(kind: EventKind, old: str, new: str, model: str = "", host: str = "") -> None:
        out.append(
            SeriesEvent(
                after.experiment, before.experiment, after.time, kind, old, new, model, host
            )
        )

    if before.suite != after.suite:
        add("suite_changed", before.suite, after.suite)
    elif digests_differ(before.suite_digest, after.suite_digest):
        add("suite_changed", before.suite_digest, after.suite_digest)
    old = {(m.host, m.model): m for m in before.models}
    for m in after.models:
        prior = old.get((m.host, m.model)) or _same_model(before.models, m)
        if prior is None:
            continue
        for kind, a, b in (
            ("model_digest_changed", prior.digest, m.digest),
            ("quantization_changed", prior.quantization, m.quantization),
            ("server_version_changed", prior.server_version, m.server_version),
            ("context_length_changed", _ctx(prior), _ctx(m)),
        ):
            if a and b and a != b:
                add(kind, a, b, m.model, m.host)
    return out


def _same_model(models: Sequence[ModelRan], m: ModelRan) -> ModelRan | None:
    """The same model on another host when the hosts were renamed or moved: one only."""
    found = [o for o in models if o.model == m.model]
    return found[0] if len(found) == 1 else None


def _ctx(m: ModelRan) -> str:
    return "" if m.context_length is None else str(m.context_length)


def series_events(points: Sequence[SeriesPoint]) -> list[SeriesEvent]:
    """Every comparability event of a series, oldest first."""
    return [e for a, b in pairwise(points) for e in events_between(a, b)]
