"""A sweep ready to run: the spec, its suite, its configs and the work still to do."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.backends import Backend, make_backend
from evaluation.run._work import WorkItem, WorkKey
from evaluation.spec import Config, SweepSpec, load_spec, make_plan
from evaluation.spec._fields import FieldReader
from evaluation.suites import Case, Suite, load_suite
from evaluation.wording import counted

if TYPE_CHECKING:
    from evaluation.storage.running_work import RunningWork

MAX_LABELS = 3
"""Configs named in the note on runs in progress; past it, counted."""


@dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    suite: Suite
    configs: tuple[Config, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The spec's metrics, else the suite's defaults."""
        return self.spec.metrics or self.suite.default_metrics

    @property
    def simulated(self) -> bool:
        return any(h.kind == "simulated" for h in self.spec.hosts)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the sweep calls (preflight checks each): the configs' models, then
        their pipelines' embedding models."""
        return tuple(
            dict.fromkeys([c.model for c in self.configs] + pipeline_embedders(self.configs))
        )

    @property
    def embed_models(self) -> tuple[str, ...]:
        """The embedding models the metrics need (``semantic_similarity``)."""
        from evaluation.metrics import embed_model_of  # pulls in the scoring libraries

        return tuple(dict.fromkeys(m for name in self.metrics if (m := embed_model_of(name))))

    @property
    def required_models(self) -> tuple[str, ...]:
        """Every model some host must have before the run: generation and embedding."""
        return tuple(dict.fromkeys((*self.models, *self.embed_models)))

    @property
    def cases(self) -> tuple[Case, ...]:
        """The suite's cases the spec runs: those its ``cases:`` names, else all."""
        return cases_named(self.suite, self.spec.cases)

    def work_items(self, done: Collection[WorkKey] = ()) -> list[WorkItem]:
        """Every (config, case, sample) not in ``done``, config-major in sweep order."""
        items = [
            WorkItem(config, case, self.suite.name, sample)
            for config in self.configs
            for case in self.cases
            for sample in range(self.spec.samples_per_case)
        ]
        return [item for item in items if item.key not in done] if done else items

    def cases_note(self, elsewhere: dict[str, tuple[set[str], list[str]]], cut: str = "") -> str:
        """Plan's note for a spec naming its ``cases:``: how many of the suite it runs
        (``cut``: what a level or ``--limit`` runs of them), and per config the other cases
        ``elsewhere`` (config hash -> (case ids, experiments)) stored, not run again, and
        the named ones stored there too (since the spec was written), run again."""
        named = set(self.spec.cases)
        line = (
            f"note: the spec's cases: {'names' if cut else 'runs'} {len(named)} of "
            f"{self.suite.name}'s {counted(len(self.suite.cases), 'case')}"
            + (f", {cut}" if cut else "")
        )
        shown, again = [], []
        for config in self.configs:
            cases, names = elsewhere.get(config.hash, (set(), []))
            if others := len(cases - named):
                shown.append(
                    f"{config.label} on {counted(others, 'other case')} ({', '.join(names)})"
                )
            if mine := len(cases & named):
                again.append(f"{config.label} on {counted(mine, 'case')} ({', '.join(names)})")
        if shown:
            line += f"; stored by other experiments, not run again: {'; '.join(shown)}"
        if again:  # stored since `recommend --write-spec` named them (a run then in progress)
            line += (
                "; named but stored by other experiments too, so generated again for this "
                f"one: {'; '.join(again)}"
            )
        return line

    def running_note(self, items: Sequence[WorkItem], running: Sequence[RunningWork]) -> str:
        """One line where runs in progress (``running``) will generate some of ``items``
        (the work still to do): how many, by which run, of which configs on how many
        cases; a run of the spec then generates them again for its own experiment. ""
        where none will."""
        order = [case.id for case in self.suite.cases]
        labels = {config.hash: config.label for config in self.configs}
        keys, parts, exact = set(), [], True
        for run in running:
            mine = [
                i
                for i in items
                if run.will_generate(i.config.hash, i.case.id, i.case_uid, i.sample_index, order)
            ]
            if not mine:
                continue
            keys.update(i.key for i in mine)
            exact = exact and run.exact
            configs = list(dict.fromkeys(labels[i.config.hash] for i in mine))
            named = (
                ", ".join(configs)
                if len(configs) <= MAX_LABELS
                else counted(len(configs), "config")
            )
            cases = counted(len({i.case.id for i in mine}), "case")
            parts.append(f"{run.experiment} ({run.status}: {named} on {cases})")
        if not parts:
            return ""
        many = "up to " if not exact else ""
        return (
            f"note: {'a run' if len(parts) == 1 else 'runs'} in progress will generate "
            f"{many}{len(keys)} of the {counted(len(items), 'generation')} this spec has to go: "
            f"{'; '.join(parts)}; a run of this spec would generate them again for its own "
            "experiment: plan it again once that run has ended (`evalflow status`)"
        )


def pipeline_embedders(configs: Iterable[Config]) -> list[str]:
    """The embedding models the configs' pipelines call (rag's ``embed_model``, a
    generation-table parameter, or one a user pipeline declares)."""
    found = []
    for c in configs:
        if c.pipeline is not None:
            found += [c.params.embed_model, c.pipeline.params.get("embed_model")]
    return [m for m in dict.fromkeys(found) if isinstance(m, str) and m]


