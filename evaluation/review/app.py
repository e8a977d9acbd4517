"""The blinded side-by-side review page: a FastAPI app over the results database.

``create_app(engine, experiment, rater)`` draws the pairs (seeded; see
:mod:`evaluation.review.pairing`), stores them, and serves one page that shows a case
(system prompt, every turn, references) and two outputs as "A" (left) and "B" (right).
Which config wrote which output stays hidden, in the history too, until the session
ends (every pair of the queue rated) or, for one rated pair, until the rater asks;
latency appears only beside the speed criterion. Pages are Jinja2 templates with CSS
and JavaScript files (no build step). Serve it on a loopback address (``evalflow
review`` does): there is no login, the rater is fixed per server, and every page needs
the session's key, set as a cookie by the link the command prints
(``evaluation.view.session_key``: another local user cannot rate as the rater). Its two
writes (a rating, a reveal) come from its own page or are refused with 403: the page's
origin and the token it was served with (``evaluation.view.same_origin``, as the
monitor's writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StrictInt
from sqlalchemy.engine import Engine
from starlette.middleware.trustedhost import TrustedHostMiddleware

from evaluation.review.frames import ratings_frame
from evaluation.review.pages import history_page, review_page
from evaluation.review.queue import (
    ReviewQueue,
    pair_view,
    pending_pairs,
    prepare_queue,
    progress,
    revealed_pairs,
)
from evaluation.review.scores import store_rating_scores
from evaluation.review.store import (
    Criterion,
    Preference,
    rated_pair_ids,
    record_pair_rating,
)
from evaluation.storage.db import saved_at_once, session_scope
from evaluation.view.links import LOOPBACK_HOSTS as LOOPBACK_HOSTS  # kept here too
from evaluation.view.same_origin import foreign_origin, new_token, token_matches
from evaluation.view.session_key import add_session_key, new_key

#: A JSON integer 1-5, as the import and the store take it: not ``true`` (1) nor ``"4"``
#: (pydantic's lax mode made them stars; newcomers' J2).
Stars = Annotated[StrictInt, Field(ge=1, le=5)]


class RatingIn(BaseModel):
    """A rater's verdict on the pair shown: stars per side and criterion (none in fast
    mode), preference, notes."""

    stars: dict[Literal["A", "B"], dict[Criterion, Stars]] = Field(default_factory=dict)
    preference: Preference
    notes: str = Field(default="", max_length=10_000)


def create_app(
    engine: Engine,
    experiment: str,
    rater: str,
    *,
    configs: Sequence[str] | None = None,
    per_pair: int | None = 10,
    seed: int = 0,
    allowed_hosts: Sequence[str] | None = None,
    fast: bool = False,
    unrated_only: bool = False,
    key: str | None = None,
) -> FastAPI:
    """The review app for ``rater`` on ``experiment``. ``allowed_hosts`` (e.g.
    :data:`LOOPBACK_HOSTS`) rejects requests whose Host header names anything else,
    which stops other web pages from reaching a loopback server by DNS rebinding.
    ``fast`` opens the page in fast mode (the preference alone); ``unrated_only`` draws
    only cases nobody has rated yet (``prepare_queue``). Every page but the static files
    needs the session's ``key`` (made here unless given; ``app.state.key``): its link,
    ``?key=KEY``, sets it as a cookie (``evaluation.view.session_key``)."""
    queue = prepare_queue(
        engine,
        experiment,
        rater,
        configs=configs,
        per_pair=per_pair,
        seed=seed,
        unrated_only=unrated_only,
    )
    app = FastAPI(
        title=f"evalflow review: {experiment}", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.key = key or new_key()
    add_session_key(  # the rater's session: nobody without the link reads or writes it
        app,
        app.state.key,
        guarded=lambda path: not path.startswith("/static/"),
        command="evalflow review",
    )
    if allowed_hosts:  # added after: checked first
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(packages=[("evaluation.review", "static")]), name="static")
    app.state.queue = queue
    asked: set[int] = set()  # pairs whose identities the rater asked to see early
    token = new_token()

    def from_the_page(request: Request) -> None:
        """403 unless the write comes from this server's page with its token (S6: a
        body-less POST to reveal is one any web page open in the browser may send)."""
        if (foreign := foreign_origin(request.headers)) is not None:
            raise HTTPException(status_code=403, detail=foreign)
        if not token_matches(request.headers.get("x-csrf-token"), token):
            raise HTTPException(
                status_code=403,
                detail="refused: the request's token is missing or stale: reload the page",
            )

    def revealed(session, pair_id: int) -> bool:
        rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
        return len(rated) == len(queue.pair_ids) or pair_id in asked

    def view(session, pair_id: int) -> dict[str, Any]:
        rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
        reveal = revealed(session, pair_id)
        return {
            "pair": pair_view(session, queue, pair_id, reveal=reveal),
            "progress": progress(queue, rated),
        }

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return review_page(
            queue.experiment, queue.rater, simulated=queue.simulated, fast=fast, csrf=token
        )

    @app.get("/history", response_class=HTMLResponse)
    def history() -> str:
        return history_page(queue.experiment, queue.rater)

    @app.get("/api/next")
    def next_pair() -> dict[str, Any]:
        with session_scope(engine) as session:
            pending = pending_pairs(session, queue)
            if pending:
                return view(session, pending[0])
            rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
        return {"pair": None, "progress": progress(queue, rated)}

    @app.get("/api/pairs/{pair_id}")
    def get_pair(pair_id: int) -> dict[str, Any]:
        _check_pair(queue, pair_id)
        with session_scope(engine) as session:
            return view(session, pair_id)

    @app.post("/api/pairs/{pair_id}/reveal", dependencies=[Depends(from_the_page)])
    def reveal_pair(pair_id: int) -> dict[str, Any]:
        """The rater asks who wrote this pair before the session ends: only once they
        have rated it, so the answer cannot sway the rating."""
        _check_pair(queue, pair_id)
        with session_scope(engine) as session:
            if pair_id not in rated_pair_ids(session, queue.rater, queue.pair_ids):
                raise HTTPException(status_code=409, detail="rate this pair before revealing it")
            asked.add(pair_id)
            return view(session, pair_id)

    @app.get("/api/reveal")
    def reveal_session() -> dict[str, Any]:
        """Who wrote what in every pair: once the session has ended."""
        with session_scope(engine) as session:
            rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
            if len(rated) < len(queue.pair_ids):
                raise HTTPException(
                    status_code=409,
                    detail=f"{len(queue.pair_ids) - len(rated)} pairs are still to rate",
                )
            return {"pairs": revealed_pairs(session, queue), "progress": progress(queue, rated)}

    @app.post("/api/pairs/{pair_id}/rating", dependencies=[Depends(from_the_page)])
    def rate_pair(pair_id: int, body: RatingIn) -> dict[str, Any]:
        _check_pair(queue, pair_id)

        def save(session) -> dict[str, Any]:
            try:
                recorded = record_pair_rating(
                    session,
                    pair_id,
                    rater=queue.rater,
                    stars=body.stars,
                    preference=body.preference,
                    notes=body.notes,
                    revealed=revealed(session, pair_id),
                )
            except ValueError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
            session.flush()
            store_rating_scores(session, queue.experiment_id)
            return {
                "stored": len(recorded.ratings),
                "superseded": recorded.superseded,
                "unchanged": recorded.unchanged,
                **view(session, pair_id),
            }

        return saved_at_once(engine, save)  # a double click's second save: "unchanged"

    @app.get("/api/history")
    def rater_history() -> dict[str, Any]:
        with session_scope(engine) as session:
            frame = ratings_frame(
                session, queue.experiment_id, current_only=False, rater=queue.rater
            )
            rated = rated_pair_ids(session, queue.rater, queue.pair_ids)
        complete = len(rated) == len(queue.pair_ids)
        shown = set(queue.pair_ids) if complete else asked
        return {
            "rater": queue.rater,
            "blinded": not complete,
            "ratings": _history_rows(frame, queue, shown),
        }

    return app


def _check_pair(queue: ReviewQueue, pair_id: int) -> None:
    if pair_id not in queue.pair_ids:
        raise HTTPException(status_code=404, detail=f"pair {pair_id} is not in this review")


def _history_rows(frame, queue: ReviewQueue, shown: set[int]) -> list[dict[str, Any]]:
    """The rater's ratings, oldest first; a blinded pair's config is named only once
    the pair is in ``shown`` (revealed), so the history cannot unblind it early. A
    preference's row names the side preferred and that side's config."""
    rows = []

    def label(config: str) -> str:
        return queue.labels.get(config, {}).get("label", config)

    for r in frame.to_dict("records"):
        pair_id = _opt_int(r["pair_id"])
        side, config = None, label(r["config"])
        if pair_id is not None and r["criterion"] != "preference":
            side = "A" if r["config"] == r["pair_config_a"] else "B"
        elif pair_id is not None:  # a preference names the preferred output's config
            configs = {"A": r["pair_config_a"], "B": r["pair_config_b"]}
            side = r["preference"] if r["preference"] in configs else None
            config = (
                label(configs[side])
                if side is not None
                else f"tie: A {label(configs['A'])}, B {label(configs['B'])}"
            )
        rows.append(
            {
                "id": int(r["id"]),
                "created_at": str(r["created_at"]),
                "pair_id": pair_id,
                "case_id": r["case_id"],
                "side": side,
                "config": config if pair_id is None or pair_id in shown else None,
                "criterion": r["criterion"],
                "stars": _opt_int(r["stars"]),
                "preference": r["preference"],
                "notes": r["notes"],
                "superseded_by": _opt_int(r["superseded_by"]),
            }
        )
    return rows


def _opt_int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
