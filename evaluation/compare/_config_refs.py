"""Which configs a comparison takes: experiments by name or id, configs by hash or label,
their names in the report, the baseline, and the shared-case check across experiments."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from sqlmodel import Session, select

from evaluation.errors import EvalError, StorageError
from evaluation.labels import (
    config_named,
    configs_named,
    distinguishing_labels,
    part_of_label,
    quoted,
)
from evaluation.storage.comparisons import latency_scores
from evaluation.storage.models import Experiment
from evaluation.storage.repository import experiment_configs, list_experiments


@dataclass(frozen=True)
class SelectedConfig:
    """A config in a comparison; ``name`` is how the report and the rows call it,
    ``shown`` its label as ``show`` prints it among its experiment's configs."""

    name: str
    experiment: str
    experiment_id: int
    config_hash: str
    label: str
    shown: str


def _not_compared(ref: str, labels: Sequence[str], compared: Sequence[str]) -> str:
    """A refusal's hint when ``ref`` reads as EXPERIMENT:CONFIG of an experiment not in
    the comparison ("nightyl:gemma3 t=0"): the part before its first ':' starts no label
    (a model name may hold a ':' itself: "gemma3:270m") and looks more like one of the
    compared experiments' names than like a model's (not "sim-smal:1b", a misspelt
    "sim-small:1b")."""
    head, colon, _ = ref.strip().partition(":")
    if not colon or not compared:
        return ""
    if any(label.casefold().startswith(f"{head.casefold()}:") for label in labels):
        return ""
    models = [label.split(":", 1)[0].split()[0] for label in labels if label.strip()]
    if _likeness(head, compared) <= _likeness(head, models):
        return ""
    listing = ", ".join(map(quoted, compared))
    return f"; {quoted(head)} is not an experiment of this comparison ({listing})"


def _likeness(name: str, names: Sequence[str]) -> float:
    """How close ``name`` comes to the nearest of ``names`` (difflib's ratio, 0–1, case
    aside)."""
    return max(
        (SequenceMatcher(None, name.casefold(), n.casefold()).ratio() for n in names),
        default=0.0,
    )


def find_experiment(session: Session, experiment: str | int) -> Experiment:
    """The experiment with this id or name; StorageError listing the known names."""
    return find_experiments(session, [experiment])[experiment]


def find_experiments(
    session: Session, experiments: Sequence[str | int]
) -> dict[str | int, Experiment]:
    """Each experiment by id or name; one StorageError naming every one not found (a
    newcomer's `compare nightyl basline` was told only of the first) and the known."""
    found: dict[str | int, Experiment] = {}
    missing = []
    for experiment in dict.fromkeys(experiments):
        if isinstance(experiment, int):
            row = session.get(Experiment, experiment)
        else:
            row = session.exec(select(Experiment).where(Experiment.name == experiment)).first()
        if row is None:
            missing.append(repr(experiment))
        else:
            found[experiment] = row
    if missing:
        known = [e.name for e in list_experiments(session)][-10:]
        listing = ", ".join(known) or "none yet: run `evalflow run SPEC` first"
        what = "experiment" if len(missing) == 1 else "experiments"
        raise StorageError(f"no {what} {', '.join(missing)}; known experiments: {listing}")
    return found


def parse_selections(
    experiments: Sequence[str], configs: Sequence[str] | None = None
) -> list[tuple[str, str | None]]:
    """CLI/flow selections: a config ref applies to every experiment, unless written
    "<experiment>:<ref>" for one of ``experiments``; an experiment no ref applies to
    contributes all its configs."""
    if not experiments:
        raise EvalError("nothing to compare: name at least one experiment")
    names = list(dict.fromkeys(experiments))
    scoped: dict[str, list[str]] = {n: [] for n in names}
    for ref in configs or ():
        owner = max((n for n in names if ref.startswith(f"{n}:")), key=len, default=None)
        for n in [owner] if owner else names:
            scoped[n].append(ref[len(owner) + 1 :] if owner else ref)
    return [(n, r) for n in names for r in (scoped[n] or [None])]


