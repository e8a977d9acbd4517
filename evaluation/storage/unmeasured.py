"""Latencies stored before evalflow laid simulated calls over the host's slots: the
migration path of existing databases to "not measured".

Before the simulated timeline (``evaluation.pipelines._simulated_time``), a simulated
pipeline case at time scale 0 stored its wall time as its latency: the client's own
overhead (milliseconds), not a latency of anything. Those rows are found by what they
contradict: the case's calls' simulated durations (``total_duration_ns``, summed over its
calls) say its mean call took longer than the stored latency, which no laid latency can
be (it is at least its longest call). Their latency becomes NULL, "not measured", with
the ``latency_s`` scores of those generations and, where a config then has no latency
left, its stored latency aggregates (p50, p95, mean), so every reader (leaderboard,
compare, report, Pareto, selector training data, export) shows "not measured" and gives
no verdict on it. ``storage.db.create_tables`` runs it on every database it opens for
writing; once done it finds nothing (the statements are idempotent), and finding nothing
is a lookup in the partial index ``ix_generation_overhead_latency`` (``OVERHEAD_CANDIDATE``),
not a scan of every case run joined to its generation (50 ms at 100,000 generations, on
every open of every command, `show` and `view` included). Rerunning such an
experiment's sweep does not redo its generations: start a new experiment to measure.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection, Engine


def overhead_candidate(table: str = "") -> str:
    """What every overhead latency's generation satisfies on its own columns (of
    ``table``: an alias, or none): simulated, and its calls' durations more than twice
    its latency (a case of two calls or more whose latency times its calls is under
    their durations; latencies are never negative). The condition of the partial index
    ``ix_generation_overhead_latency`` (``models.Generation``), which holds no real
    generation, nor a simulated one but where its calls overlapped more than twice, so
    that the upgrade finds nothing in a lookup. Spelled with the column first: SQLite
    matches a partial index's terms to a query's as it normalises them (``a * k < b``
    is read ``b > a * k``, and then matched to nothing)."""
    col = f"{table}." if table else ""
    return f"{col}simulated AND {col}total_duration_ns > {col}latency_s * 2e9"


OVERHEAD_CANDIDATE = overhead_candidate()
_OVERHEAD_ROWS = text(
    f"""
    SELECT g.id, g.experiment_id, g.config_hash
    FROM case_runs c
    JOIN generations g
      ON g.experiment_id = c.experiment_id AND g.config_hash = c.config_hash
     AND g.case_uid = c.case_uid AND g.sample_index = c.sample_index
    WHERE {overhead_candidate("g")} AND c.calls > 1 AND g.latency_s IS NOT NULL
      AND g.latency_s * 1e9 * c.calls < g.total_duration_ns
    """
)
LATENCY_AGGREGATES = ("latency_s", "latency_p50_s", "latency_p95_s")


def forget_overhead_latencies(engine: Engine) -> int:
    """Set the overhead latencies of older simulated pipeline cases to NULL (see the
    module docstring); how many generations changed."""
    with engine.begin() as connection:
        rows = connection.execute(_OVERHEAD_ROWS).all()
        if not rows:
            return 0
        ids = [row.id for row in rows]
        for start in range(0, len(ids), 500):
            chunk = {"ids": ids[start : start + 500]}
            connection.execute(
                text("UPDATE generations SET latency_s = NULL WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                chunk,
            )
            connection.execute(
                text(
                    "UPDATE scores SET value = NULL WHERE metric = 'latency_s' "
                    "AND generation_id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                chunk,
            )
        for experiment_id, config_hash in {(r.experiment_id, r.config_hash) for r in rows}:
            _forget_aggregates(connection, experiment_id, config_hash)
    return len(ids)


def _forget_aggregates(connection: Connection, experiment_id: int, config_hash: str) -> None:
    """A config with no latency left: its stored latency aggregates say not measured."""
    key = {"e": experiment_id, "c": config_hash}
    left = connection.execute(
        text(
            "SELECT count(*) FROM generations WHERE experiment_id = :e AND config_hash = :c "
            "AND status = 'ok' AND latency_s IS NOT NULL"
        ),
        key,
    ).scalar_one()
    if left:
        return
    connection.execute(
        text(
            "UPDATE aggregates SET n = 0, mean = NULL, se = NULL, ci_low = NULL, "
            "ci_high = NULL WHERE experiment_id = :e AND config_hash = :c AND metric IN :m"
        ).bindparams(bindparam("m", expanding=True)),
        key | {"m": list(LATENCY_AGGREGATES)},
    )
