"""The `rescore` flow: recompute scores and aggregates of finished generations with new
or changed metrics, without generating anything."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.utilities.annotations import quote

from evaluation.embeddings import stored_hosts
from evaluation.metrics import get_metrics
from evaluation.monitor import store_summary
from evaluation.report.files import report_path, reports_folder
from evaluation.storage.db import open_database, session_scope
from evaluation.storage.repository import get_experiment, set_experiment_metrics, suite_path
from evaluation.suites import load_suite
from flows.run_names import rescore_run_name
from tasks.compare import compare_configs
from tasks.report import publish_report
from tasks.results import aggregate, publish, score
from tasks.sweep import store_view_pages


@flow(name="rescore", flow_run_name=rescore_run_name)
def rescore(
    experiment: str,
    metrics: list[str] | None = None,
    database: str | None = None,
    first: str | None = None,
) -> dict[str, int | str]:
    """Score ``experiment``'s stored generations on ``metrics`` (default: every metric it
    has) and republish its leaderboard and comparison. ``metrics`` are added to the
    experiment's own, which keep their stored scores (a metric named again is scored
    again). ``first`` is scored too and put first among them: the metric the leaderboard
    ranks by and the selector reads quality from (:mod:`selection.quality`), so that
    experiments that put different metrics first can be made to agree. The run's view
    pages are stored again and its report file, where its run wrote one, written again
    (both read the old scores until then). Returns the generations scored and the
    report's path ("" where there was none to rewrite)."""
    engine = open_database(database)
    with session_scope(engine) as session:
        row = get_experiment(session, experiment)
        named = (*([first] if first else []), *(metrics or []))
        chosen = tuple(dict.fromkeys(named or row.metrics))
        every = tuple(dict.fromkeys((*([first] if first else []), *row.metrics, *chosen)))
        # unknown names fail here, before anything is rewritten, and so does a scorer of
        # the experiment's whose code does not import here: every metric is aggregated
        get_metrics(every)
        set_experiment_metrics(session, row.id, every)
        suite = load_suite(suite_path(session, row.suite))
        experiment_id = row.id
        hosts = stored_hosts(row.spec)
    scored = score(engine, experiment_id, suite, chosen, hosts)
    aggregate(engine, experiment_id, suite, every)
    publish(engine, experiment_id)
    # The comparison again, as a run ends: its verdict (status, the monitor's recent runs)
    # named the old first config after a rescore had flagged it for echoing the prompt.
    comparison = compare_configs(engine, experiment_id)
    with session_scope(engine) as session:
        store_summary(session, experiment_id)  # one counted while it rescored is stale
    store_view_pages(engine, experiment_id)
    report, rewritten = report_path(reports_folder(), experiment), ""
    if report.exists():  # the run's own; `evalflow report --out` files are the user's
        rewritten = str(publish_report(engine, experiment_id, report.parent, quote(comparison)))
    get_run_logger().info("rescored %d generations of %s on %s", scored, experiment, chosen)
    return {"scored": scored, "report": rewritten}
