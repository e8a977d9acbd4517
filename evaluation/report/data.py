"""Everything the HTML report shows, gathered from the database in one pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlmodel import Session

from evaluation.adaptive import RaceStanding, stopped_line, stored_standing
from evaluation.compare._comparison import ComparisonOutcome, compare_experiment
from evaluation.compare._leaderboard import Leaderboard, load_leaderboard
from evaluation.errors import EvalError
from evaluation.itembank import ConfigEstimate, experiment_estimates
from evaluation.metrics import get_metric, is_descriptive
from evaluation.report.ratings import RatingsSummary, ratings_summary
from evaluation.statistics import (
    MultiComparison,
    ParameterEffect,
    ParetoFront,
    parameter_effects,
    pareto_fronts,
)
from evaluation.statistics.effects import DEFAULT_PARAMETERS
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    experiment_configs,
    get_experiment,
    ok_latencies,
    scores_frame,
)
from evaluation.storage.runs import with_status

CATEGORICAL_PARAMETERS = ("model", "template_name")


@dataclass(frozen=True)
class ReportData:
    experiment: Experiment
    board: Leaderboard
    order: tuple[str, ...]  # config hashes, best first by the primary metric
    names: dict[str, str]  # config hash -> "#rank"
    primary: str | None
    higher_is_better: bool
    facts: pd.DataFrame  # one row per config: parameters, primary metric, latency facts
    latencies: dict[str, np.ndarray]  # config hash -> its successful generations' latencies
    comparison: MultiComparison | None
    effects: tuple[ParameterEffect, ...]
    varied: tuple[str, ...]  # parameters with two or more values in the sweep
    fronts: tuple[ParetoFront, ...]  # each compared metric's, the primary's first
    history: pd.DataFrame  # config, experiment, created_at, mean, ci_low, ci_high
    ratings: RatingsSummary
    notes: tuple[str, ...]
    # every metric with a direction and per-case scores, the primary first: its verdict
    # and pairs, and its trend across runs (the README promises each metric's verdict)
    comparisons: tuple[MultiComparison, ...] = ()
    histories: tuple[tuple[str, pd.DataFrame], ...] = ()
    race: RaceStanding | None = None  # how far each config got, where the sweep raced
    stopped: str = ""  # configs the race stopped that rank above every one it kept
    # where configs ran part of the suite: the metric and each config's full-suite
    # estimate (evaluation/itembank: the item bank's, else the subset's plain mean)
    estimates: tuple[str, tuple[ConfigEstimate, ...]] = ("", ())


def gather(
    session: Session,
    experiment: str,
    *,
    seed: int = 0,
    comparison: ComparisonOutcome | None = None,
) -> ReportData:
    """What the report shows. ``comparison``: the experiment's comparison as
    ``compare_experiment(session, experiment)`` gave it with its defaults, when the caller
    has it (the end of a sweep computed it a moment ago): shown, not computed again."""
    row = get_experiment(session, experiment)
    experiment_id = int(row.id)
    board = load_leaderboard(session, experiment)
    notes: list[str] = []
    primary = board.metrics[0] if board.metrics else None
    higher = True
    score_type = "continuous"
    if primary is not None:
        try:
            definition = get_metric(primary)
            higher, score_type = definition.higher_is_better, definition.score_type
        except EvalError:
            notes.append(f"metric {primary!r} is not in the registry: treated as continuous")
    table = board.table
    if primary is not None:
        table = table.sort_values(primary, ascending=not higher, kind="stable", na_position="last")
    order = tuple(table["config"].astype(str))

    configs = experiment_configs(session, experiment_id).rename(columns={"hash": "config"})
    facts = configs.merge(board.table.drop(columns=["label", "model"]), on="config", how="left")
    scores = scores_frame(session, experiment_id)
    multi, effects, fronts = None, [], []
    varied = tuple(
        p
        for p in (*DEFAULT_PARAMETERS, *CATEGORICAL_PARAMETERS)
        if p in facts.columns and facts[p].dropna().nunique() >= 2
    )
    if primary is not None and (scores["metric"] == primary).any():
        multi = _comparison(session, row, primary, comparison)
        ranked = [c for c, _ in multi.ranking]
        order = (*ranked, *[c for c in order if c not in ranked])
        numeric = [p for p in varied if p in DEFAULT_PARAMETERS]
        effects = parameter_effects(
            scores,
            facts,
            primary,
            score_type=score_type,
            higher_is_better=higher,
            parameters=numeric,
            seed=seed,
        )
        fronts = pareto_fronts(facts, quality=primary, higher_is_better=higher)
    elif primary is not None:
        notes.append(f"no per-case scores for {primary!r}: comparisons left out")
    comparisons = [multi] if multi is not None else []
    histories = []
    for metric in _compared_metrics(board.metrics, scores):
        if metric != primary:
            comparisons.append(_comparison(session, row, metric, comparison))
            metric_higher = _higher_is_better(metric)
            fronts = [
                *fronts,
                *pareto_fronts(facts, quality=metric, higher_is_better=metric_higher),
            ]
        history = metric_history(session, row, metric)
        if not history.empty:
            histories.append((metric, history))
    del scores  # every score row: not held while the rest is read and drawn
    names = {c: f"#{i}" for i, c in enumerate(order, start=1)}
    row = with_status(session, row)  # a run whose process is gone: shown crashed
    return ReportData(
        experiment=row,
        board=board,
        order=order,
        names=names,
        primary=primary,
        higher_is_better=higher,
        facts=facts,
        latencies=ok_latencies(session, experiment_id),
        comparison=multi,
        effects=tuple(effects),
        varied=varied,
        fronts=tuple(fronts),
        history=metric_history(session, row, primary) if primary else pd.DataFrame(),
        ratings=ratings_summary(session, experiment_id, seed=seed),
        notes=tuple(notes),
        comparisons=tuple(comparisons),
        histories=tuple(histories),
        race=stored_standing(
            session,
            experiment_id,
            {c: f"{n} {board.labels.get(c, '')}".rstrip() for c, n in names.items()},
        ),
        stopped=stopped_line(session, experiment_id, board, order=order),
        estimates=_estimates(session, experiment_id),
    )


def _estimates(session: Session, experiment_id: int) -> tuple[str, tuple[ConfigEstimate, ...]]:
    metric, found = experiment_estimates(session, experiment_id, seed=0)
    return metric, tuple(found)


def _compared_metrics(metrics: Sequence[str], scores: pd.DataFrame) -> list[str]:
    """The metrics that get a verdict: a direction (not descriptive) and per-case scores."""
    present = set(scores["metric"])
    chosen = []
    for metric in metrics:
        if metric in present and not is_descriptive(metric):
            chosen.append(metric)
    return chosen


def _higher_is_better(metric: str) -> bool:
    try:
        return get_metric(metric).higher_is_better
    except EvalError:
        return True


def _comparison(
    session: Session, row: Experiment, metric: str, computed: ComparisonOutcome | None
) -> MultiComparison:
    """The comparison of ``metric`` exactly as ``evalflow compare`` and the comparison
    artifact compute it (same configs, baseline, family and verdict text), with config
    names turned back into hashes for the report's tables and plots. Its ranking orders
    the report, so "#N" means the same config in the verdict and in the leaderboard.
    Taken from ``computed`` when that compared this experiment's ``metric`` (each metric
    is its own family, so it is the same whatever other metrics were compared)."""
    outcome = computed
    if outcome is None or outcome.run_label != row.name or not _has(outcome, metric):
        outcome = compare_experiment(session, int(row.id), metrics=[metric])
    multi = next(m for m in outcome.report.comparisons if m.metric == metric)
    to_hash = {c.name: c.config_hash for c in outcome.configs}

    def h(name: str) -> str:
        return to_hash.get(name, name)

    return replace(
        multi,
        baseline=None if multi.baseline is None else h(multi.baseline),
        ranking=tuple((h(c), m) for c, m in multi.ranking),
        comparisons=tuple(
            replace(
                ac, comparison=replace(ac.comparison, a=h(ac.comparison.a), b=h(ac.comparison.b))
            )
            for ac in multi.comparisons
        ),
        winner=None if multi.winner is None else h(multi.winner),
        tied_at_top=tuple(map(h, multi.tied_at_top)),
        significantly_worse=tuple(map(h, multi.significantly_worse)),
    )


def _has(outcome: ComparisonOutcome, metric: str) -> bool:
    return any(m.metric == metric for m in outcome.report.comparisons)


def metric_history(session: Session, experiment: Experiment, metric: str) -> pd.DataFrame:
    """The stored mean of ``metric`` for this experiment's configs in every experiment on
    the same suite, by experiment creation time: the trend of each config across runs."""
    query = text(
        "SELECT a.config_hash AS config, e.name AS experiment, e.created_at, a.mean, "
        "a.ci_low, a.ci_high FROM aggregates a JOIN experiments e ON e.id = a.experiment_id "
        "WHERE e.suite = :suite AND a.metric = :metric AND a.config_hash IN "
        "(SELECT config_hash FROM experiment_configs WHERE experiment_id = :e) "
        "ORDER BY e.created_at"
    )
    params = {"suite": experiment.suite, "metric": metric, "e": experiment.id}
    return pd.read_sql(query, session.connection(), params=params)
