"""Which configs a comparison takes: experiments by name or id, configs by hash or label,
their names in the report, the baseline, and the shared-case check across experiments."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from sqlmodel import Session

from evaluation.errors import EvalError, StorageError
from evaluation.labels import (
    configs_fitting,
    configs_named,
    distinguishing_labels,
    listed,
    quoted,
)
from evaluation.storage.comparisons import latency_scores
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    experiment_configs,
    known_experiments,
    list_experiments,
    stored_experiment,
)


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


def _not_compared(
    ref: str, labels: Sequence[str], compared: Sequence[str], stored: Sequence[str] = ()
) -> str:
    """A refusal's hint when ``ref`` reads as EXPERIMENT:CONFIG of an experiment not in
    the comparison: one of the ``stored`` experiments left out ("nightly:gemma3 t=0"),
    or a name that looks more like one of the compared experiments' than like a model's
    ("nightyl:gemma3 t=0"; not "sim-smal:1b", a misspelt "sim-small:1b"). Either way the
    part before its first ':' starts no label (a model name may hold a ':' itself:
    "gemma3:270m")."""
    head, colon, _ = ref.strip().partition(":")
    if not colon or not compared:
        return ""
    if any(label.casefold().startswith(f"{head.casefold()}:") for label in labels):
        return ""
    if head in stored and head not in compared:
        return (
            f"; {quoted(head)} is an experiment this comparison leaves out: name it beside "
            f"{', '.join(compared)} to compare its configs"
        )
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
            row = stored_experiment(session, experiment)
        if row is None:
            missing.append(repr(experiment))
        else:
            found[experiment] = row
    if missing:
        what = "experiment" if len(missing) == 1 else "experiments"
        raise StorageError(f"no {what} named {', '.join(missing)}; {known_experiments(session)}")
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
    session: Session, experiment: Experiment, *, prefix: str = ""
) -> list[SelectedConfig]:
    """Every config of ``experiment``, named "<prefix><label>" ("[<hash head>]" added
    where labels repeat; not "#", which verdicts use for ranks); :func:`compared_configs`
    picks those that ``--config`` names."""
    frame = experiment_configs(session, experiment.id)
    labels = [label or h for label, h in zip(frame["label"], frame["hash"], strict=True)]
    counts = Counter(labels)
    names = [
        f"{prefix}{label}" if counts[label] == 1 else f"{prefix}{label} [{h[:8]}]"
        for label, h in zip(labels, frame["hash"], strict=True)
    ]
    shown = distinguishing_labels(labels) if labels else {}
    return [
        SelectedConfig(n, experiment.name, experiment.id, h, label, shown[label])
        for n, h, label in zip(names, frame["hash"], labels, strict=True)
    ]


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
    experiment (one config from it), or, "EXPERIMENT:" optional, by the names ``--config``
    takes, no others (:func:`evaluation.labels.configs_named`, the label ``show`` prints
    too; a newcomer's `--baseline sim-larg` took a config `--config sim-larg` refused);
    None for no baseline. Refused in ``--config``'s words (a newcomer found the baseline
    taking fewer names, and refusing a name that fits several as "not among" them)."""
    if ref is None:
        return None
    hits = _baseline_hits(ref, configs, configs)
    if len(hits) != 1:
        raise EvalError(_baseline_refused(ref, hits, configs, "the compared configs"))
    return hits[0].name


def _baseline_hits(
    ref: str, configs: Sequence[SelectedConfig], selected: Sequence[SelectedConfig]
) -> list[SelectedConfig]:
    """The configs ``ref`` names (see :func:`resolve_baseline`): its name in the report,
    an experiment (its configs), else what ``--config`` picks (:func:`_fitting`, in each
    experiment, or in the one "EXPERIMENT:" names): the configs named in those
    experiments where it names one, else the several it fits; a name ``--config``
    refuses as naming none ("sim-larg", "1b": a part of one label) names none here too.
    Of several, the one ``selected`` where only one of them is (`--config 'm:1b t=0
    plain' --baseline plain` names the plain one compared)."""
    experiments = list(dict.fromkeys(c.experiment for c in configs))
    owner = max((e for e in experiments if ref.startswith(f"{e}:")), key=len, default=None)
    name = ref if owner is None else ref[len(owner) + 1 :]
    found = [
        _fitting(name, [c for c in configs if c.experiment == e])
        for e in ([owner] if owner is not None else experiments)
    ]
    named = [c for fits in found if len(fits) == 1 for c in fits]
    for hits in (
        [c for c in configs if c.name == ref],
        [c for c in configs if c.experiment == ref],
        named or [c for fits in found for c in fits],
    ):
        if hits:
            picked = [c for c in hits if c in selected]
            return picked if len(picked) == 1 else hits
    return []


