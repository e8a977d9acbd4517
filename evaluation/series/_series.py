"""Series: one spec run again and again. An experiment belongs to the series it joined
(``evalflow run --series NAME``, table ``series_runs``), else to its spec's name (the
on-demand sweep ``qa`` and its nightly runs ``qa-nightly-<date>`` are one series). A
series' points are its experiments in the order they were made, each with what it ran
(``series_run_models``) and its stored aggregates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from evaluation.errors import StorageError
from evaluation.labels import distinguishing_labels, settings_parts
from evaluation.series.schema import CalibratedNight, RunModel, SeriesRun
from evaluation.spec import DEFAULT_NUM_PREDICT
from evaluation.storage.models import Aggregate, ConfigRow, Experiment, ExperimentConfig
from evaluation.storage.repository import database_searched, stored_experiment
from evaluation.storage.runs import experiment_status


class SeriesNotFound(StorageError):
    """No experiment belongs to the series asked for; the message lists those that exist."""


class SeriesKept(StorageError):
    """A rerun of an experiment named another series than the one it belongs to."""


class SpecKept(StorageError):
    """A run of one spec under the name of an experiment another spec ran."""


@dataclass(frozen=True)
class Interval:
    """A stored mean with its 95% interval (None where it could not be computed)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class ModelRan:
    """What one model really was on one host for one run."""

    host: str
    model: str
    kind: str = ""
    digest: str = ""
    quantization: str = ""
    server_version: str = ""
    context_length: int | None = None
    machine_load: float | None = None
    """Where the host is on the machine that ran the run (a loopback address): that
    machine's 1-minute load average as the run's generation ended; None elsewhere (a
    server's load on another machine is not known) and on runs before it was recorded."""
    machine_cpus: int | None = None
    """That machine's CPUs, with ``machine_load``."""


@dataclass(frozen=True)
class SeriesPoint:
    """One run of a series: when, how it ended, its configs (hash -> label, model), each
    config's stored means per metric, what its models really were, and its suite's
    digest at the time ("" where the run predates the record)."""

    experiment: str
    time: datetime
    status: str
    simulated: bool
    accepted_baseline: bool
    suite: str
    suite_digest: str
    metrics: tuple[str, ...]
    configs: Mapping[str, str]
    config_models: Mapping[str, str]
    values: Mapping[str, Mapping[str, Interval]]
    models: tuple[ModelRan, ...] = ()
    explicit: bool = False
    watched: str = ""
    """How a run asked to be watched: "" (the level it ran at), ``calibrated`` (a
    calibrated-level night), ``escalated`` (a calibrated night that then ran the full
    suite), ``fallback`` (asked to watch on the calibrated level, ran the full suite:
    ``why`` says why)."""
    why: str = ""
    calibrated_cases: tuple[str, ...] = ()
    """The cases a calibrated night was watched on (those the level ran)."""
    suite_cases: int = 0

    @property
    def headline(self) -> str | None:
        """The metric a point is summed up by: its first metric with a stored mean."""
        for metric in self.metrics:
            if any(metric in v for v in self.values.values()):
                return metric
        return None


@dataclass(frozen=True)
class SeriesSummary:
    name: str
    points: int
    first: datetime
    last: datetime
    last_experiment: str
    last_status: str
    baseline: str | None
    simulated: bool = False
    experiments: tuple[str, ...] = field(default=(), repr=False)
    statuses: tuple[str, ...] = field(default=(), repr=False)
    """Each run's status, as `status` says it (a running run whose process died: crashed)."""


def _memberships(session: Session) -> dict[str, SeriesRun]:
    return {row.experiment: row for row in session.exec(select(SeriesRun)).scalars()}


def _series_name(experiment: Experiment, joined: Mapping[str, SeriesRun]) -> str:
    row = joined.get(experiment.name)
    if row is not None and row.series:
        return row.series
    return str((experiment.spec or {}).get("name") or experiment.name)


