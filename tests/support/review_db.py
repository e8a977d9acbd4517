"""A small finished experiment for review, judge, export and report tests: a toy QA
suite, a few configs whose outputs name their model and case, chosen latencies, scores
and aggregates stored as a sweep stores them. No Prefect involved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from evaluation.backends.base import GenerationResult
from evaluation.compare._leaderboard import aggregate_rows
from evaluation.metrics import get_metrics
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.storage.db import make_engine, session_scope
from evaluation.storage.repository import (
    generations_frame,
    record_suite,
    register_experiment,
    replace_aggregates,
    replace_scores,
    save_generations,
    scores_frame,
)
from evaluation.suites import Case, Message, Suite

METRICS = ("exact_match", "contains")


@dataclass(frozen=True)
class ReviewDB:
    engine: Engine
    experiment: str
    experiment_id: int
    suite: Suite
    configs: tuple[Config, ...]


def make_suite(n_cases: int = 8, *, chat: bool = False) -> Suite:
    """Cases whose (last) question is "What is the capital of country i?"; ``chat``
    gives each a system prompt and an earlier exchange before that question."""
    cases = tuple(
        Case(
            id=f"c{i:02d}",
            input=_chat(i) if chat else f"What is the capital of country {i}?",
            references=(f"City {i}",),
            group=f"g{i % 3}",
            system=f"You are a geography tutor for case {i}." if chat else None,
        )
        for i in range(n_cases)
    )
    return Suite("toy-qa", "1", "qa", METRICS, cases)


def _chat(i: int) -> tuple[Message, ...]:
    return (
        Message("user", f"I am studying country {i}."),
        Message("assistant", f"Happy to help with country {i}."),
        Message("user", f"What is the capital of country {i}?"),
    )


PLAIN = PromptTemplate("plain")


def make_configs(
    temperatures: Sequence[float] = (0.0, 0.7, 1.0),
    template: PromptTemplate = PLAIN,
) -> tuple[Config, ...]:
    models = ("alpha:1b", "beta:3b", "gamma:8b")
    return tuple(
        Config(models[i % len(models)], GenerationParams(temperature=t), template)
        for i, t in enumerate(temperatures)
    )


def output_for(config_index: int, case_index: int) -> str:
    """Config 0 answers every case right, the others miss some."""
    right = config_index == 0 or case_index % (config_index + 1) != 0
    return f"City {case_index}" if right else f"Town {case_index} (by config {config_index})"


def build_review_db(
    url: str,
    *,
    name: str = "toy-review",
    n_cases: int = 8,
    temperatures: Sequence[float] = (0.0, 0.7, 1.0),
    simulated: bool = False,
    chat: bool = False,
    template: PromptTemplate = PLAIN,
) -> ReviewDB:
    engine = make_engine(url)
    suite = make_suite(n_cases, chat=chat)
    configs = make_configs(temperatures, template)
    with session_scope(engine) as session:
        record_suite(session, suite)
        experiment = register_experiment(
            session,
            name=name,
            suite=suite,
            configs=configs,
            spec={"name": name},
            spec_path="",
            samples_per_case=1,
            metrics=METRICS,
            simulated=simulated,
        )
        records = [
            GenerationRecord(
                WorkItem(config, case, suite.name, 0),
                "host-a",
                1,
                GenerationResult(
                    output_for(k, i),
                    "stop",
                    0.2 + 0.3 * k + 0.01 * i,
                    0.05,
                    eval_count=5,
                    eval_duration_ns=50_000_000,
                    simulated=simulated,
                ),
            )
            for k, config in enumerate(configs)
            for i, case in enumerate(suite.cases)
        ]
        save_generations(session, experiment.id, records)
        generations = generations_frame(session, experiment.id)
        by_case = {c.id: c for c in suite.cases}
        for metric in get_metrics(METRICS):
            values = metric.score(
                generations["output"].tolist(), [by_case[c] for c in generations["case_id"]]
            )
            replace_scores(session, generations["id"].tolist(), metric.name, values.tolist())
        rows = aggregate_rows(
            generations, scores_frame(session, experiment.id), get_metrics(METRICS), suite
        )
        replace_aggregates(session, experiment.id, rows)
        experiment.status = "completed"
        session.add(experiment)
        experiment_id = int(experiment.id)
    return ReviewDB(engine, name, experiment_id, suite, configs)


def add_stages(session, db: ReviewDB) -> None:
    """Two model calls (map, then reduce) for the first config's first case, as a
    map_reduce pipeline stores them, transcript included; and the corpus's embedding, a
    call shared by the whole run."""
    from evaluation.storage.models import CaseRun, StageRow

    config, case = db.configs[0].hash, f"{db.suite.name}/{db.suite.cases[0].id}"
    key = {"experiment_id": db.experiment_id, "config_hash": config, "case_uid": case}
    session.add(CaseRun(**key, pipeline="map_reduce", wall_s=2.25, calls=2))
    map_call = {"stage": "map", "start_s": 0.0, "duration_s": 1.5, "wait_s": 0.25}
    map_call |= {"prompt_tokens": 120, "output_tokens": 12, "estimated_prompt_tokens": 118}
    map_call |= {"prompt": [["user", "Summarise: the first chunk"]], "output": "a summary"}
    map_call |= {"retrieved": [{"id": "doc-1#0", "score": 0.91}]}
    reduce_call = {"stage": "reduce", "start_s": 1.75, "duration_s": 0.5, "wait_s": 0.0}
    reduce_call |= {"output_tokens": 8, "output": "Paris"}
    reduce_call |= {"prompt": [["system", "Answer."], ["user", "a summary"]]}
    calls = [
        StageRow(**key, position=i, model="m:1b", host="sim", **call)
        for i, call in enumerate((map_call, reduce_call))
    ]
    embed = {"stage": "embed", "kind": "embed", "model": "e:1b", "shared": True}
    calls.append(StageRow(**key, position=2, **embed))
    session.add_all(calls)
