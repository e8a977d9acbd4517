"""A stored series of nightly runs, without Prefect: two configs scored on the same
cases night after night, with a drop or a slowdown injected from a chosen night."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from evaluation.backends.base import GenerationRequest
from evaluation.compare._leaderboard import aggregate_rows
from evaluation.metrics import get_metrics
from evaluation.run._scoring import score_generations
from evaluation.run._sweep import open_backends, prepare_sweep
from evaluation.run._work import GenerationRecord, build_messages
from evaluation.series import (
    ModelRan,
    SeriesWatch,
    StreamVerdict,
    record_run,
    suite_digest,
    what_ran,
)
from evaluation.spec import Config, PromptTemplate
from evaluation.storage import repository as stored
from evaluation.suites import Suite
from tests.support.results_db import add_experiment, make_config, make_suite

SUITE = make_suite(60)
STEADY, CHANGING = make_config("m:1b", 0.0), make_config("m:1b", 0.7)
EDITED = Config(CHANGING.model, CHANGING.params, PromptTemplate("default", "Say it.\n\n{input}"))
CUT = Config(CHANGING.model, replace(CHANGING.params, num_predict=3), CHANGING.template)
"""CHANGING with its num_predict cut: a grid value its label shows, edited."""


def add_nights(
    session: Session,
    nights: int,
    *,
    series: str = "nightly",
    drop_from: int | None = None,
    slow_from: int | None = None,
    digest_from: int | None = None,
    seed: int = 0,
    first: int = 0,
    configs: tuple[Config, ...] = (STEADY, CHANGING),
    partial: tuple[int, ...] = (),
    edited_from: int | None = None,
    edited_as: Config = EDITED,
    server_from: int | None = None,
    flapped: tuple[int, ...] = (),
    unsaid: tuple[int, ...] = (),
    drop: float = 0.5,
    quiet: tuple[int, ...] = (),
    collapsed: tuple[int, ...] = (),
) -> list[str]:
    """``nights`` completed runs of ``series`` (exact_match right with probability 0.85 per case
    and night; from ``drop_from`` on, CHANGING is right with probability 0.45 (``drop``
    times its own); from ``slow_from`` on its latencies are 3×; from ``digest_from`` on its
    model has a new digest; ``configs``: the configs each night runs; the nights in
    ``partial`` run only the first 3 cases, as at a smoke level; from ``edited_from`` on,
    CHANGING runs as EDITED: its template's text edited under its name, same label (or as
    ``edited_as``); from ``server_from`` on, the server says version 0.7.0, the weights'
    digest as it was; the nights in ``flapped`` run the new digest, on which CHANGING drops:
    a host serving other, worse weights on some nights; on the nights in ``unsaid`` the
    server said no digest, on those in ``quiet`` nothing of its model: no digest,
    quantisation or server version; on those in ``collapsed`` CHANGING drops as from
    ``drop_from``, that night only). Returns the experiments' names, oldest first."""
    rng = np.random.default_rng(seed)
    ease = rng.uniform(0.6, 1.0, len(SUITE.cases))  # a case's own chance, every night
    names = []
    for night in range(first, first + nights):
        scores: dict[Config, dict[str, list[float]]] = {}
        latency: dict[Config, list[float]] = {}
        for config in configs:
            dropped = (drop_from is not None and night >= drop_from) or night in flapped
            dropped = dropped or night in collapsed
            p = ease * (drop if config is CHANGING and dropped else 1.0)
            scores[config] = {"exact_match": list((rng.random(len(p)) < p).astype(float))}
            slow = (
                3.0 if config is CHANGING and slow_from is not None and night >= slow_from else 1.0
            )
            latency[config] = list(slow * np.exp(0.1 * rng.standard_normal(len(p))) * (1 + ease))
        name = f"{series}-night-{night:02d}"
        if edited_from is not None and night >= edited_from and CHANGING in scores:
            scores[edited_as], latency[edited_as] = scores.pop(CHANGING), latency.pop(CHANGING)
        if night in partial:
            scores = {c: {m: v[:3] for m, v in by.items()} for c, by in scores.items()}
            latency = {c: v[:3] for c, v in latency.items()}
        suite = make_suite(3) if night in partial else SUITE
        new = (digest_from is not None and night >= digest_from) or night in flapped
        digest = "" if night in unsaid or night in quiet else "new" if new else "old"
        server = "0.7.0" if server_from is not None and night >= server_from else "0.6.8"
        said = {"server": "", "quantization": ""} if night in quiet else {"server": server}
        add_night(session, name, series, suite, scores, latency, digest=digest, **said)
        names.append(name)
    return names


