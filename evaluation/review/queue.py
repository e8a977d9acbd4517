"""Which pairs a review shows, in what order, and what a pair looks like to a rater:
shared by the web app and the Prefect review flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from evaluation.compare._leaderboard import load_leaderboard
from evaluation.errors import EvalError, StorageError
from evaluation.review.frames import ratings_frame
from evaluation.review.pairing import default_configs, draw_pairs, resolve_configs
from evaluation.review.schema import ReviewPair
from evaluation.review.store import current_pair_rating, rated_pair_ids, save_pairs
from evaluation.storage.db import session_scope
from evaluation.storage.models import CaseRow, Generation
from evaluation.storage.prompts import sent_messages
from evaluation.storage.repository import (
    case_input,
    experiment_configs,
    generations_frame,
    get_experiment,
)


@dataclass(frozen=True)
class ReviewQueue:
    """The pairs this server shows, in order, and who rates them."""

    experiment: str
    experiment_id: int
    rater: str
    pair_ids: tuple[int, ...]
    configs: tuple[str, ...]
    labels: dict[str, dict[str, str]]
    simulated: bool


def prepare_queue(
    engine: Engine,
    experiment: str,
    rater: str,
    *,
    configs: Sequence[str] | None = None,
    per_pair: int | None = 10,
    seed: int = 0,
    unrated_only: bool = False,
) -> ReviewQueue:
    """Resolve the configs (default: the two best by the experiment's first metric),
    draw and store the pairs. ``unrated_only``: only outputs nobody has given stars yet
    are drawn (at random, as always: what people rate next must stay a random draw for
    the combined estimates, evaluation/calibration/_plan.py)."""
    if not rater.strip():
        raise EvalError("a review needs a rater name")
    with session_scope(engine) as session:
        row = get_experiment(session, experiment)
        table = experiment_configs(session, row.id)
        board = load_leaderboard(session, experiment)
        if configs:
            chosen = resolve_configs(table, configs, row.name)
        else:
            chosen = default_configs(board.table, board.metrics[0] if board.metrics else None)
        if len(set(chosen)) < 2:
            raise EvalError(
                "side-by-side review needs two different configs; the names given all "
                f"name {', '.join(dict.fromkeys(chosen))}"
            )
        generations = generations_frame(session, row.id)
        if unrated_only:
            rated = ratings_frame(session, row.id)
            starred = rated.loc[rated["stars"].notna(), "generation_id"]
            generations = generations[~generations["id"].isin(set(starred))]
        draws = draw_pairs(generations, chosen, per_pair=per_pair, seed=seed)
        if not draws:
            raise StorageError(
                f"configs {', '.join(chosen)} of {experiment!r} share no successful case"
            )
        pairs = save_pairs(
            session,
            row.id,
            [(d.case_uid, d.generation_a, d.generation_b) for d in draws],
            seed=seed,
        )
        labels = {  # as the leaderboard names them
            str(r["hash"]): {
                "config": str(r["hash"]),
                "label": board.labels.get(str(r["hash"]), str(r["label"])),
                "model": r["model"],
            }
            for r in table.to_dict("records")
        }
        return ReviewQueue(
            experiment=row.name,
            experiment_id=int(row.id),
            rater=rater.strip(),
            pair_ids=tuple(int(p.id) for p in pairs),
            configs=tuple(chosen),
            labels=labels,
            simulated=bool(row.simulated),
        )


def progress(queue: ReviewQueue, rated: set[int]) -> dict[str, int]:
    return {"rated": len(rated), "total": len(queue.pair_ids)}


def pair_view(
    session: Session, queue: ReviewQueue, pair_id: int, *, reveal: bool = False
) -> dict[str, Any]:
    """What the page shows for a pair: the case's whole input (system prompt and every
    turn), its references and the two outputs. Which config wrote which output, and each
    output's latency, only when ``reveal`` and the rater has rated the pair (the caller
    says when a session reveals: at its end, or for this pair when the rater asks)."""
    pair = session.get(ReviewPair, pair_id)
    case = session.get(CaseRow, pair.case_uid)
    sides = {"A": session.get(Generation, pair.generation_a)}
    sides["B"] = session.get(Generation, pair.generation_b)
    rating = current_pair_rating(session, pair_id, queue.rater)
    identities = None
    if reveal and rating is not None:
        identities = {s: queue.labels.get(g.config_hash, {}) for s, g in sides.items()}
    # The prompt as the models received it (the config's template applied) where both
    # received the same; where the templates differ, the case's own input, since showing
    # each side's prompt would tell the configs apart.
    sent = [sent_messages(session, case, g.config_hash) for g in sides.values()]
    if sent[0] == sent[1]:
        turns, note = sent[0], ""
        system = turns.pop(0)["content"] if turns and turns[0]["role"] == "system" else ""
    else:
        system, turns = case_input(session, case)
        note = "The two outputs' configs use different prompt templates: this is the case's input."
    return {
        "pair_id": pair_id,
        "position": queue.pair_ids.index(pair_id) + 1,
        "case_id": case.case_id,
        "input": case.input_text,
        "system": system,
        "turns": turns,
        "input_note": note,
        "references": list(case.references or []),
        "label": case.label,
        # Latency only once revealed: a slower output names the bigger model.
        "outputs": {
            s: {"text": g.output} | ({"latency_s": g.latency_s} if identities is not None else {})
            for s, g in sides.items()
        },
        "rating": rating,
        "identities": identities,
    }


def revealed_pairs(session: Session, queue: ReviewQueue) -> list[dict[str, Any]]:
    """Who wrote what in every pair the rater rated, in queue order, with the config
    their preference points at (None for a tie) and their stars (speed, rated once
    revealed, among them): the end of a session's reveal, where speed is rated."""
    rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
    out = []
    for pair_id in queue.pair_ids:
        if pair_id not in rated:
            continue
        view = pair_view(session, queue, pair_id, reveal=True)
        preference = view["rating"]["preference"]
        who = view["identities"]
        out.append(
            {
                "pair_id": pair_id,
                "position": view["position"],
                "case_id": view["case_id"],
                "A": who["A"],
                "B": who["B"],
                "preference": preference,
                "preferred": who[preference].get("label") if preference in who else None,
                "stars": view["rating"]["stars"],  # speed among them once rated
            }
        )
    return out


def pending_pairs(session: Session, queue: ReviewQueue) -> list[int]:
    """The queue's pairs the rater has not rated yet, in order."""
    rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
    return [p for p in queue.pair_ids if p not in rated]