def series_of_experiment(session: Session, experiment: Experiment) -> str:
    """The series ``experiment`` belongs to: the one it joined, else its spec's name."""
    return series_names(session, [experiment])[experiment.name]


def refuse_another_series(session: Session, experiment: str, series: str | None) -> None:
    """A rerun keeps the series its experiment belongs to: ``series`` naming another is
    refused (``SeriesKept``) before anything runs. Moving a judged night to another series
    rewrote the old one's history and every later verdict, unsaid (newcomer F4)."""
    if series is None:
        return
    row = stored_experiment(session, experiment)
    if row is None or (belongs := series_of_experiment(session, row)) == series:
        return
    raise SeriesKept(
        f"--series {series}: experiment {experiment!r} belongs to series {belongs!r}, and a "
        f"rerun keeps it; run it again without --series, or give a new --experiment to "
        f"join {series!r}"
    )


def refuse_another_spec(
    session: Session,
    experiment: str,
    spec_name: str,
    suite: str | None = None,
    *,
    named: bool = True,
) -> None:
    """A rerun runs the spec its experiment was run from (its ``name:``; edited, as
    docs/specs-and-sweeps.md has it), on its suite: a spec of another name, or another
    ``suite``, is refused (``SpecKept``) before anything runs. Another spec replaced the
    experiment's configs with its own, unsaid but for a warning in the log, an accepted
    baseline's too, which every later `gate` of its series then found nothing in common
    with (newcomer F11); another suite was refused only once Prefect had started, after
    the claim. ``named``: the experiment was given (``--experiment``), not the spec's
    own name."""
    row = stored_experiment(session, experiment)
    if row is None:
        return
    given = f"--experiment {experiment}: " if named else ""
    other = "another --experiment" if named else "an --experiment of its own"
    ran = (row.spec or {}).get("name")
    if not ran or ran == spec_name:  # the same spec, or stored before specs were
        _refuse_another_suite(row, suite, given, other)
        return
    accepted = (
        f"; it is the accepted baseline of series {series_of_experiment(session, row)!r}, "
        "which `gate` compares every run with"
        if row.accepted_baseline
        else ""
    )
    raise SpecKept(
        f"{given}experiment {experiment!r} was run from spec {ran!r}, and this spec is "
        f"{spec_name!r}: a run would replace its configs with this spec's{accepted}; give "
        f"this run {other}, or run spec {ran!r} (edited, it keeps its name)"
    )


def _refuse_another_suite(row: Experiment, suite: str | None, given: str, other: str) -> None:
    """``refuse_another_spec``'s refusal of a rerun on another suite (``register_experiment``
    refuses it too, but only once Prefect has started and the run has claimed it)."""
    if suite is not None and row.suite != suite:
        raise SpecKept(
            f"{given}experiment {row.name!r} already exists for suite {row.suite!r}, and "
            f"this spec's is {suite!r}: a rerun would mix their cases; give this run {other}"
        )


def series_names(session: Session, experiments: Sequence[Experiment]) -> dict[str, str]:
    """Experiment name -> :func:`series_of_experiment`, in one query."""
    joined = {r.experiment: r for r in _rows(session, [e.name for e in experiments])}
    return {e.name: _series_name(e, joined) for e in experiments}


def _rows(session: Session, names: list[str]) -> list[SeriesRun]:
    statement = select(SeriesRun).where(SeriesRun.experiment.in_(names))
    return list(session.exec(statement).scalars())


def grouped_experiments(session: Session) -> dict[str, list[Experiment]]:
    """Every series' experiments, oldest first."""
    joined = _memberships(session)
    statement = select(Experiment).order_by(Experiment.created_at, Experiment.id)
    groups: dict[str, list[Experiment]] = {}
    for experiment in session.exec(statement).scalars():
        groups.setdefault(_series_name(experiment, joined), []).append(experiment)
    return groups


