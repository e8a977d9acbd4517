"""Decode speeds stored before evalflow refused impossible ones: the migration path of
existing databases to "not reported".

A decode speed above ``DECODE_WALL_FACTOR`` times its request's own wall rate (output
tokens / its decode window: from the first streamed token to the end, else the whole
request) is not stored any more (``backends.base.possible_decode_rate``: a llama.cpp
server said 6 tokens took 0.12 ms of a 5.6 s request, 50,262 tokens/s), and readers of
stored generations read an older such value as null. A run's stored
``tokens_per_s`` aggregate, its configs' mean over the generations, was computed before
and kept it (nc-r3: 8,388.2/s where its cases ran at ~13/s), which ``show``, the
report's history and export read. Such generations' ``tokens_per_s`` (and its scores)
become NULL and the aggregate of each config they belong to is the mean of those left
(NULL with n = 0 where none is). ``storage.db.create_tables`` runs it on every database
it opens; once done it finds nothing (the statements are idempotent). A database that
refuses the write (read-only) is left as it is there: its readers still drop such
generations.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine

from evaluation.backends.base import DECODE_WALL_FACTOR


def impossible_rate(table: str = "") -> str:
    """``possible_decode_rate``'s rule in SQL, negated, on the columns of ``table`` (an
    alias, or none): one spelling for the index, this upgrade and the readers."""
    col = f"{table}." if table else ""
    window = (
        f"CASE WHEN {col}ttft_s > 0 AND {col}ttft_s < {col}latency_s "
        f"THEN {col}latency_s - {col}ttft_s ELSE {col}latency_s END"
    )
    return (
        f"{col}latency_s > 0 AND {col}tokens_per_s * ({window}) > "
        f"{DECODE_WALL_FACTOR} * {col}eval_count"
    )


IMPOSSIBLE_RATE = impossible_rate()
"""``possible_decode_rate``'s rule in SQL, its negation: the condition of the partial
index ``ix_generation_impossible_decode`` (``models.Generation``), which holds no row once
this upgrade ran, so that finding none costs an empty index's lookup on every open, not
a scan of every generation (50 ms at 100,000 generations, load 13). An older database's
``ix_generation_impossible_rate`` (the rule on the whole request's latency) is dropped
as it is opened (``models.RETIRED_INDEXES``): no query's condition matches it."""
_IMPOSSIBLE_ROWS = text(
    f"SELECT id, experiment_id, config_hash FROM generations WHERE {IMPOSSIBLE_RATE}"
)
_CHUNK = 500


def forget_impossible_rates(engine: Engine) -> int:
    """Set the impossible decode speeds of older generations to NULL and recompute their
    configs' stored ``tokens_per_s`` aggregates (see the module docstring); how many
    generations changed."""
    with engine.begin() as connection:
        return _forget(connection)


def _forget(connection: Connection) -> int:
    rows = connection.execute(_IMPOSSIBLE_ROWS).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    for start in range(0, len(ids), _CHUNK):
        chunk = {"ids": ids[start : start + _CHUNK]}
        for statement in (
            "UPDATE generations SET tokens_per_s = NULL WHERE id IN :ids",
            "UPDATE scores SET value = NULL WHERE metric = 'tokens_per_s' "
            "AND generation_id IN :ids",
        ):
            connection.execute(text(statement).bindparams(bindparam("ids", expanding=True)), chunk)
    for experiment_id, config_hash in {(r.experiment_id, r.config_hash) for r in rows}:
        _recompute_aggregate(connection, experiment_id, config_hash)
    return len(ids)


def _recompute_aggregate(connection: Connection, experiment_id: int, config_hash: str) -> None:
    """The config's ``tokens_per_s`` aggregate as a sweep computes it now
    (``compare._leaderboard._fact_rows``: the mean over its ok generations that have
    one); an interval stored with it, computed with the impossible value in, is dropped."""
    key = {"e": experiment_id, "c": config_hash}
    n, mean = connection.execute(
        text(
            "SELECT count(tokens_per_s), avg(tokens_per_s) FROM generations "
            "WHERE experiment_id = :e AND config_hash = :c AND status = 'ok'"
        ),
        key,
    ).one()
    connection.execute(
        text(
            "UPDATE aggregates SET n = :n, mean = :m, se = NULL, ci_low = NULL, "
            "ci_high = NULL WHERE experiment_id = :e AND config_hash = :c "
            "AND metric = 'tokens_per_s'"
        ),
        key | {"n": int(n or 0), "m": None if mean is None else float(mean)},
    )
