"""Tasks of a race: judge the rounds from what is stored, persist them, publish them."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.adaptive import Race, RoundPlan, replay
from evaluation.run import Sweep
from evaluation.storage.db import session_scope
from evaluation.storage.race import replace_race_rounds
from evaluation.storage.repository import generations_frame, scores_frame
from evaluation.suites import Case
from evaluation.wording import counted
from tasks.results import artifact_key


@task(name="judge-race", cache_policy=NO_CACHE)
def judge_race(
    engine: Engine,
    experiment_id: int,
    experiment: str,
    sweep: Sweep,
    cases: Sequence[Case],
    metric: str,
    published: int = 0,
) -> tuple[Race, RoundPlan | None]:
    """Replay the race on ``metric`` (the run's primary) over the stored generations and
    scores, store its rounds, publish an artifact for each round after the first
    ``published``; return the race and the next round to run (None when the race is
    over)."""
    # pandas: loaded by a race's first round, not before any run's first generation
    from evaluation.adaptive import (
        round_markdown,
        round_rows,
        stored_measures,
        stored_table,
        sweep_race,
    )

    race = sweep_race(sweep, cases, metric)
    with session_scope(engine) as session:
        generations = generations_frame(session, experiment_id)
        table = stored_table(generations, scores_frame(session, experiment_id), metric)
        measures = stored_measures(generations, list(race.settings.limits))
        plan = replay(race, table, measures)
        replace_race_rounds(session, experiment_id, round_rows(race))
    labels = {c.hash: c.label for c in sweep.configs}
    for r in race.rounds[published:]:
        create_markdown_artifact(
            key=artifact_key(experiment, f"race-round-{r.index + 1}"),
            markdown=round_markdown(race, r, labels, sweep.simulated),
            description=f"Race round {r.index + 1} of {experiment}"
            + (" (SIMULATED)" if sweep.simulated else ""),
        )
    logger = get_run_logger()
    if plan is not None:
        logger.info(
            "race round %d: %d configs on %d new cases (%d generations so far of %d)",
            plan.index + 1,
            len(plan.configs),
            len(plan.cases),
            race.spent,
            race.full_grid,
        )
    elif race.outcome is not None:
        logger.info(
            "race over after %s: %s (%s)",
            counted(len(race.rounds), "round"),
            race.outcome.describe(labels),
            race.bound_text,
        )
    return race, plan