def select_configs(
    session: Session,
    experiment: Experiment,
    *,
    ref: str | None,
    prefix: str = "",
    compared: Sequence[str] = (),
) -> list[SelectedConfig]:
    """The configs of ``experiment`` named "<prefix><label>" ("[<hash head>]" added where
    labels repeat; not "#", which verdicts use for ranks): all of them, or the one ``ref``
    names by any name an output shows for it (``evaluation.labels.configs_named``).
    ``compared``: the experiments of the comparison, named in a refusal of a ref that
    reads as another experiment's config."""
    frame = experiment_configs(session, experiment.id)
    labels = [label or h for label, h in zip(frame["label"], frame["hash"], strict=True)]
    counts = Counter(labels)
    names = [
        f"{prefix}{label}" if counts[label] == 1 else f"{prefix}{label} [{h[:8]}]"
        for label, h in zip(labels, frame["hash"], strict=True)
    ]
    shown = distinguishing_labels(labels) if labels else {}
    selected = [
        SelectedConfig(n, experiment.name, experiment.id, h, label, shown[label])
        for n, h, label in zip(names, frame["hash"], labels, strict=True)
    ]
    if ref is None:
        return selected
    hint = "; name one experiment's config as EXPERIMENT:CONFIG" if prefix else ""
    hint += _not_compared(ref, labels, compared)
    named = config_named(ref, list(frame["hash"]), labels, experiment.name, hint)
    return [c for c in selected if c.config_hash == named]


def check_shared_cases(
    session: Session, experiments: list[Experiment], configs: list[SelectedConfig]
) -> None:
    """EvalError unless some case has a successful generation in every experiment."""
    cases: list[set[str]] = []
    for e in experiments:
        hashes = {c.config_hash for c in configs if c.experiment_id == e.id}
        frame = latency_scores(session, e.id)
        cases.append(set(frame.loc[frame["config"].isin(hashes), "case_id"]))
    if not set.intersection(*cases):
        listing = ", ".join(
            f"{e.name} ({len(c)} cases)" for e, c in zip(experiments, cases, strict=True)
        )
        raise EvalError(
            f"no case has a successful generation in every experiment: {listing}; "
            "nothing can be compared"
        )


def resolve_baseline(ref: str | None, configs: list[SelectedConfig]) -> str | None:
    """The name of the one selected config ``ref`` names: by its name in the report, by
    experiment (one config from it), or, "EXPERIMENT:" optional, by any name ``--config``
    takes (:func:`evaluation.labels.configs_named`, the label ``show`` prints too); None
    for no baseline. Refused in ``--config``'s words (a newcomer found the baseline
    taking fewer names, and refusing a name that fits several as "not among" them)."""
    if ref is None:
        return None
    scope, name = configs, ref
    owner = max(
        (c.experiment for c in configs if ref.startswith(f"{c.experiment}:")), key=len, default=None
    )
    if owner is not None:
        scope, name = [c for c in configs if c.experiment == owner], ref[len(owner) + 1 :]
    for hits in (
        [c for c in configs if c.name == ref],
        [c for c in configs if c.experiment == ref],
        [c for c in scope if c.shown == name],
        _named(name, scope),
        [c for c in scope if part_of_label(name, c.label)],
    ):
        if len(hits) == 1:
            return hits[0].name
        if len(hits) > 1:
            listing = "; ".join(_as_shown(c, configs) for c in hits)
            raise EvalError(
                f"baseline {quoted(ref)} fits several of the compared configs: {listing}; "
                "name one of them (its name as listed, EXPERIMENT:CONFIG where configs of "
                "several experiments share a hash)"
            )
    known = "; ".join(_as_shown(c, configs) for c in configs)
    raise EvalError(f"baseline {quoted(ref)} is not among the compared configs: {known}")


def _as_shown(config: SelectedConfig, configs: list[SelectedConfig]) -> str:
    """How a refusal lists a config: as ``show`` prints it (with its experiment where
    the configs come from several), quoted for a shell, and its hash."""
    several = len({c.experiment for c in configs}) > 1
    name = f"{config.experiment}:{config.shown}" if several else config.shown
    return f"{quoted(name)} ({config.config_hash})"


def _named(ref: str, configs: list[SelectedConfig]) -> list[SelectedConfig]:
    hashes = configs_named(ref, [c.config_hash for c in configs], [c.label for c in configs])
    return [c for c in configs if c.config_hash in hashes]
