"""The `review` flow: blinded side-by-side rating of a small batch of pairs in the
Prefect UI. For each pair the run pauses with a form (stars per criterion for A and B,
a preference, notes) above which the case, the reference and both outputs are shown;
which config wrote which output is logged only once the batch is rated. For longer
sessions use the web page, `evalflow review EXPERIMENT`."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

from evaluation.review.markdown import criterion_label, describe, revealed_markdown
from evaluation.review.queue import pair_view, pending_pairs, prepare_queue
from evaluation.review.scores import store_rating_scores
from evaluation.review.store import CRITERIA, Preference, record_pair_rating
from evaluation.storage.db import open_database, session_scope
from flows.run_names import review_run_name
from tasks.results import artifact_key

_STARS = {"ge": 1, "le": 5}


class _PairRatingBase(RunInput):
    """Stars from 1 (poor) to 5 (excellent) for each output, and which one is better."""

    def stars(self) -> dict[str, dict[str, int]]:
        return {side: {c: getattr(self, f"{c}_{side.lower()}") for c in CRITERIA} for side in "AB"}


#: The pause form: one star field per criterion and side, from the domain's CRITERIA.
PairRating = create_model(
    "PairRating",
    __base__=_PairRatingBase,
    __doc__=_PairRatingBase.__doc__,
    **{
        f"{c}_{side.lower()}": (int, Field(description=criterion_label(c, side), **_STARS))
        for side in "AB"
        for c in CRITERIA
    },
    preference=(Preference, Field(description="Which output is better overall?")),
    notes=(str, ""),
)


@flow(name="review", flow_run_name=review_run_name)
def review(
    experiment: str,
    rater: str,
    configs: list[str] | None = None,
    pairs: int = 3,
    seed: int = 0,
    database: str | None = None,
    timeout_s: int = 3600,
    poll_interval_s: int = 10,
) -> dict[str, Any]:
    """Rate up to ``pairs`` blinded pairs of ``experiment`` as ``rater``.

    Args:
        experiment: the experiment's name.
        rater: who is rating (ratings are stored under this name).
        configs: two or more configs (hash, hash prefix or label); default: the two best.
        pairs: how many pairs to rate in this run (a small batch).
        seed: seeds which cases are paired and which side each output is shown on.
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
        timeout_s: how long each pause waits for the form before the run fails.
        poll_interval_s: how often a paused run checks for the form.
    """
    logger = get_run_logger()
    engine = open_database(database)
    queue = prepare_queue(engine, experiment, rater, configs=configs, per_pair=pairs, seed=seed)
    with session_scope(engine) as session:
        batch = pending_pairs(session, queue)[:pairs]
    revealed = []
    for pair_id in batch:
        with session_scope(engine) as session:
            view = pair_view(session, queue, pair_id)
        answer = pause_flow_run(
            wait_for_input=PairRating.with_initial_data(description=describe(view)),
            timeout=timeout_s,
            poll_interval=poll_interval_s,
            key=f"pair-{pair_id}",
        )
        with session_scope(engine) as session:
            record_pair_rating(
                session,
                pair_id,
                rater=queue.rater,
                stars=answer.stars(),
                preference=answer.preference,
                notes=answer.notes,
            )
            store_rating_scores(session, queue.experiment_id)
            view = pair_view(session, queue, pair_id, reveal=True)
        who = {side: ident["label"] for side, ident in view["identities"].items()}
        revealed.append((pair_id, view["case_id"], answer.preference, who))
    for pair_id, _, preference, who in revealed:  # the batch is the session: reveal now
        logger.info("pair %d rated %s: A was %s, B was %s", pair_id, preference, *who.values())
    if revealed:
        create_markdown_artifact(
            key=artifact_key(experiment, "review"),
            markdown=revealed_markdown(experiment, queue.rater, revealed),
            description=f"Pairs rated by {queue.rater} in {experiment}",
        )
    return {"experiment": experiment, "rater": queue.rater, "rated": len(revealed)}
