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
from dataclasses import dataclass, replace
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
    """Every comparability event of a series, oldest first. Each run is compared with
    what the runs before it last said (``_known``): a run that did not say a fact (a
    server that did not answer, a model not run that night) hides no change across it.
    Digest A, a night with none, digest B read as no event at all, so B's first run was
    never judged against A's (recheck's R4); now the event is at B's first run, between
    the last run that said A and it."""
    out: list[SeriesEvent] = []
    said: dict[tuple[str, str], tuple[ModelRan, dict[str, str]]] = {}
    suite = ("", "")  # the last suite digest said, and the run that said it
    for a, b in pairwise(points):
        suite = (a.suite_digest, a.experiment) if a.suite_digest else suite
        said = _known(a, said)
        before = replace(a, suite_digest=suite[0], models=tuple(m for m, _ in said.values()))
        for event in events_between(before, b):
            if event.kind == "suite_changed" and a.suite == b.suite:
                event = replace(event, previous=suite[1])
            elif event.model:
                _, sources = said.get((event.host, event.model), (None, {}))
                event = replace(event, previous=sources.get(event.kind, a.experiment))
            out.append(event)
    return out


_FACTS: tuple[tuple[EventKind, str], ...] = (
    ("model_digest_changed", "digest"),
    ("quantization_changed", "quantization"),
    ("server_version_changed", "server_version"),
    ("context_length_changed", "context_length"),
)


def _known(
    point: SeriesPoint, said: dict[tuple[str, str], tuple[ModelRan, dict[str, str]]]
) -> dict[tuple[str, str], tuple[ModelRan, dict[str, str]]]:
    """What the runs up to ``point`` last said of each model on each host, and which run
    said each fact (by event kind): ``point``'s own models first, each fact it did not
    say taken from ``said``, then the models of ``said`` whose name ``point`` did not
    run (a model on a renamed host is ``point``'s only)."""
    out = {}
    for m in point.models:
        old, where = said.get((m.host, m.model), (None, {}))
        facts, sources = {}, dict(where)
        for kind, name in _FACTS:
            if getattr(m, name) not in ("", None):
                sources[kind] = point.experiment
            elif old is not None:
                facts[name] = getattr(old, name)
        out[(m.host, m.model)] = (replace(m, **facts), sources)
    ran = {m.model for m in point.models}
    out.update({key: value for key, value in said.items() if key[1] not in ran})
    return out