def prepare_sweep(spec_path: str | Path) -> Sweep:
    """Load and validate everything a sweep needs, before any generation: the spec, its
    suite, the limits (``max_configs``, ``max_generations``) and that every metric can
    score the suite's task type."""
    spec = load_spec(spec_path)
    suite = load_suite(spec.suite)
    _check_metrics(spec, suite)
    _check_cases(spec, suite)
    plan = make_plan(spec, len(cases_named(suite, spec.cases)))  # refuses past its limits
    _check_pipeline_embedders(spec, plan.configs)
    if spec.strategy.race:
        _check_race(spec, suite, len(plan.configs))
    return Sweep(spec=spec, suite=suite, configs=plan.configs)


def cases_named(suite: Suite, ids: Collection[str]) -> tuple[Case, ...]:
    """``suite``'s cases whose ids are in ``ids``, in the suite's order (all where none)."""
    if not ids:
        return suite.cases
    return tuple(case for case in suite.cases if case.id in ids)


def _check_cases(spec: SweepSpec, suite: Suite) -> None:
    """Every id of the spec's ``cases:`` is one of the suite's."""
    reader = FieldReader(str(spec.path) if spec.path is not None else None)
    known = {case.id for case in suite.cases}
    for i, case_id in enumerate(spec.cases):
        reader.check(
            case_id in known,
            f"cases[{i}]",
            f"no case '{case_id}' in suite {suite.name} ({len(known)} cases)",
        )


def _check_pipeline_embedders(spec: SweepSpec, configs: Iterable[Config]) -> None:
    """Every embedding model a pipeline calls is served by some host (a host that is
    up but lacks it is refused by the preflight, as for a metric's)."""
    reader = FieldReader(str(spec.path) if spec.path is not None else None)
    for model in pipeline_embedders(configs):
        field = "grid.embed_model" if reader.written("grid.embed_model") else "pipeline.embed_model"
        reader.check(
            any(h.serves(model) for h in spec.hosts),
            field,
            f"the pipeline needs embedding model '{model}', which no host serves (each "
            "lists its models); add it to a host's models",
        )


def _check_race(spec: SweepSpec, suite: Suite, configs: int) -> None:
    """A race needs rivals, a metric with a better direction to judge them on (its
    first), and a budget that buys at least its first round."""
    from evaluation.adaptive._schedule import FIRST_ROUND
    from evaluation.metrics import get_metric

    reader = FieldReader(str(spec.path) if spec.path is not None else None)
    reader.check(
        configs >= 2,
        "strategy",
        f"a race needs at least two configs to choose between; this sweep has {configs} "
        "(add values to the grid, or use strategy: full)",
    )
    first = (spec.metrics or suite.default_metrics)[0]
    reader.check(
        not get_metric(first).descriptive,
        "metrics[0]" if spec.metrics else "metrics",
        f"a race is judged on the first metric, and {first} has no better direction "
        "(it is descriptive): put a quality metric first",
    )
    round_cost = min(FIRST_ROUND, len(suite.cases)) * configs * spec.samples_per_case
    budget = spec.strategy.budget
    reader.check(
        budget is None or budget >= round_cost,
        "budget",
        f"{budget} generations cannot buy the race's first round ({round_cost}: "
        f"{min(FIRST_ROUND, len(suite.cases))} cases x {configs} configs x "
        f"{spec.samples_per_case} samples); raise it to at least {round_cost}",
    )


def _check_metrics(spec: SweepSpec, suite: Suite) -> None:
    # pulls in the scoring libraries
    from evaluation.metrics import embed_model_of, unsuited_metric

    reader = FieldReader(str(spec.path) if spec.path is not None else None)
    for i, name in enumerate(spec.metrics):
        if reason := unsuited_metric(name, suite.task_type):
            raise reader.error(f"metrics[{i}]", f"{reason}; pick another metric")
    # the suite's default metrics too, when the spec names none
    for i, name in enumerate(spec.metrics or suite.default_metrics):
        model = embed_model_of(name)
        if model is not None and not any(h.serves(model) for h in spec.hosts):
            raise reader.error(
                f"metrics[{i}]" if spec.metrics else "metrics",
                f"{name} needs embedding model '{model}', which no host serves (each lists "
                "its models); add it to a host's models",
            )


def open_backends(sweep: Sweep, *, simulated_time_scale: float | None = 0.0) -> dict[str, Backend]:
    """One backend per host. The simulated backend is given the suite (its "knowledge")
    and how much of its simulated latency to really sleep: ``simulated_time_scale`` ×
    it, or, None, the host's own ``?time_scale=`` × it (a run's, given no --time-scale)."""
    backends: dict[str, Backend] = {}
    for host in sweep.spec.hosts:
        extra = (
            {
                "suites": {sweep.suite.name: sweep.suite},
                "templates": sweep.spec.templates,
                "time_scale": host.time_scale
                if simulated_time_scale is None
                else simulated_time_scale,
            }
            if host.kind == "simulated"
            else {}
        )
        backends[host.name] = make_backend(host, sweep.spec.limits, **extra)
    return backends
