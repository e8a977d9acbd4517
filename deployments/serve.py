"""The evalflow deployments: served from one process (`evalflow serve`), or registered on
a work pool for a worker per GPU host (`evalflow deploy`, or `prefect deploy` with
``deployments/prefect.yaml``).

Three deployments, visible and editable in the Prefect UI:

- ``evaluate/on-demand``: a sweep when you ask for one (``spec_path`` required).
- ``nightly-regression/nightly``: the regression sweep, cron ``0 2 * * *`` by default,
  compared with the accepted baseline of its spec.
- ``retrain-selector/weekly``: selector retraining, Sundays 04:00 by default.

Serving runs every flow run as a subprocess of the serving process. Registering on a
work pool makes workers run them: each worker changes into the checkout (``source``, the
same path on every worker host) before loading the flow. Schedules fire only against a
Prefect server (``prefect server start``); the ephemeral API does not schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.evaluate import evaluate
from flows.nightly import nightly
from flows.retrain_selector import retrain_selector

NIGHTLY_CRON = "0 2 * * *"
RETRAIN_CRON = "0 4 * * 0"
TAGS = ["evalflow"]
REPO = Path(__file__).resolve().parent.parent
ENTRYPOINTS = {
    "evaluate": "flows/evaluate.py:evaluate",
    "nightly-regression": "flows/nightly.py:nightly",
    "retrain-selector": "flows/retrain_selector.py:retrain_selector",
}


def build_deployments(
    *,
    nightly_spec: str | Path,
    nightly_cron: str = NIGHTLY_CRON,
    retrain_cron: str = RETRAIN_CRON,
    timezone: str = "UTC",
    database: str | None = None,
    work_pool_name: str | None = None,
    source: str | Path = REPO,
) -> list[RunnerDeployment]:
    """The three deployments. ``nightly_spec`` becomes the nightly run's default
    ``spec_path`` (absolute, so runs do not depend on the working directory);
    ``database`` (optional) is the default ``database`` parameter of all three. With
    ``work_pool_name`` the flows are loaded from the checkout at ``source`` and the
    deployments belong to that pool (for workers); without, they are for ``serve``."""
    flows: dict[str, Flow] = {
        "evaluate": evaluate,
        "nightly-regression": nightly,
        "retrain-selector": retrain_selector,
    }
    if work_pool_name is not None:
        flows = {
            name: Flow.from_source(source=str(Path(source).resolve()), entrypoint=entrypoint)
            for name, entrypoint in ENTRYPOINTS.items()
        }
    shared: dict[str, Any] = {"database": database} if database else {}
    pool: dict[str, Any] = {"work_pool_name": work_pool_name} if work_pool_name else {}
    return [
        flows["evaluate"].to_deployment(
            name="on-demand",
            description="Run a sweep on demand: give spec_path (a sweep YAML).",
            parameters=shared,
            tags=TAGS,
            **pool,
        ),
        flows["nightly-regression"].to_deployment(
            name="nightly",
            description="Nightly regression sweep against the accepted baseline.",
            schedules=[Cron(nightly_cron, timezone=timezone)],
            parameters={"spec_path": str(Path(nightly_spec).resolve()), **shared},
            tags=TAGS,
            **pool,
        ),
        flows["retrain-selector"].to_deployment(
            name="weekly",
            description="Weekly selector retraining on every stored result.",
            schedules=[Cron(retrain_cron, timezone=timezone)],
            parameters=shared,
            tags=TAGS,
            **pool,
        ),
    ]


def serve_all(**options: Any) -> None:
    """Serve the deployments until interrupted (options as for ``build_deployments``)."""
    serve(*build_deployments(**options))


def deploy_all(work_pool_name: str, **options: Any) -> list[str]:
    """Register the deployments on ``work_pool_name`` (which must exist); returns their
    ids. Unlike ``flow.deploy()`` and ``prefect deploy``, this does not ask the server
    for the pool's online workers: with Prefect 3.8.8 on FastAPI 0.154 that request is
    rejected (422, ``limit: null``) and aborts the deployment."""
    deployments = build_deployments(work_pool_name=work_pool_name, **options)
    return [str(deployment.apply()) for deployment in deployments]
