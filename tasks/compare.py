"""Tasks of the comparison stage: compare configs, store the rows, publish the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.compare._comparison import ComparisonOutcome, compare_experiment, compare_stored
from evaluation.compare._stored import save_comparison
from evaluation.compare._text import rounded_comparison_rows
from evaluation.run._heap import release_freed
from evaluation.statistics import Adjustment
from evaluation.storage.db import session_scope
from tasks.results import artifact_key


@task(name="compare-configs", cache_policy=NO_CACHE)
def compare_and_publish(
    engine: Engine,
    experiment: int | str,
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Paired comparisons of an experiment's configs (id or name): rows stored under the
    experiment's name, markdown and table artifacts published. Returns the summary."""
    with session_scope(engine) as session:
        outcome = compare_experiment(
            session, experiment, baseline=baseline, adjust=adjust, metrics=metrics
        )
        stored = save_comparison(session, outcome)
    return _publish(outcome, stored)


@task(name="compare-configs", cache_policy=NO_CACHE)
def compare_configs(engine: Engine, experiment_id: int) -> ComparisonOutcome:
    """:func:`compare_and_publish` at the end of a sweep, returning the comparison itself:
    the report stage shows it instead of computing it again."""
    with session_scope(engine) as session:
        outcome = compare_experiment(session, experiment_id)
        stored = save_comparison(session, outcome)
    _publish(outcome, stored)
    release_freed()  # the paired frames' memory back to the system (evaluation/run/_heap.py)
    return outcome


@task(name="compare-stored", cache_policy=NO_CACHE)
def compare_stored_and_publish(
    engine: Engine,
    selections: Sequence[tuple[str, str | None]],
    *,
    baseline: str | None = None,
    adjust: Adjustment = "holm",
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Compare stored configs of several experiments (see ``compare_stored``); rows,
    artifacts and summary as for :func:`compare_and_publish`."""
    with session_scope(engine) as session:
        outcome = compare_stored(
            session, selections, baseline=baseline, adjust=adjust, metrics=metrics
        )
        stored = save_comparison(session, outcome)
    return _publish(outcome, stored)


def _publish(outcome: ComparisonOutcome, stored: int) -> dict[str, Any]:
    """Publish the artifacts; the summary names the winner or the tied set per metric."""
    suffix = " (SIMULATED)" if outcome.simulated else ""
    keys = {
        "markdown": artifact_key(outcome.run_label, "comparison"),
        "table": artifact_key(outcome.run_label, "comparison-table"),
    }
    create_markdown_artifact(
        key=keys["markdown"],
        markdown=outcome.markdown,
        description=f"Paired comparisons of {outcome.run_label}{suffix}",
    )
    create_table_artifact(
        key=keys["table"],
        table=rounded_comparison_rows(outcome.tables["comparisons"]),
        description=f"Pairwise comparison table of {outcome.run_label}{suffix}",
    )
    verdicts = outcome.verdicts()
    logger = get_run_logger()
    for verdict in verdicts.values():
        logger.info(verdict["verdict"])
    return {
        "run_label": outcome.run_label,
        "simulated": outcome.simulated,
        "configs": len(outcome.configs),
        "comparisons_stored": stored,
        "verdicts": verdicts,
        "artifacts": keys,
        "markdown": outcome.markdown,
        "comparisons": outcome.tables["comparisons"],
    }
