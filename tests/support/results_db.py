"""Build a results database through the repository functions, without Prefect: a toy
suite, configs, generations with chosen latencies, scores with chosen values, aggregates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from evaluation.backends.base import GenerationResult
from evaluation.compare._leaderboard import aggregate_rows
from evaluation.metrics import get_metrics
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    generations_frame,
    record_suite,
    register_experiment,
    replace_aggregates,
    replace_scores,
    save_generations,
    scores_frame,
)
from evaluation.suites import Case, Suite

MISSING = object()  # no generation for this case (the config never ran it)
FAILED = object()  # its request failed (a timeout): a failed generation, never scored
Value = float | None | list[float | None]


def make_suite(n_cases: int, *, name: str = "toy", groups: Sequence[str] | None = None) -> Suite:
    cases = tuple(
        Case(
            id=f"c{i:03d}",
            input=f"question {i}",
            references=(f"answer {i}",),
            group=None if groups is None else groups[i],
        )
        for i in range(n_cases)
    )
    return Suite(name, "1", "qa", ("exact_match",), cases)


def make_config(model: str = "m:1b", temperature: float = 0.0) -> Config:
    return Config(model, GenerationParams(temperature=temperature), PromptTemplate("default"))


def register_unrun(
    session: Session,
    name: str,
    *,
    spec_path: str,
    spec_name: str | None = None,
    suite: Suite | None = None,
    configs: Sequence[Config] | None = None,
) -> Experiment:
    """An experiment of ``configs`` (default one) registered as a run begins it
    (``suite``, else one of 2 cases; its spec named ``spec_name``, read from
    ``spec_path``), nothing generated."""
    suite = suite or make_suite(2)
    record_suite(session, suite)
    return register_experiment(
        session,
        name=name,
        suite=suite,
        configs=list(configs or [make_config()]),
        spec={} if spec_name is None else {"name": spec_name},
        spec_path=spec_path,
        samples_per_case=1,
        metrics=["exact_match"],
        simulated=False,
    )


def add_experiment(
    session: Session,
    name: str,
    suite: Suite,
    scores: Mapping[Config, Mapping[str, Sequence[Value | object]]],
    *,
    latency: Mapping[Config, Sequence[float]] | None = None,
    simulated: bool = False,
    baseline: str | None = None,
    outputs: Mapping[Config, Sequence[str]] | None = None,
) -> Experiment:
    """An experiment whose configs scored ``scores[config][metric][case index]`` (a list
    for several samples; None = unscorable; MISSING = not generated; FAILED = its request
    failed). Latency defaults
    to a value that differs by case and config; each output is "out", else
    ``outputs[config][case index]`` (what a corpus metric's aggregate reads). Aggregates
    are computed as a sweep does."""
    configs = list(scores)
    metrics = list(dict.fromkeys(m for per in scores.values() for m in per))
    record_suite(session, suite)
    experiment = register_experiment(
        session,
        name=name,
        suite=suite,
        configs=configs,
        spec={"name": name},
        spec_path="",
        samples_per_case=1,
        metrics=metrics,
        simulated=simulated,
        baseline=baseline,
    )
    records, values = [], {}
    for k, config in enumerate(configs):
        first = scores[config][metrics[0]]
        for i, case in enumerate(suite.cases):
            if first[i] is MISSING:
                continue
            if first[i] is FAILED:
                item = WorkItem(config, case, suite.name, 0)
                records.append(GenerationRecord(item, "h", 1, error="timed out after 1 s"))
                continue
            samples = first[i] if isinstance(first[i], list) else [first[i]]
            for s in range(len(samples)):
                lat = latency[config][i] if latency else 0.5 + 0.01 * i + 0.1 * k
                text = outputs[config][i] if outputs else "out"
                result = GenerationResult(text, "stop", lat, None, simulated=simulated)
                item = WorkItem(config, case, suite.name, s)
                records.append(GenerationRecord(item, "h", 1, result))
                for metric in metrics:
                    v = scores[config][metric][i]
                    values[(metric, config.hash, case.id, s)] = v[s] if isinstance(v, list) else v
    save_generations(session, experiment.id, records)
    generations = generations_frame(session, experiment.id)
    scored = generations[generations["status"] == "ok"]
    for metric in metrics:
        keys = scored[["config_hash", "case_id", "sample_index"]].itertuples(index=False)
        column = [values[(metric, h, c, s)] for h, c, s in keys]
        replace_scores(session, scored["id"].tolist(), metric, [_nan(v) for v in column])
    rows = aggregate_rows(
        generations, scores_frame(session, experiment.id), get_metrics(metrics), suite
    )
    replace_aggregates(session, experiment.id, rows)
    return experiment


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
