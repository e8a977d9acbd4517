"""The `review` flow: blinded side-by-side rating of a small batch of pairs in the
Prefect UI. For each pair the run pauses with a form (stars per criterion for A and B,
a preference, notes) above which the case, the reference and both outputs are shown;
which config wrote which output is logged only once the batch is rated. For longer
sessions use the web page, `evalflow review EXPERIMENT`."""

from __future__ import annotations

import re
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from evaluation.review.queue import pair_view, pending_pairs, prepare_queue
from evaluation.review.scores import store_rating_scores
from evaluation.review.store import CRITERIA, record_pair_rating
from evaluation.settings import database_url
from evaluation.storage.db import make_engine, session_scope
from flows.run_names import review_run_name
from tasks.results import artifact_key

_STARS = {"ge": 1, "le": 5}


class PairRating(RunInput):
    """Stars from 1 (poor) to 5 (excellent) for each output, and which one is better."""

    accuracy_a: int = Field(description="A: accuracy", **_STARS)
    completeness_a: int = Field(description="A: completeness", **_STARS)
    relevance_a: int = Field(description="A: relevance", **_STARS)
    speed_a: int = Field(description="A: speed (latency in the description)", **_STARS)
    accuracy_b: int = Field(description="B: accuracy", **_STARS)
    completeness_b: int = Field(description="B: completeness", **_STARS)
    relevance_b: int = Field(description="B: relevance", **_STARS)
    speed_b: int = Field(description="B: speed (latency in the description)", **_STARS)
    preference: Literal["A", "B", "tie"] = Field(description="Which output is better overall?")
    notes: str = ""

    def stars(self) -> dict[str, dict[str, int]]:
        return {side: {c: getattr(self, f"{c}_{side.lower()}") for c in CRITERIA} for side in "AB"}


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
    engine = make_engine(database_url(database))
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
            markdown=_revealed_markdown(experiment, queue.rater, revealed),
            description=f"Pairs rated by {queue.rater} in {experiment}",
        )
    return {"experiment": experiment, "rater": queue.rater, "rated": len(revealed)}


def describe(view: dict[str, Any]) -> str:
    """The markdown shown above the form: the case, its reference, both outputs, and
    the latencies last, under speed only."""
    parts = [f"### Pair {view['position']}: case `{view['case_id']}`", "**Input**"]
    turns = view.get("turns") or [{"role": "user", "content": view["input"]}]
    if view.get("system"):
        turns = [{"role": "system", "content": view["system"]}, *turns]
    for turn in turns:
        parts += [f"*{turn['role']}*", _fenced(turn["content"])]
    if view["references"]:
        parts += ["**Reference**", _fenced("\n\n".join(view["references"]))]
    for side in "AB":
        parts += [f"**Output {side}**", _fenced(view["outputs"][side]["text"])]
    latency = {side: view["outputs"][side]["latency_s"] for side in "AB"}
    shown = ", ".join(
        f"{side} {'unknown' if v is None else f'{v:.2f} s'}" for side, v in latency.items()
    )
    parts.append(f"**Speed** (for the speed stars only): latency {shown}")
    return "\n\n".join(parts)


def _fenced(text: str) -> str:
    """A code fence longer than any run of backticks inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _revealed_markdown(experiment: str, rater: str, revealed: list) -> str:
    lines = [
        f"# Review of {experiment} by {rater}",
        "",
        "| pair | case | preferred | A | B |",
        "|---|---|---|---|---|",
    ]
    for pair_id, case_id, preference, who in revealed:
        lines.append(f"| {pair_id} | {case_id} | {preference} | {who['A']} | {who['B']} |")
    return "\n".join(lines)