def _baseline_refused(
    ref: str, hits: Sequence[SelectedConfig], configs: Sequence[SelectedConfig], where: str
) -> str:
    """The refusal of a baseline that names none of ``configs`` (``where``: how the line
    calls them) or several (``hits``)."""
    if hits:
        listing = "; ".join(_as_shown(c, configs) for c in hits)
        return (
            f"baseline {quoted(ref)} fits several of {where}: {listing}; name one of them "
            "(its name as listed, EXPERIMENT:CONFIG where configs of several experiments "
            "share a hash)"
        )
    experiments = list(dict.fromkeys(c.experiment for c in configs))
    known = listed([_as_shown(c, configs) for c in configs], experiments)
    return f"baseline {quoted(ref)} is not among {where}: {known}"


@dataclass(frozen=True)
class Compared:
    """The configs a comparison takes (the selections', then the baseline where they left
    it out), the run label's ``parts`` (each experiment, or each config by its full
    label) and the ``baseline`` (None: all pairs)."""

    configs: list[SelectedConfig]
    parts: list[str]
    baseline: SelectedConfig | None


@dataclass(frozen=True)
class _Unnamed:
    """A name that picks no one config: it fits none (``fits`` empty) or several.
    ``experiment``: where a ``--config`` was looked up; None for a baseline (in every
    experiment of the comparison). ``hints``: what the refusal adds, each "; ..."."""

    ref: str
    experiment: str | None
    fits: tuple[SelectedConfig, ...]
    hints: tuple[str, ...] = ()


def compared_configs(
    session: Session,
    experiments: Mapping[str, Experiment],
    selections: Sequence[tuple[str, str | None]],
    baselines: Sequence[str] = (),
) -> Compared:
    """The configs ``selections`` (:func:`parse_selections`) name in ``experiments`` (by
    name), and the one config ``baselines`` (``--baseline``, given once or more) name
    among all the configs of ``experiments``: added to the selection where it lacks it,
    since the baseline is compared with each selected config (it was refused, or a
    loose name took a selected config). One EvalError names every name that picks no
    one config (a newcomer's two misspelt names were told of the first only); refused
    too: a config named twice, baselines naming different configs."""
    several = len(experiments) > 1
    every = {
        name: select_configs(session, e, prefix=f"{name}:" if several else "")
        for name, e in experiments.items()
    }
    chosen: dict[tuple[int, str], SelectedConfig] = {}
    named_as: dict[tuple[int, str], str] = {}  # how --config named each config
    parts: list[str] = []
    unnamed: list[_Unnamed] = []
    twice = ""  # the first config named twice, refused once every name is known good

    @functools.cache
    def stored() -> tuple[str, ...]:
        return tuple(e.name for e in list_experiments(session))

    for name, ref in selections:
        if ref is None:
            for c in every[name]:
                chosen.setdefault((c.experiment_id, c.config_hash), c)
            parts.append(name)
            continue
        found = _fitting(ref, every[name])
        if len(found) != 1:
            labels = [c.label for c in every[name]]
            hints = ("; name one experiment's config as EXPERIMENT:CONFIG" if several else "",)
            hints += (_not_compared(ref, labels, list(experiments), stored()),)
            hints = () if found else tuple(h for h in hints if h)  # an unknown name's
            unnamed.append(_Unnamed(ref, name, tuple(found), hints))
            continue
        (c,) = found
        key = (c.experiment_id, c.config_hash)
        if key in named_as and not twice:
            spellings = dict.fromkeys((named_as[key], ref))
            twice = (
                f"config {quoted(c.name)} is named twice ("
                + ", then ".join(map(quoted, spellings))
                + "): name each config once"
            )
        named_as.setdefault(key, ref)
        chosen.setdefault(key, c)
        parts.append(f"{name}:{c.label}")
    candidates = [c for configs in every.values() for c in configs]
    selected = list(chosen.values())
    where = (
        "the compared configs"
        if len(selected) == len(candidates)
        else f"the configs of {', '.join(experiments)}"
    )
    bases: dict[str, SelectedConfig] = {}
    for ref in dict.fromkeys(baselines):
        hits = _baseline_hits(ref, candidates, selected)
        if len(hits) == 1:
            bases[ref] = hits[0]
        else:
            unnamed.append(_Unnamed(ref, None, tuple(hits)))
    if len(unnamed) == 1 and unnamed[0].experiment is None:
        raise EvalError(_baseline_refused(unnamed[0].ref, unnamed[0].fits, candidates, where))
    if unnamed:
        raise EvalError(_all_refused(unnamed, every, where))
    if twice:
        raise EvalError(twice)
    if len(set(bases.values())) > 1:
        times = "twice" if len(baselines) == 2 else f"{len(baselines)} times"
        given = ", ".join(
            quoted(ref) + ("" if quoted(ref) == shown else f" ({shown})")
            for ref, shown in ((ref, _shown_name(c, candidates)) for ref, c in bases.items())
        )
        raise EvalError(
            f"--baseline given {times} names {len(set(bases.values()))} configs: {given}; "
            "give one baseline"
        )
    baseline = next(iter(bases.values()), None)
    if baseline is not None and baseline not in selected:
        selected.append(baseline)
        parts.append(f"{baseline.experiment}:{baseline.label}")
    return Compared(selected, parts, baseline)


