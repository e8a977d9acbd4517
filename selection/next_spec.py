"""A sweep spec of what a recommendation says to measure next (`evalflow recommend
--write-spec FILE`): `plan` and `run` take it as any spec.

The `next:` lines name configs (:class:`selection.recommendation.ToMeasure`), each with
the suites to measure it on, or none (any of the task type's). The spec is the stored
spec of the newest experiment of the task type on the first one's suite (its suite
file, hosts, metrics and samples), with its models, grid and templates replaced by the
named configs that are to be measured on that suite. A spec is a grid (models ×
settings × templates); where those configs do not make one exactly, the spec holds the
first alone rather than configs nobody asked for, and says which were left out.

A config already stored on some cases of that suite (in other experiments: a new
experiment's run stores its own) is measured on the cases it lacks, as its `next:` line
counts them: those of the suite other configs were stored on (else every one it lacks),
named under ``cases:``; the configs the spec holds lack the same cases. Run over the
whole suite, the spec redid the 12 stored cases of a newcomer's config and ran 30 where
its line asked for 6.

The new experiment's quality is its first metric that can stand for quality
(:mod:`selection.quality`): where the base's metrics would put another one first than
the selector read quality from on the task type (experiments of it listed them in
other orders), the spec lists that metric first, then the base's others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

from sqlmodel import Session, col, select

from evaluation.spec import Config
from evaluation.spec._params import PARAMETERS
from evaluation.storage.models import Experiment
from evaluation.wording import counted
from selection.quality import quality_metric
from selection.recommendation import Recommendation, ToMeasure

DROPPED = ("baseline", "strategy", "cases")
"""Keys of the stored spec that do not carry over: its baseline config, its race and its
cases (the configs' own are named)."""


@dataclass(frozen=True)
class NextSpec:
    """The spec (a YAML-ready mapping), the configs it runs, the experiment it was based
    on, and the `next:` configs it leaves out (each label with why)."""

    spec: dict[str, Any]
    configs: tuple[Config, ...]
    based_on: str
    left_out: tuple[str, ...] = ()
    metrics_changed: str = ""  # why its metrics are not the base's, where they are not
    stored: str = ""  # where its configs' other cases of the suite are stored, where they are
    simulated: bool = False  # its hosts are the simulated backend's: what it stores is SIMULATED


@dataclass(frozen=True)
class NothingToWrite:
    """Why no spec is written: ``why`` as the note after the answer says it."""

    why: str


def next_spec(session: Session, answer: Recommendation) -> NextSpec | NothingToWrite:
    """The spec measuring ``answer``'s `next:` configs (module docstring), or why there
    is none: it names none, no experiment of the task type is stored to take a suite and
    hosts from, or each is stored on every case of that suite (run since the answering
    version was trained: recheck R11 read "no stored qa experiment to take a suite and
    hosts from" of a database that had one)."""
    if not answer.measure_next:
        return NothingToWrite(_names_none(answer))
    first = answer.measure_next[0]
    base = _base(session, answer.task_type, first.suites[:1])
    if base is None:
        why = f"no stored {answer.task_type} experiment to take a suite and hosts from"
        return NothingToWrite(why)
    stored = _StoredCases.read(session, base)
    here = [
        m
        for m in answer.measure_next
        if (not m.suites or base.suite in m.suites) and stored.to_run(m.option.config_hash) != []
    ]
    if not here:
        return NothingToWrite(_measured_already(answer, base.suite))
    cases = stored.to_run(here[0].option.config_hash)
    same = [m for m in here if stored.to_run(m.option.config_hash) == cases]
    configs = list(dict.fromkeys(m.option.config() for m in same))
    spec = _grid(configs)
    if spec is None:
        configs, spec = configs[:1], _grid(configs[:1])
    assert spec is not None  # one config is always a grid
    kept = {c.hash for c in configs}
    left_out = tuple(
        f"{m.option.label} ({_why_left_out(m, here, same, base.suite, stored)})"
        for m in answer.measure_next
        if m.option.config_hash not in kept
    )
    if cases is not None:
        spec["cases"] = cases
    kept_keys = {k: v for k, v in base.spec.items() if k not in DROPPED}
    kept_keys["hosts"] = [_host(h) for h in kept_keys.get("hosts", [])]
    metrics, changed = _quality_first(answer, base)
    if metrics is not None:
        kept_keys["metrics"] = metrics
    name = f"{answer.task_type}-next-{configs[0].hash[:8]}"
    where = stored.where(configs[0].hash) if cases is not None else ""
    return NextSpec(
        {**kept_keys, "name": name, **spec},
        tuple(configs),
        base.name,
        left_out,
        changed,
        where,
        simulated=bool(base.simulated),
    )


def _names_none(answer: Recommendation) -> str:
    """Why an answer whose `next:` lines name no config to measure gets no spec."""
    if answer.choice is None and answer.suggestions:
        return (
            f"the answer names no stored {answer.task_type} configuration to measure (its "
            "next: lines ask for a new sweep, whose spec is yours to write)"
        )
    if answer.suggestions:
        return "what the next: lines name is stored already (they say how to weigh it)"
    return "the answer names nothing to measure next"


def _measured_already(answer: Recommendation, suite: str) -> str:
    """Why no spec where each config the `next:` lines name for ``suite`` (the first
    line's) is stored on every case of it: nothing is left to measure there; the others,
    to be measured on other suites, are named (a spec holds one suite)."""
    elsewhere = [m for m in answer.measure_next if m.suites and suite not in m.suites]
    done = len(answer.measure_next) - len(elsewhere)
    why = (
        f"nothing is left to measure on {suite}: "
        f"{'the config' if done == 1 else f'each of the {done} configs'} the next: lines "
        f"name there {'is' if done == 1 else 'are'} stored on every case of it"
    )
    if answer.newer_results:
        why += f" (run since selector v{answer.version_id} was trained: it does not know)"
    if elsewhere:
        others = ", ".join(dict.fromkeys(s for m in elsewhere for s in m.suites))
        why += f"; the others are to be measured on {others}, not {suite}"
    return why


def _quality_first(answer: Recommendation, base: Experiment) -> tuple[list[Any] | None, str]:
    """The spec's ``metrics:`` where the base's would read quality from another metric
    than the answering version did on the task type (the one most of its configs were
    read on; of those tied, the one the base lists first): that one first, then the
    base's others in their order; and what changed. None where the base's read it
    already, or the version does not say (trained before the metric was kept)."""
    used = answer.quality_metrics
    if not used:
        return None, ""
    listed = list(base.spec.get("metrics") or base.metrics)
    names = [_metric_name(m) for m in listed]
    most = max(used.values())
    tied = [name for name, n in used.items() if n == most]
    wanted = min(tied, key=lambda name: names.index(name) if name in names else len(names))
    now = quality_metric(answer.task_type, names)
    if now == wanted:
        return None, ""
    others = "; ".join(f"{name} for {n}" for name, n in used.items() if name != wanted)
    why = (
        f"{wanted} first: the selector read quality from it on {answer.task_type}"
        + (f" (for {used[wanted]} configs; {others})" if others else "")
        + f", and {base.name} "
        + (f"puts {now} first" if wanted in names else "does not measure it")
    )
    first = listed[names.index(wanted)] if wanted in names else wanted
    return [first, *(m for m, name in zip(listed, names, strict=True) if name != wanted)], why


def _metric_name(item: Any) -> str:
    """A spec's metric as stored: a name, or ``{name: {option: value}}``'s stored name."""
    if isinstance(item, dict):
        from evaluation.metrics import name_with_options

        ((name, options),) = item.items()
        return name_with_options(name, options)
    return str(item)


def _why_left_out(
    measure: ToMeasure,
    here: list[ToMeasure],
    same: list[ToMeasure],
    suite: str,
    stored: _StoredCases,
) -> str:
    """Why a `next:` config is not in the spec: its suites are others than the spec's
    ``suite``, it is stored on every case of it, it lacks other cases than the first,
    or it makes no exact grid with the first (a re-check read "another suite, or no
    grid with the first" of a config that made one)."""
    if measure in same:
        return "no exact grid with the first"
    if measure in here:
        return "it lacks other cases of the suite than the first"
    if not measure.suites or suite in measure.suites:
        return f"stored on every case of {suite}"
    return f"to be measured on {', '.join(measure.suites)}, not {suite}"


@dataclass(frozen=True)
class _StoredCases:
    """Which cases of a suite are stored, per config, in experiments of the base's kind
    (real, or simulated), and where."""

    suite: str
    every: frozenset[str]  # the suite's case ids
    measured: frozenset[str]  # those any config is stored on
    own: dict[str, set[str]]  # config hash -> its stored case ids
    experiments: dict[str, list[str]]  # config hash -> the experiments storing them

    @classmethod
    def read(cls, session: Session, base: Experiment) -> _StoredCases:
        from evaluation.storage.models import CaseRow, Generation

        prefix = f"{base.suite}/"
        rows = session.exec(
            select(Generation.config_hash, Generation.case_uid, Experiment.name)
            .join(Experiment, col(Experiment.id) == Generation.experiment_id)
            .where(
                Experiment.suite == base.suite,
                Experiment.simulated == base.simulated,
                Generation.status == "ok",
            )
            .distinct()
        ).all()
        own: dict[str, set[str]] = {}
        experiments: dict[str, list[str]] = {}
        for config_hash, uid, name in rows:
            own.setdefault(config_hash, set()).add(uid.removeprefix(prefix))
            names = experiments.setdefault(config_hash, [])
            if name not in names:
                names.append(name)
        ids = session.exec(select(CaseRow.case_id).where(CaseRow.suite == base.suite)).all()
        measured = frozenset().union(*own.values()) if own else frozenset()
        return cls(base.suite, frozenset(ids) | measured, measured, own, experiments)

    def to_run(self, config_hash: str) -> list[str] | None:
        """The case ids ``config_hash`` is to be measured on: those other configs were
        stored on that it lacks, else every one it lacks; None where it has none stored
        (the whole suite), [] where it has them all."""
        own = self.own.get(config_hash)
        if not own:
            return None
        missing = (self.measured - own) or (self.every - own)
        return sorted(missing, key=lambda case_id: (len(case_id), case_id))

    def where(self, config_hash: str) -> str:
        """Its stored cases and where (`12 cases stored in nc-sweep, nc-sweep-2`)."""
        names = self.experiments.get(config_hash, [])
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"{counted(len(self.own.get(config_hash, ())), 'case')} stored in {shown}"


def _base(session: Session, task_type: str, suites: Sequence[str]) -> Experiment | None:
    """The newest experiment of ``task_type`` (on one of ``suites``, where given) with a
    stored spec, real ones before simulated."""
    query = select(Experiment).where(Experiment.task_type == task_type)
    if suites:
        query = query.where(col(Experiment.suite).in_(list(suites)))
    found = [e for e in session.exec(query.order_by(col(Experiment.id).desc())) if e.spec]
    found.sort(key=lambda e: e.simulated)
    return found[0] if found else None


def _grid(configs: list[Config]) -> dict[str, Any] | None:
    """``models``, ``grid`` and ``templates`` whose expansion is exactly ``configs``;
    None where their union is a larger grid."""
    models = list(dict.fromkeys(c.model for c in configs))
    templates = dict.fromkeys((c.template.name, c.template.text) for c in configs)
    if len({name for name, _ in templates}) < len(templates):
        return None  # two texts under one template name
    grid: dict[str, list[Any]] = {}
    for parameter in PARAMETERS:
        values = list(dict.fromkeys(getattr(c.params, parameter.name) for c in configs))
        if values == [parameter.default] or values == [None]:
            continue
        if None in values:
            return None
        grid[parameter.name] = [list(v) if isinstance(v, tuple) else v for v in values]
    if len(models) * len(templates) * prod(len(v) for v in grid.values()) != len(configs):
        return None
    return {
        "models": models,
        "grid": grid,
        "templates": {name: text for name, text in templates},
    }


def _host(host: dict[str, Any]) -> dict[str, Any]:
    """A stored host as a spec writes it: the keys it set (no nulls)."""
    return {k: v for k, v in host.items() if v is not None}


def to_yaml(spec: dict[str, Any]) -> str:
    """``spec`` as YAML, in the spec's key order, a text with a line break written
    double-quoted on one line (``"\\nQuestion:"``, not folded over three)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = '"' if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(spec, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=1000)
