"""Tasks after generation: score, aggregate, publish. Imported as a run starts, so what
only they need (the scorers' pandas, the race's standing) loads when they run, not
before the first generation (tests/test_architecture.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from evaluation.artifact_keys import artifact_key
from evaluation.compare._leaderboard import (
    Leaderboard,
    aggregate_rows,
    load_leaderboard,
    render_markdown,
    table_rows,
)
from evaluation.embeddings import Embedder
from evaluation.metrics import get_metrics
from evaluation.run._heap import release_freed
from evaluation.spec import HostSpec
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment
from evaluation.storage.repository import (
    generated_configs,
    generation_facts_frame,
    generations_frame,
    replace_aggregates,
    replace_score_details,
    replace_scores,
    scores_frame,
)
from evaluation.storage.scorers import keep_declarations
from evaluation.suites import Suite
from evaluation.view import view_hint

if TYPE_CHECKING:
    from evaluation.metrics import Scored


@task(name="score", cache_policy=NO_CACHE)
def score(
    engine: Engine,
    experiment_id: int,
    suite: Suite,
    metrics: tuple[str, ...],
    hosts: tuple[HostSpec, ...] = (),
) -> int:
    """Score every successful generation on ``metrics`` (replacing earlier scores);
    metrics that need an embedding model get its vectors from ``hosts``."""
    from evaluation.metrics._echo import forget_prompts
    from evaluation.run._scoring import score_generations_detailed

    resolved = get_metrics(metrics)
    embedder = Embedder(hosts) if any(m.embed_model for m in resolved) else None
    known_cases = {c.id for c in suite.cases}
    unknown = 0
    computed: list[tuple[list[int], dict[str, Scored]]] = []
    # Every config scored before any is written: the scores of a run are stored together
    # or not at all (an interrupted rescore keeps none), and written in one short
    # transaction: SQLite takes one writer at a time, and the whole scoring as one write
    # held the lock for minutes while another sweep's end waited and gave up (F5).
    with session_scope(engine) as session:  # reads only
        # config by config: a run's generations at once held hundreds of MiB at 100,000;
        # what is kept of each is its ids and scores
        for config in generated_configs(session, experiment_id):
            generations = generations_frame(session, experiment_id, config=config)
            ok = generations[generations["status"] == "ok"]
            known = ok["case_id"].isin(known_cases)
            unknown += int((~known).sum())
            ok = ok[known]
            values = score_generations_detailed(ok, suite, resolved, embedder=embedder)
            computed.append((ok["id"].tolist(), values))
            del generations, ok, values
            release_freed()  # the frames' memory back to the system (evaluation/run/_heap.py)
    with session_scope(engine) as session:
        keep_declarations(
            session, resolved, experiment_id
        )  # a user's scorer: read where its code is not
        for ids, values in computed:
            for name, column in values.items():
                replace_scores(session, ids, name, column.values)
                replace_score_details(session, ids, name, column.details)
    scored = sum(len(ids) for ids, _ in computed)
    forget_prompts()  # the echo rule's prompts, analysed once for every config's outputs
    if unknown:
        get_run_logger().warning(
            "%d generations refer to cases no longer in suite %s; not scored",
            unknown,
            suite.name,
        )
    return scored


@task(name="aggregate", cache_policy=NO_CACHE)
def aggregate(engine: Engine, experiment_id: int, suite: Suite, metrics: tuple[str, ...]) -> None:
    """Means with 95% intervals per config and metric, plus latency and failure facts."""
    resolved = get_metrics(metrics)
    with session_scope(engine) as session:
        rows = aggregate_rows(
            generation_facts_frame(
                session, experiment_id, outputs=any(m.corpus_level for m in resolved)
            ),
            scores_frame(session, experiment_id),
            resolved,
            suite,
        )
        replace_aggregates(session, experiment_id, rows)
    release_freed()  # the frames' memory back to the system (evaluation/run/_heap.py)


@task(name="publish-leaderboard", cache_policy=NO_CACHE)
def publish(engine: Engine, experiment_id: int) -> Leaderboard:
    """Markdown leaderboard and table artifacts, keyed per experiment (a race's standing
    under the leaderboard)."""
    from evaluation.adaptive import stored_standing

    with session_scope(engine) as session:
        name = session.get(Experiment, experiment_id).name
        board = load_leaderboard(session, name)
        labels = dict(zip(board.table["config"], board.table["label"], strict=True))
        race = stored_standing(session, experiment_id, labels)
    create_markdown_artifact(
        key=artifact_key(name, "leaderboard"),
        markdown=f"{render_markdown(board)}\n\n{view_hint(name)}.\n"
        + (f"\n{race.markdown()}\n" if race else ""),
        description=f"Leaderboard of {name}" + (" (SIMULATED)" if board.simulated else ""),
    )
    create_table_artifact(
        key=artifact_key(name, "table"),
        table=table_rows(board),
        description=f"Per-config results of {name}" + (" (SIMULATED)" if board.simulated else ""),
    )
    return board