def one_baseline(
    session: Session, selections: Sequence[tuple[str, str | None]], refs: Sequence[str]
) -> str:
    """The first of ``refs`` (``--baseline`` given more than once), once they are seen
    to name one config (:func:`compared_configs` refuses them otherwise: the last one
    given was taken silently)."""
    experiments = find_experiments(session, [n for n, _ in selections])
    compared_configs(session, experiments, selections, refs)
    return refs[0]


def _fitting(ref: str, configs: Sequence[SelectedConfig]) -> list[SelectedConfig]:
    """The configs of one experiment that ``ref`` (a ``--config``) picks: the one it
    names, none, or the several it fits (as :func:`evaluation.labels.config_named`)."""
    hashes, labels = [c.config_hash for c in configs], [c.label for c in configs]
    named = configs_named(ref, hashes, labels)
    if len(named) == 1:
        return [c for c in configs if c.config_hash == named[0]]
    fits = configs_fitting(ref, hashes, labels, named)
    return [c for c in configs if c.config_hash in fits] if len(fits) > 1 else []


def _all_refused(
    unnamed: Sequence[_Unnamed], every: Mapping[str, list[SelectedConfig]], where: str
) -> str:
    """One line naming every name that picks no one config: each that fits several
    with those, then those that fit none with the configs of the experiments they were
    looked up in (a single ``--config`` in :func:`evaluation.labels.config_named`'s
    words)."""
    candidates = [c for configs in every.values() for c in configs]
    clauses = [_fits_several(u, candidates, where) for u in unnamed if u.fits]
    looked_up: dict[tuple[str, bool], list[str]] = {}  # (name, a baseline?): experiments
    for u in (u for u in unnamed if not u.fits):
        experiments = [u.experiment] if u.experiment else list(every)
        looked_up.setdefault((u.ref, u.experiment is None), []).extend(experiments)
    none_of: dict[tuple[tuple[str, ...], bool], list[str]] = {}  # their names, grouped
    for (ref, baseline), experiments in looked_up.items():
        none_of.setdefault((tuple(dict.fromkeys(experiments)), baseline), []).append(ref)
    clauses += [_fits_none(refs, *key, where) for key, refs in none_of.items()]
    shown = list(dict.fromkeys(e for experiments, _ in none_of for e in experiments))
    hints = dict.fromkeys(h for u in unnamed for h in u.hints)
    # "its" only right after "experiment X has no config ...", no hint naming another between
    alone = len(shown) == 1 and not any(baseline for _, baseline in none_of) and not hints
    listings = [
        ("its configs: " if alone else f"{'the ' if len(shown) == 1 else ''}configs of {e}: ")
        + listed([f"{quoted(c.shown)} ({c.config_hash})" for c in every[e]], [e])
        for e in shown
    ]
    return "; ".join(clauses) + "".join(hints) + "".join(f"; {part}" for part in listings)


def _fits_several(u: _Unnamed, candidates: Sequence[SelectedConfig], where: str) -> str:
    if u.experiment is None:
        return _baseline_refused(u.ref, u.fits, candidates, where)
    listing = "; ".join(f"{quoted(c.shown)} ({c.config_hash})" for c in u.fits)
    return (
        f"config {quoted(u.ref)} fits several configs of {u.experiment}: {listing}; "
        "name one of them (its name as listed, or its hash)"
    )


def _fits_none(refs: Sequence[str], experiments: Sequence[str], baseline: bool, where: str) -> str:
    names, several = ", ".join(map(quoted, refs)), len(refs) > 1
    if baseline:
        what = f"baselines {names} are" if several else f"baseline {names} is"
        return f"{what} not among {where}"
    whose = (
        f"experiment {experiments[0]} has"
        if len(experiments) == 1
        else f"experiments {', '.join(experiments)} have"
    )
    return f"{whose} no config{'s' if several else ''} {names}"


def _as_shown(config: SelectedConfig, configs: Sequence[SelectedConfig]) -> str:
    """How a refusal lists a config: as ``show`` prints it (with its experiment where
    the configs come from several), quoted for a shell, and its hash."""
    return f"{_shown_name(config, configs)} ({config.config_hash})"


def _shown_name(config: SelectedConfig, configs: Sequence[SelectedConfig]) -> str:
    several = len({c.experiment for c in configs}) > 1
    return quoted(f"{config.experiment}:{config.shown}" if several else config.shown)
