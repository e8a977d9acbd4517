"""Running a judge over an experiment and storing what it said.

Pointwise: every successful generation of the chosen configs is graded; each criterion
becomes a ``judgements`` row (stars None and the reason when unscored) and a score
``judge_<criterion>`` on the unit scale, (stars − 1)/4, like the human ratings.
Pairwise: the experiment's review pairs (drawn if there are none yet) are judged in both
orders; each order is a row.

Verdicts are stored as they complete (every ``flush_every_s``, and whatever is completed
when the run stops: an error, Ctrl-C or SIGTERM), so an interrupted run keeps its work. A
rerun with the same judge (kind:model) skips what it already stored (a generation with a
row for every criterion of the rubric, a pair with both orders), unscored verdicts
included: the judge asks with fixed seeds, so asking again would repeat them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from evaluation.review._names import JUDGE_PREFIX
from evaluation.review.frames import pairs_frame
from evaluation.review.judge import (
    Judge,
    JudgeScore,
    PairVerdict,
    combine_orders,
    contradiction_rate,
)
from evaluation.review.pairing import PairDraw, draw_pairs, resolve_configs
from evaluation.review.progress import JudgeProgress
from evaluation.review.schema import Judgement
from evaluation.review.store import PREFERENCE, save_pairs
from evaluation.storage.db import session_scope
from evaluation.storage.models import CaseRow, Generation
from evaluation.storage.repository import (
    experiment_configs,
    generations_frame,
    get_experiment,
    replace_scores,
)


@dataclass(frozen=True)
class JudgeRun:
    """What a judge run did."""

    judge: str
    generations: int
    scored: int
    unscored: int
    pairs: int
    contradiction_rate: float | None
    pairs_judged: int = 0  # pairs with a preference in both orders
    failures: tuple[str, ...] = ()  # the distinct reasons judgements came back unscored
    already_stored: int = 0  # generations and pairs a rerun found judged and skipped


async def judge_experiment(
    engine: Engine,
    experiment: str,
    judge: Judge,
    *,
    configs: Sequence[str] | None = None,
    limit_per_config: int | None = None,
    pairwise: bool = True,
    pairs_per_config_pair: int | None = 10,
    concurrency: int = 2,
    seed: int = 0,
    progress: JudgeProgress | None = None,
    flush_every_s: float = 2.0,
    waiting_line_after_s: float = 3.0,
) -> JudgeRun:
    """Grade the experiment's outputs (and its review pairs) with ``judge``; the host
    and the judge model are checked first (after the experiment and configs, which need
    no host), unless every verdict is already stored (then the host is not asked).
    ``limit_per_config`` bounds both: at most that many generations per config and
    pairs per two configs (each pair is asked in both orders)."""
    with session_scope(engine) as session:
        row = get_experiment(session, experiment)
        experiment_id = int(row.id)
        table = experiment_configs(session, experiment_id)
        chosen = resolve_configs(table, configs, row.name) if configs else table["hash"].tolist()
        gens = generations_frame(session, experiment_id)
        gens = gens[(gens["status"] == "ok") & gens["config_hash"].isin(chosen)]
        if limit_per_config is not None:
            gens = gens.groupby("config_hash", sort=False).head(limit_per_config)
        pairs = pd.DataFrame(columns=["case_uid", "generation_a", "generation_b"])
        drawn: list[PairDraw] = []  # new pairs, stored once the host has been checked
        if pairwise and len(chosen) >= 2:
            per_pair = pairs_per_config_pair
            if limit_per_config is not None:  # --limit bounds the pairs too
                per_pair = min(per_pair or limit_per_config, limit_per_config)
            pairs, drawn = _review_pairs(session, experiment_id, chosen, per_pair, seed)
            if per_pair is not None:  # pairs drawn earlier (by `review`) may be more
                pairs = pairs.groupby(["config_a", "config_b"], sort=False).head(per_pair)
        cases = _cases(session, {*gens["case_uid"], *pairs["case_uid"]})
        outputs = _outputs(session, {*pairs["generation_a"], *pairs["generation_b"]})
    stored_scores, stored_verdicts = _stored(engine, experiment_id, judge)
    todo_gens = gens[~gens["id"].astype(int).isin(stored_scores)]
    todo_pairs = pairs[[_pair_key(p) not in stored_verdicts for p in pairs.itertuples()]]
    if len(todo_gens) + len(todo_pairs):  # all stored: nothing to ask, no server to wait on
        await _preflight(judge, progress, waiting_line_after_s)
    if drawn:  # the host and its model are there: nothing is written before that is known
        with session_scope(engine) as session:
            save_pairs(
                session,
                experiment_id,
                [(d.case_uid, d.generation_a, d.generation_b) for d in drawn],
                seed=seed,
            )
    gate = asyncio.Semaphore(max(1, concurrency))
    graded = [(None, stored_scores[int(i)]) for i in gens["id"] if int(i) in stored_scores]
    verdicts = [
        (p, stored_verdicts[_pair_key(p)])
        for p in pairs.itertuples()
        if _pair_key(p) in stored_verdicts
    ]
    if progress is not None:
        progress.start(len(graded) + len(verdicts), len(todo_gens) + len(todo_pairs))
    unstored: list[tuple[Any, Any]] = []  # completed, not yet in the database
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        batch = unstored[:]
        del unstored[: len(batch)]
        last_flush = time.monotonic()
        if not batch:
            return
        with session_scope(engine) as session:
            _store_pointwise(session, experiment_id, judge, [b for b in batch if b[0] == "g"])
            _store_pairwise(session, experiment_id, judge, [b for b in batch if b[0] == "p"])

    def completed(kind: str, item: Any, result: Any, scored: bool) -> None:
        unstored.append((kind, item, result))
        (graded if kind == "g" else verdicts).append((item, result))
        if time.monotonic() - last_flush >= flush_every_s:
            flush()
        if progress is not None:
            progress.completed(scored)

    async def grade(g):
        case = cases[g.case_uid]
        async with gate:
            score = await judge.score(case.input_text, g.output, case.references)
        completed("g", g, score, score.scored)

    async def compare(p):
        case = cases[p.case_uid]
        a, b = outputs[int(p.generation_a)], outputs[int(p.generation_b)]
        async with gate:
            verdict = await judge.compare(case.input_text, a, b, case.references)
        completed("p", p, verdict, verdict.forward is not None and verdict.backward is not None)

    tasks = [asyncio.ensure_future(grade(g)) for g in todo_gens.itertuples()]
    tasks += [asyncio.ensure_future(compare(p)) for p in todo_pairs.itertuples()]
    try:
        await asyncio.gather(*tasks)
    finally:  # an error or an interrupt (Ctrl-C, SIGTERM) keeps what was completed
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        flush()
    scored = sum(1 for _, s in graded if s.scored)
    judged = [v for _, v in verdicts if v.forward is not None and v.backward is not None]
    rate, _ = contradiction_rate([v for _, v in verdicts])
    reasons = [s.reason for _, s in graded if not s.scored]
    reasons += [v.reason for _, v in verdicts if v.forward is None or v.backward is None]
    return JudgeRun(
        judge.name,
        len(graded),
        scored,
        len(graded) - scored,
        len(verdicts),
        rate,
        pairs_judged=len(judged),
        failures=distinct_failures(reasons),
        already_stored=len(gens) - len(todo_gens) + len(pairs) - len(todo_pairs),
    )


async def _preflight(judge: Judge, progress: JudgeProgress | None, after_s: float) -> None:
    """``judge.preflight()``, telling ``progress`` it waits on the server when no answer
    came within ``after_s`` (a busy server can keep silent for a minute); a quick answer
    or refusal says nothing more (a refusal stays one line)."""
    check = asyncio.ensure_future(judge.preflight())
    try:
        await asyncio.wait_for(asyncio.shield(check), after_s)
    except TimeoutError:
        if progress is not None:
            progress.asking(judge.name)
        await check
    finally:
        check.cancel()  # interrupted while waiting: no check left running


def _pair_key(p) -> frozenset[int]:
    return frozenset((int(p.generation_a), int(p.generation_b)))


def _stored(
    engine: Engine, experiment_id: int, judge: Judge
) -> tuple[dict[int, JudgeScore], dict[frozenset[int], PairVerdict]]:
    """What ``judge`` already stored for the experiment: a grade per generation with a
    row for every criterion of the rubric, and a verdict per pair of generations with
    both orders (a pair with only one order is asked again)."""
    query = select(
        Judgement.generation_id,
        Judgement.other_generation_id,
        Judgement.criterion,
        Judgement.stars,
        Judgement.preference,
        Judgement.reason,
        Judgement.attempts,
        Judgement.seed,
    ).where(Judgement.experiment_id == experiment_id, Judgement.judge == judge.name)
    with session_scope(engine) as session:
        rows = session.exec(query).all()
    criteria = list(judge.rubric.criteria)
    per_generation: dict[int, dict[str, Any]] = {}
    orders: dict[tuple[int, int], Any] = {}
    for row in rows:
        if row.criterion == PREFERENCE:
            orders[(int(row.generation_id), int(row.other_generation_id))] = row
        elif row.criterion in judge.rubric.criteria:
            per_generation.setdefault(int(row.generation_id), {})[row.criterion] = row
    scores: dict[int, JudgeScore] = {}
    for gid, by_name in per_generation.items():
        if len(by_name) < len(criteria):
            continue
        first = by_name[criteria[0]]
        stars = {n: by_name[n].stars for n in criteria}
        complete = all(v is not None for v in stars.values())
        scores[gid] = JudgeScore(
            stars if complete else None, first.reason, first.attempts, first.seed
        )
    verdicts: dict[frozenset[int], PairVerdict] = {}
    for a, b in orders:
        forward, backward = orders.get((a, b)), orders.get((b, a))
        if forward is None or backward is None:
            continue
        preference, contradicted = combine_orders(forward.preference, backward.preference)
        verdicts[frozenset((a, b))] = PairVerdict(
            forward.preference,
            backward.preference,
            preference,
            contradicted,
            forward.reason,
            forward.attempts,  # both rows hold the pair's total
        )
    return scores, verdicts


def distinct_failures(reasons: Sequence[str]) -> tuple[str, ...]:
    """The distinct per-attempt problems in unscored judgements' reasons (which read
    ``unscored: attempt 1: …; attempt 2: …``), in the order first seen, each followed by
    how many judgements had it when more than one did (`` (×3)``)."""
    seen: Counter[str] = Counter()
    for reason in reasons:
        parts = (p.strip().rstrip(";|").strip() for p in re.split(r"attempt \d+: ", reason)[1:])
        seen.update(dict.fromkeys(parts, 1))  # once per judgement
    return tuple(part + (f" (×{n})" if n > 1 else "") for part, n in seen.items())


def _cases(session, uids: set[str]) -> dict[str, CaseRow]:
    rows = session.exec(select(CaseRow).where(CaseRow.uid.in_(sorted(uids)))).scalars()
    return {c.uid: c for c in rows}


def _outputs(session, ids: set[int]) -> dict[int, str]:
    query = select(Generation.id, Generation.output).where(
        Generation.id.in_(sorted(int(i) for i in ids))
    )
    return {int(i): o for i, o in session.exec(query).all()}


def _review_pairs(
    session, experiment_id, configs, per_pair, seed
) -> tuple[pd.DataFrame, list[PairDraw]]:
    """The stored review pairs among ``configs``; if there are none, pairs drawn now and
    not yet stored (the caller stores them after checking the judge host), as the frame
    and as draws."""
    pairs = pairs_frame(session, experiment_id)
    chosen = set(configs)
    pairs = pairs[pairs["config_a"].isin(chosen) & pairs["config_b"].isin(chosen)]
    if not pairs.empty:
        return pairs, []
    draws = draw_pairs(
        generations_frame(session, experiment_id), configs, per_pair=per_pair, seed=seed
    )
    frame = pd.DataFrame(
        [asdict(d) for d in draws],
        columns=["case_uid", "generation_a", "generation_b", "config_a", "config_b"],
    )
    return frame, draws


def _store_pointwise(session, experiment_id, judge: Judge, graded) -> None:
    """``graded``: ("g", generation row, JudgeScore) triples."""
    graded = [(g, score) for _, g, score in graded]
    ids = [int(g.id) for g, _ in graded]
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        session.exec(
            delete(Judgement).where(
                Judgement.judge == judge.name,
                Judgement.criterion != PREFERENCE,
                Judgement.generation_id.in_(chunk),
            )
        )
    for name in judge.rubric.criteria:
        values = []
        for g, score in graded:
            stars = None if score.stars is None else score.stars[name]
            session.add(
                Judgement(
                    experiment_id=experiment_id,
                    judge=judge.name,
                    generation_id=int(g.id),
                    criterion=name,
                    stars=stars,
                    reason=score.reason,
                    attempts=score.attempts,
                    seed=score.seed,
                )
            )
            values.append(np.nan if stars is None else (stars - 1) / 4)
        replace_scores(session, ids, f"{JUDGE_PREFIX}{name}", values)


def _store_pairwise(session, experiment_id, judge: Judge, verdicts) -> None:
    """``verdicts``: ("p", pair row, PairVerdict) triples."""
    for _, p, verdict in verdicts:
        a, b = int(p.generation_a), int(p.generation_b)
        session.exec(
            delete(Judgement).where(
                Judgement.judge == judge.name,
                Judgement.criterion == PREFERENCE,
                Judgement.generation_id.in_([a, b]),
                Judgement.other_generation_id.in_([a, b]),
            )
        )
        for first, second, choice in ((a, b, verdict.forward), (b, a, verdict.backward)):
            session.add(
                Judgement(
                    experiment_id=experiment_id,
                    judge=judge.name,
                    generation_id=first,
                    other_generation_id=second,
                    criterion=PREFERENCE,
                    preference=choice,
                    reason=verdict.reason,
                    attempts=verdict.attempts,
                    seed=judge.seed,
                )
            )


def pairwise_verdicts(judgements: pd.DataFrame) -> list[PairVerdict]:
    """Stored pairwise rows (both orders of each pair) back as verdicts, per judge and
    pair of generations; a pair missing one order is left out."""
    rows = judgements[judgements["criterion"] == PREFERENCE]
    verdicts: list[PairVerdict] = []
    seen: dict[tuple[str, frozenset], dict[int, str | None]] = {}
    for r in rows.itertuples():
        key = (r.judge, frozenset((int(r.generation_id), int(r.other_generation_id))))
        pref = None if pd.isna(r.preference) else str(r.preference)
        seen.setdefault(key, {})[int(r.generation_id)] = pref
    for (_, pair), choices in seen.items():
        if len(choices) != 2:
            continue
        a, b = sorted(pair)
        preference, contradicted = combine_orders(choices[a], choices[b])
        verdicts.append(PairVerdict(choices[a], choices[b], preference, contradicted, "", 2))
    return verdicts
