"""Comparability events: where two consecutive points of a series did not run the same
thing, said in the watch's events. Which of them restart the watch (``restarts``): a
suite change (nothing is compared across it) and a change of a model's weights, or one
whose weights are not known to be the same (a new digest, or a server that does not say),
after which the watch learns the new model's level afresh, its first run judged against
the runs before (``_across``). A server's version, a quantisation or a context length
that changed over the same weights' digest restarts nothing: the stream goes on, judged
across it as any night (a server upgrade that made the same model worse alarms)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import pairwise
from typing import Literal

from evaluation.printable import printable
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
    ``after`` (for a model event, ``model`` on ``host``). ``weights``: the model's digest
    in both runs, where both recorded the same one (a model event but a digest change)."""

    experiment: str
    previous: str
    time: datetime
    kind: EventKind
    before: str
    after: str
    model: str = ""
    host: str = ""
    weights: str = ""

    @property
    def restarts(self) -> bool:
        """Whether the watch starts afresh after it: a suite change, or a model event
        over weights not known to be the same. The same weights under a new server
        version are the same model: restarting there learned a worse server's level as
        the normal one and never alarmed (newcomers' M9)."""
        return not self.weights

    @property
    def message(self) -> str:
        """The change, and what the watch does across it: the same weights, compared
        across as any night; another model, learned afresh, its first run judged against
        the runs before (``_across``); nothing compared across a suite change."""
        if self.weights:
            return f"{self.change}, the same weights ({_short(self.weights)}): compared across"
        if self.model:
            return f"{self.change}: learned afresh; its first run judged across it"
        return f"{self.change}: not compared across"

    @property
    def change(self) -> str:
        """What changed, between which runs; what a server or a spec said escaped
        (``printable``: a server version holding an escape sequence is shown as text)."""
        subject = {
            "suite_changed": "suite digest",
            "model_digest_changed": "model digest",
            "quantization_changed": "quantisation",
            "server_version_changed": "server version",
            "context_length_changed": "context length",
        }[self.kind]
        where = f" of {self.model} on {self.host}" if self.model else ""
        return printable(
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
    add = partial(SeriesEvent, after.experiment, before.experiment, after.time)

    if before.suite != after.suite:
        out.append(add("suite_changed", before.suite, after.suite))
    elif digests_differ(before.suite_digest, after.suite_digest):
        out.append(add("suite_changed", before.suite_digest, after.suite_digest))
    old = {(m.host, m.model): m for m in before.models}
    for m in after.models:
        prior = old.get((m.host, m.model)) or _same_model(before.models, m)
        if prior is None:
            continue
        weights = m.digest if prior.digest and prior.digest == m.digest else ""
        changes: tuple[tuple[EventKind, str, str], ...] = (
            ("model_digest_changed", prior.digest, m.digest),
            ("quantization_changed", prior.quantization, m.quantization),
            ("server_version_changed", prior.server_version, m.server_version),
            ("context_length_changed", _ctx(prior), _ctx(m)),
        )
        out += [add(k, a, b, m.model, m.host, weights) for k, a, b in changes if a and b and a != b]
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
