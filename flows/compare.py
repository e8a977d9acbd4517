"""The `compare` flow: paired comparisons of configs already stored, within one
experiment or across experiments of one suite (last night's run against the accepted
baseline), published as artifacts and stored as comparison rows."""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow

from evaluation.compare._comparison import parse_selections
from evaluation.storage.db import open_database
from evaluation.storage.scorers import stored_declarations_read
from flows.run_names import compare_run_name
from tasks.compare import compare_and_publish, compare_stored_and_publish


@flow(name="compare", flow_run_name=compare_run_name)
def compare(
    experiments: list[str],
    configs: list[str] | None = None,
    baseline: str | None = None,
    adjust: Literal["holm", "fdr_bh"] = "holm",
    database: str | None = None,
) -> dict[str, Any]:
    """Compare stored configs and publish the comparison.

    Args:
        experiments: experiment names. One experiment without ``configs`` is compared
            exactly as the `evaluate` flow's last stage does.
        configs: config hashes or labels, each looked up in every experiment, or
            "<experiment>:<hash or label>" for one; an experiment none applies to
            contributes all its configs. Default: all configs.
        baseline: compare each config with this one (a name from the report, an
            experiment contributing one config, a hash or a label) instead of all pairs;
            any config of the experiments, compared too where ``configs`` leave it out.
        adjust: "holm" (family-wise error) or "fdr_bh" (false discovery rate).
        database: a SQLAlchemy URL; defaults to $EVALFLOW_DATABASE_URL or ~/.evalflow.
    """
    engine = open_database(database)
    selections = parse_selections(experiments, configs)
    with stored_declarations_read(engine, experiments):  # it reads, as `compare` does
        if len(selections) == 1 and selections[0][1] is None:
            return compare_and_publish(engine, selections[0][0], baseline=baseline, adjust=adjust)
        return compare_stored_and_publish(engine, selections, baseline=baseline, adjust=adjust)