def list_series(session: Session) -> list[SeriesSummary]:
    """Every series in the database, most recently run first."""
    out = []
    for name, experiments in grouped_experiments(session).items():
        last = experiments[-1]
        accepted = [e.name for e in experiments if e.accepted_baseline]
        out.append(
            SeriesSummary(
                name=name,
                points=len(experiments),
                first=experiments[0].created_at,
                last=last.created_at,
                last_experiment=last.name,
                last_status=experiment_status(session, last).status,  # as `status` says
                baseline=accepted[-1] if accepted else None,
                simulated=any(e.simulated for e in experiments),
                experiments=tuple(e.name for e in experiments),
                statuses=tuple(
                    experiment_status(session, e).status if e.status == "running" else e.status
                    for e in experiments
                ),
            )
        )
    return sorted(out, key=lambda s: s.last, reverse=True)


def series_experiments(session: Session, name: str) -> list[Experiment]:
    """The experiments of series ``name``, oldest first; SeriesNotFound when none."""
    groups = grouped_experiments(session)
    if name not in groups:
        known = ", ".join(sorted(groups)[:10]) or "none yet"
        raise SeriesNotFound(
            f"no series {name!r} in this database (series: {known}); a series is a spec's "
            f"name, or the name given to `evalflow run --series`{database_searched(session)}"
        )
    return groups[name]


def same_model(a: str, b: str) -> bool:
    """Whether two names are one model as Ollama names them (``llama3`` is
    ``llama3:latest``)."""
    return a == b or _tagged(a) == _tagged(b)


def lone_config_pairs(before: SeriesPoint, after: SeriesPoint) -> dict[str, str]:
    """``after``'s config -> ``before``'s, for each model that each run ran with exactly
    one config, the two under different labels (a grid value the label shows was edited:
    ``n=32`` -> ``n=3``), the same weights where both runs said their digest: one
    config of the spec changed, not a new one beside it (docs/trends.md)."""

    def lone(point: SeriesPoint, model: str) -> str | None:
        mine = [c for c, m in point.config_models.items() if m and same_model(m, model)]
        return mine[0] if len(mine) == 1 else None

    def digests(point: SeriesPoint, model: str) -> set[str]:
        return {m.digest for m in point.models if m.digest and same_model(m.model, model)}

    out = {}
    for config, model in after.config_models.items():
        old = lone(before, model) if model and lone(after, model) == config else None
        if old is None or before.configs[old] == after.configs[config]:
            continue
        said = digests(before, model), digests(after, model)
        if all(said) and not said[0] & said[1]:
            continue  # other weights: a model event, not a config edited
        out[config] = old
    return out