def stream_of(watch: SeriesWatch, config: Config, metric: str) -> StreamVerdict:
    """The one stream of ``config`` × ``metric`` in ``watch``."""
    (found,) = [s for s in watch.streams if s.config == config.hash and s.metric == metric]
    return found


def steady_speeds(session: Session) -> None:
    """Every stored generation at ~17 tokens/s (6 tokens in 1 s, within 6% by its id),
    night after night: a series whose decode speed did not change."""
    session.execute(
        text(
            "UPDATE generations SET eval_count = 6, latency_s = 1.0, "
            "tokens_per_s = 17.0 * (1 + 0.01 * (id % 7))"
        )
    )


def add_night(
    session: Session,
    name: str,
    series: str,
    suite: Suite,
    scores: Mapping[Config, Mapping[str, Sequence[float]]],
    latency: Mapping[Config, Sequence[float]] | None = None,
    *,
    digest: str = "old",
    server: str = "0.6.8",
    quantization: str = "Q4_K_M",
) -> None:
    """One completed night ``name`` of ``series`` whose configs scored ``scores`` on
    ``suite``'s cases, its model m:1b of digest ``digest`` (and ``quantization``) on an
    Ollama server of version ``server``."""
    experiment = add_experiment(session, name, suite, scores, latency=latency)
    experiment.spec = {"name": series}
    experiment.status = "completed"
    session.add(experiment)
    record_run(
        session,
        name,
        series=series,
        explicit=False,
        suite=SUITE.name,
        suite_digest="s1",
        models=[
            ModelRan(
                "gpu1",
                "m:1b",
                "ollama",
                digest and f"sha256:{digest * 16}",
                quantization,
                server,
                4096,
            )
        ],
    )
    session.flush()


def add_simulated_night(session: Session, spec: Path, name: str, *, series: str) -> None:
    """One completed night of ``spec`` run on its simulated host as ``evalflow run SPEC
    --experiment NAME --series SERIES`` stores it (generations with the backend's
    timings, scores, aggregates, what ran), without Prefect: the simulated backend is
    deterministic, so a night of an unchanged spec repeats every output."""
    sweep = prepare_sweep(spec)
    backends = open_backends(sweep)
    ((host, backend),) = backends.items()

    async def generate() -> tuple[list, list[ModelRan]]:
        results = await asyncio.gather(
            *(
                backend.generate(
                    GenerationRequest(
                        item.model,
                        build_messages(item.config, item.case, sweep.suite),
                        item.params,
                        item.case.id,
                        item.sample_index,
                    )
                )
                for item in items
            )
        )
        found = {host: {m.name: m for m in await backend.list_models()}}
        return list(results), await what_ran(backends, found)

    items = sweep.work_items()
    results, models = asyncio.run(generate())
    stored.record_suite(session, sweep.suite)
    experiment = stored.register_experiment(
        session,
        name=name,
        suite=sweep.suite,
        configs=sweep.configs,
        spec={"name": sweep.spec.name},
        spec_path=str(spec),
        samples_per_case=1,
        metrics=sweep.metrics,
        simulated=True,
    )
    stored.save_generations(
        session,
        experiment.id,
        [GenerationRecord(item, host, 1, r) for item, r in zip(items, results, strict=True)],
    )
    generations = stored.generations_frame(session, experiment.id)
    metrics = get_metrics(list(sweep.metrics))
    for metric, values in score_generations(generations, sweep.suite, metrics).items():
        stored.replace_scores(session, generations["id"].tolist(), metric, list(values))
    rows = aggregate_rows(
        generations, stored.scores_frame(session, experiment.id), metrics, sweep.suite
    )
    stored.replace_aggregates(session, experiment.id, rows)
    experiment.status = "completed"
    session.add(experiment)
    record_run(
        session,
        name,
        series=series,
        explicit=True,
        suite=sweep.suite.name,
        suite_digest=suite_digest(sweep.suite),
        models=models,
    )
    session.flush()
