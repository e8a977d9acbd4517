"""CPU of storing people's ratings, per rating: ``evalflow import-ratings``'s path
(``evaluation.calibration._import.import_ratings``: the file checked, then every rating
stored in one transaction) and the review page's save (``record_pair_rating`` in
``storage.db.saved_at_once``, one pair's stars and preference a save).

An experiment of two configs whose cases each have one successful output per config
(``tests/support/review_db.py``'s, in a fresh SQLite file each round); a ratings file of
``--ratings`` ratings by ``--raters`` raters on two criteria (accuracy, completeness).
Each round times, as CPU of this process (``time.process_time``):

- ``check``: ``check_ratings`` alone (reading and matching the file; no write);
- ``new``: the first import (every rating new);
- ``again``: the same file again (every rating unchanged: nothing stored);
- ``changed``: the file with every grade moved by one (every rating supersedes one);
- ``review``: ``--pairs`` review saves, each a pair's 3 blind criteria on both sides and
  its preference (7 ratings), in a transaction of its own.

    PYTHONPATH=. .venv/bin/python benchmarks/perf/ratings_store.py [--ratings 10000] \
        [--raters 2] [--pairs 100] [--rounds 3] [--profile 25]

``--profile N``: the first import of the last round under cProfile (process time), its
top N functions by cumulative time. Prints ms of CPU per rating of each phase, the
median over the rounds, the load and the process's peak memory.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from evaluation.calibration._import import check_ratings, import_ratings  # noqa: E402
from evaluation.review.store import CRITERIA, record_pair_rating, save_pairs  # noqa: E402
from evaluation.storage.db import saved_at_once, session_scope  # noqa: E402
from evaluation.storage.repository import generations_frame  # noqa: E402
from tests.support.review_db import build_review_db  # noqa: E402

RATED = ("accuracy", "completeness")
PHASES = ("check", "new", "again", "changed", "review")


def build(url: str, n_cases: int) -> tuple[Engine, int, list[dict]]:
    """The experiment "bench" (two configs, one output each per case; the tests' review
    experiment): its engine, its id and its generations (case uid, case, config, id)."""
    db = build_review_db(url, name="bench", n_cases=n_cases, temperatures=(0.0, 0.7))
    with Session(db.engine) as session:
        gens = generations_frame(session, db.experiment_id)
    rows = [
        {
            "uid": f"{db.suite.name}/{g.case_id}",
            "case": str(g.case_id),
            "config": str(g.config_hash),
            "id": int(g.id),
        }
        for g in gens.itertuples()
    ]
    return db.engine, db.experiment_id, rows


def ratings_file(path: Path, gens: list[dict], raters: int, n: int, shift: int) -> None:
    """``n`` ratings of ``gens`` (each output by every rater on each of ``RATED``), their
    grades moved by ``shift`` (mod 5)."""
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["case", "config", "rater", "criterion", "stars"])
        written = 0
        for i, g in enumerate(gens):
            for r in range(raters):
                for criterion in RATED:
                    if written == n:
                        return
                    stars = 1 + (i + r + shift) % 5
                    out.writerow([g["case"], g["config"], f"rater{r}", criterion, stars])
                    written += 1


def review_saves(
    engine: Engine, experiment_id: int, gens: list[dict], pairs: int
) -> tuple[int, float]:
    """``pairs`` review saves of pairs of the two configs' outputs of one case: the
    ratings stored and the CPU seconds of the saves."""
    by_case: dict[str, list[int]] = {}
    for g in gens:
        by_case.setdefault(g["uid"], []).append(g["id"])
    draws = [(uid, *ids) for uid, ids in list(by_case.items())[:pairs]]
    with session_scope(engine) as session:
        pair_ids = [p.id for p in save_pairs(session, experiment_id, draws)]
    blind = [c for c in CRITERIA if c != "speed"]
    stored = 0
    start = time.process_time()
    for k, pair_id in enumerate(pair_ids):
        stars = {side: dict.fromkeys(blind, 1 + (k + j) % 5) for j, side in enumerate("AB")}

        def save(session, pair_id=pair_id, stars=stars):
            return record_pair_rating(
                session, pair_id, rater="reviewer", stars=stars, preference="A"
            )

        stored += len(saved_at_once(engine, save).ratings)
    return stored, time.process_time() - start


def one_round(args, home: Path, profile: bool) -> dict[str, float]:
    per = max(1, args.raters * len(RATED))
    n_cases = -(-args.ratings // (2 * per))
    url = args.url or f"sqlite:///{home}/bench.db"
    engine, experiment_id, gens = build(url, max(n_cases, args.pairs))
    first, second = home / "ratings.csv", home / "changed.csv"
    ratings_file(first, gens, args.raters, args.ratings, 0)
    ratings_file(second, gens, args.raters, args.ratings, 1)
    spent: dict[str, float] = {}
    try:
        start = time.process_time()
        check_ratings(engine, "bench", first, criteria=CRITERIA)
        spent["check"] = time.process_time() - start

        def timed(path: Path) -> tuple[float, object]:
            start = time.process_time()
            done = import_ratings(engine, "bench", path, criteria=CRITERIA)
            return time.process_time() - start, done

        if profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        spent["new"], done = timed(first)
        if profile:
            profiler.disable()
        assert done.stored == args.ratings, done
        spent["again"], done = timed(first)
        assert done.unchanged == args.ratings, done
        spent["changed"], done = timed(second)
        assert done.superseded == args.ratings, done
        stored, spent["review"] = review_saves(engine, experiment_id, gens, args.pairs)
        assert stored == 7 * args.pairs, stored
    finally:
        engine.dispose()
    per_rating = {phase: spent[phase] / args.ratings * 1e3 for phase in PHASES[:4]}
    per_rating["review"] = spent["review"] / (7 * args.pairs) * 1e3
    if profile:
        print(f"\ncProfile of the first import ({args.ratings} ratings), by cumulative time:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    return per_rating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=10_000)
    parser.add_argument("--raters", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=None, help="default: a fresh SQLite file per round")
    parser.add_argument("--profile", type=int, default=0, help="cProfile's top N, last round")
    args = parser.parse_args()
    print(
        f"{args.ratings} ratings by {args.raters} raters on {', '.join(RATED)}; "
        f"{args.pairs} review saves of 7 ratings; ms of CPU a rating"
    )
    print("round  " + "  ".join(f"{p:>8}" for p in PHASES))
    rounds = []
    for k in range(args.rounds):
        with tempfile.TemporaryDirectory() as home:
            last = k == args.rounds - 1
            rounds.append(one_round(args, Path(home), profile=bool(args.profile) and last))
        print(f"{k + 1:>5}  " + "  ".join(f"{rounds[-1][p]:>8.3f}" for p in PHASES))
    medians = {p: statistics.median(r[p] for r in rounds) for p in PHASES}
    load = os.getloadavg()
    print("median " + "  ".join(f"{medians[p]:>8.3f}" for p in PHASES))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"load {load[0]:.1f} {load[1]:.1f}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"the store alone (new - check): {medians['new'] - medians['check']:.3f} ms a rating; "
        f"peak {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