def _tagged(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


def series_points(session: Session, name: str) -> list[SeriesPoint]:
    """Series ``name``'s points, oldest first (SeriesNotFound when it has none)."""
    return [point_of(session, e) for e in series_experiments(session, name)]


def shown_labels(points: Sequence[SeriesPoint]) -> tuple[list[SeriesPoint], tuple[str, str]]:
    """``points`` with each config named as `show` names it: the words that tell the
    series' configs apart (``distinguishing_labels`` over every label it had), and the
    settings they all share, left out of them, and what "n=" in them is, as `show` says
    them under its table (``settings_parts``). Distinct labels stay distinct, so configs
    told apart or matched by label still are."""
    labels = list(dict.fromkeys(label for p in points for label in p.configs.values()))
    short = distinguishing_labels(labels) if labels else {}
    shown = [replace(p, configs={h: short[x] for h, x in p.configs.items()}) for p in points]
    return shown, settings_parts(labels, DEFAULT_NUM_PREDICT)


def point_of(session: Session, experiment: Experiment) -> SeriesPoint:
    """One experiment as a series point."""
    joined = session.get(SeriesRun, experiment.name)
    configs = session.exec(
        select(ConfigRow.hash, ConfigRow.label, ConfigRow.model)
        .join(ExperimentConfig, ExperimentConfig.config_hash == ConfigRow.hash)
        .where(ExperimentConfig.experiment_id == experiment.id)
        .order_by(ExperimentConfig.position)
    ).all()
    values: dict[str, dict[str, Interval]] = {}
    for row in session.exec(
        select(Aggregate).where(Aggregate.experiment_id == experiment.id)
    ).scalars():
        values.setdefault(row.config_hash, {})[row.metric] = Interval(
            row.mean, row.ci_low, row.ci_high, row.n
        )
    models = session.exec(
        select(RunModel).where(RunModel.experiment == experiment.name).order_by(RunModel.model)
    ).scalars()
    night = session.get(CalibratedNight, experiment.name)
    watched, why, subset = "", "", ()
    if night is not None:
        subset = tuple(night.case_ids)
        watched, why = (
            ("fallback", night.fallback)
            if night.fallback
            else ("escalated", night.escalated)
            if night.escalated
            else ("calibrated", "")
        )
    return SeriesPoint(
        experiment=experiment.name,
        time=experiment.created_at,
        status=experiment_status(session, experiment).status,  # crashed: as `status` says
        simulated=experiment.simulated,
        accepted_baseline=experiment.accepted_baseline,
        suite=experiment.suite,
        suite_digest=joined.suite_digest if joined else "",
        metrics=tuple(experiment.metrics or ()),
        configs={h: label or h for h, label, _ in configs},
        config_models={h: model for h, _, model in configs},
        values=values,
        models=tuple(
            ModelRan(
                m.host,
                m.model,
                m.kind,
                m.digest,
                m.quantization,
                m.server_version,
                m.context_length,
                m.machine_load,
                m.machine_cpus,
            )
            for m in models
        ),
        explicit=bool(joined and joined.explicit),
        watched=watched,
        why=why,
        calibrated_cases=subset,
        suite_cases=night.suite_cases if night is not None else 0,
    )


def record_calibrated_night(
    session: Session,
    experiment: str,
    *,
    cases: list[str],
    suite_cases: int,
    escalated: str | None = None,
    fallback: str | None = None,
) -> None:
    """Store (or update) that ``experiment`` is a night watched on the calibrated level:
    it ran ``cases`` (ids) of ``suite_cases``; ``escalated`` (why the full suite ran
    after it) or ``fallback`` (why it ran the full suite instead) update the night's row,
    keeping the cases it was watched on."""
    row = session.get(CalibratedNight, experiment)
    if row is None:
        row = CalibratedNight(experiment=experiment, case_ids=list(cases), suite_cases=suite_cases)
    elif escalated is None and fallback is None and not row.escalated:  # a rerun's cases
        row.case_ids, row.suite_cases, row.fallback = list(cases), suite_cases, ""
    if escalated is not None:
        row.escalated = escalated
    if fallback is not None:
        row.fallback = fallback
    session.add(row)
    session.flush()


def record_run(
    session: Session,
    experiment: str,
    *,
    series: str,
    explicit: bool,
    suite: str,
    suite_digest: str,
    models: list[ModelRan],
) -> None:
    """Store (or refresh, on a resumed run) a run's series and what it ran with. A run
    that resumes keeps the series it joined (:func:`refuse_another_series` refuses one
    that names another)."""
    row = session.get(SeriesRun, experiment)
    if row is None:
        row = SeriesRun(experiment=experiment, series=series, explicit=explicit)
    elif explicit:  # the series it belongs to, named (the flow checked it before it ran)
        refuse_another_series(session, experiment, series)
        row.explicit = True
    row.suite, row.suite_digest = suite, suite_digest
    session.add(row)
    for m in models:
        stored = session.get(RunModel, (experiment, m.host, m.model)) or RunModel(
            experiment=experiment, host=m.host, model=m.model
        )
        stored.kind, stored.digest, stored.quantization = m.kind, m.digest, m.quantization
        stored.server_version = m.server_version
        if m.context_length is not None or stored.context_length is None:
            stored.context_length = m.context_length
        stored.machine_load, stored.machine_cpus = m.machine_load, m.machine_cpus
        session.add(stored)
    session.flush()
