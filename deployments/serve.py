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

Served deployments carry the suffix ``-served`` (``evaluate/on-demand-served``), so
both kinds live on one server side by side: registering one kind never rewrites the
other (a served deployment written over a worker one loses its pull steps but keeps its
pool, and its next run crashes on the worker). A deployment already registered under
the same name as the other kind is refused, not overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron

from deployments.missed_nights import hand_over
from evaluation.errors import EvalError
from flows.evaluate import evaluate
from flows.nightly import nightly
from flows.retrain_selector import retrain_selector
from tasks.adapters.prefect_client import prefect_client

NIGHTLY_CRON = "0 2 * * *"
RETRAIN_CRON = "0 4 * * 0"
TAGS = ["evalflow"]
SERVED_SUFFIX = "-served"
REPO = Path(__file__).resolve().parent.parent
ENTRYPOINTS = {
    "evaluate": "flows/evaluate.py:evaluate",
    "nightly-regression": "flows/nightly.py:nightly",
    "retrain-selector": "flows/retrain_selector.py:retrain_selector",
}


def build_deployments(
    *,
    nightly_spec: str | Path,
    nightly_level: str = "full",
    nightly_cases: int | None = None,
    nightly_cron: str = NIGHTLY_CRON,
    nightly_experiment: str | None = None,
    retrain_cron: str = RETRAIN_CRON,
    timezone: str = "UTC",
    database: str | None = None,
    work_pool_name: str | None = None,
    source: str | Path = REPO,
) -> list[RunnerDeployment]:
    """The three deployments. ``nightly_spec`` becomes the nightly run's default
    ``spec_path`` (absolute, so runs do not depend on the working directory), and
    ``nightly_level``/``nightly_cases`` its ``level``/``cases`` (a calibrated nightly,
    docs/trends.md), ``nightly_experiment`` its ``experiment`` (a name template);
    ``database`` (optional) is the default ``database`` parameter of all three. With
    ``work_pool_name`` the flows are loaded from the checkout at ``source`` and the
    deployments belong to that pool (for workers); without, they are for ``serve`` and
    their names end in ``-served``."""
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
    suffix = "" if work_pool_name else SERVED_SUFFIX
    return [
        flows["evaluate"].to_deployment(
            name=f"on-demand{suffix}",
            description="Run a sweep on demand: give spec_path (a sweep YAML).",
            parameters=shared,
            tags=TAGS,
            **pool,
        ),
        flows["nightly-regression"].to_deployment(
            name=f"nightly{suffix}",
            description="Nightly regression sweep against the accepted baseline.",
            schedules=[Cron(nightly_cron, timezone=timezone)],
            parameters={
                "spec_path": str(Path(nightly_spec).resolve()),
                **_nightly_level(nightly_level, nightly_cases),
                **({"experiment": nightly_experiment} if nightly_experiment else {}),
                **shared,
            },
            tags=TAGS,
            **pool,
        ),
        flows["retrain-selector"].to_deployment(
            name=f"weekly{suffix}",
            description="Weekly selector retraining on every stored result.",
            schedules=[Cron(retrain_cron, timezone=timezone)],
            parameters=shared,
            tags=TAGS,
            **pool,
        ),
    ]


def _nightly_level(level: str, cases: int | None) -> dict[str, Any]:
    """The nightly's level parameters: none for the full suite (the flow's default)."""
    if level == "full":
        return {}
    return {"level": level, **({"cases": cases} if cases is not None else {})}


def _full_name(deployment: RunnerDeployment) -> str:
    return f"{deployment.flow_name}/{deployment.name}"


def _kind(work_pool_name: str | None) -> str:
    return f"on work pool {work_pool_name!r}" if work_pool_name else "served by a process"


async def check_server(deployments: list[RunnerDeployment]) -> list[str]:
    """Refuse (``EvalError``) when one of ``deployments`` is already on the server as the
    other kind (served vs on a work pool): applying it would rewrite that one. Returns
    warnings for schedules the other kind already runs (the sweep would run twice)."""
    warnings, clashes = [], []
    async with prefect_client() as client:
        for pool in dict.fromkeys(d.work_pool_name for d in deployments if d.work_pool_name):
            await _require_pool(client, pool)
        for deployment in deployments:
            name, pool = _full_name(deployment), deployment.work_pool_name
            existing = await _read(client, name)
            if existing is not None and (existing.work_pool_name is None) != (pool is None):
                clashes.append(
                    f"{name} is already registered {_kind(existing.work_pool_name)}; "
                    f"registering it {_kind(pool)} would rewrite it. Delete it first: "
                    f"prefect deployment delete {name}"
                )
            if not deployment.schedules:
                continue
            base = deployment.name.removesuffix(SERVED_SUFFIX)
            twin_name = f"{deployment.flow_name}/{base}{SERVED_SUFFIX if pool else ''}"
            twin = await _read(client, twin_name)
            if twin is not None and any(s.active for s in twin.schedules):
                warnings.append(
                    f"{twin_name} ({_kind(twin.work_pool_name)}) has an active schedule "
                    f"too: pause one of them in the UI, or each run happens twice"
                )
    if clashes:
        raise EvalError("; ".join(clashes))
    return warnings


async def _require_pool(client, pool: str) -> None:
    """Refuse, in one line saying how to create it, a work pool the server lacks."""
    try:
        await client.read_work_pool(pool)
    except ObjectNotFound:
        raise EvalError(
            f"--pool {pool!r}: the Prefect server at {client.api_url} has no work pool "
            f"{pool!r}; create it with: prefect work-pool create {pool} --type process "
            "(then rerun, and start a worker on each GPU host)"
        ) from None


async def _read(client, name: str):
    try:
        return await client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def serve_all(
    warn: Callable[[str], None],
    limit: int | None = None,
    say: Callable[[str], None] = print,
    **options: Any,
) -> None:
    """Serve the deployments until interrupted (options as for ``build_deployments``),
    at most ``limit`` flow runs at once (None: no limit; Prefect's ``serve`` ignores
    PREFECT_RUNNER_PROCESS_LIMIT), after ``check_server``; its warnings go to ``warn``.
    On a server that outlives it, the nights a stopped `serve` left unrun are handed
    over first (``hand_over_missed_nights``), each said to ``say``."""
    deployments = build_deployments(**options)
    for warning in asyncio.run(check_server(deployments)):
        warn(warning)
    serving_since = datetime.now(UTC)
    pause_on_shutdown = _pause_on_shutdown()
    if pause_on_shutdown:
        hand_over_missed_nights(deployments, say, warn)
    else:
        warn(
            "PREFECT_API_URL is not set: the deployments are served on Prefect's temporary "
            "API, which runs no schedules (the nightly and weekly runs will not start); "
            "start a server (prefect server start) and set PREFECT_API_URL"
        )
    quiet = CancelledCallbackNoise()
    logging.getLogger("asyncio").addFilter(quiet)
    try:
        with warnings.catch_warnings():
            # Prefect's SIGTERM handler calls the runner's async stop without awaiting it
            # (prefect/runner/runner.py, handle_sigterm); the exit it then raises stops it.
            warnings.filterwarnings("ignore", "coroutine 'Runner.astop' was never awaited")
            # The runner's own pause retries a server that went away for ~65 s, then
            # leaves tracebacks: paused here instead, bounded (pause_schedules)
            serve(*deployments, limit=limit, pause_on_shutdown=False)
    finally:
        if pause_on_shutdown:
            pause_schedules(deployments, warn, serving_since=serving_since)
        logging.getLogger("asyncio").removeFilter(quiet)


#: How long starting `serve` waits for the server to hand over the missed nights.
HAND_OVER_TIMEOUT_S = 10.0


def hand_over_missed_nights(
    deployments: list[RunnerDeployment],
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Create again, as Scheduled flow runs at their own time, the nights of
    ``deployments`` that a stopped `serve` left unrun (``LEFT_PENDING``), while each is
    still the latest due (``deployments.missed_nights``). A server that does not answer
    in ``HAND_OVER_TIMEOUT_S`` is said in one line, and serving goes on."""

    async def hand_over_all() -> None:
        async with prefect_client() as client:
            await hand_over(client, deployments, LEFT_PENDING, say, warn)

    try:
        asyncio.run(asyncio.wait_for(hand_over_all(), HAND_OVER_TIMEOUT_S))
    except Exception as exc:  # the server busy or gone: serving does not wait for it
        why = (
            f"no answer from the Prefect server within {HAND_OVER_TIMEOUT_S:g} s"
            if isinstance(exc, TimeoutError)
            else f"{type(exc).__name__} from the Prefect server"
        )
        warn(
            f"could not hand over the nights a stopped serve left unrun ({why}); the next "
            "`evalflow serve` tries again"
        )


class CancelledCallbackNoise(logging.Filter):
    """Drops asyncio's "Exception in callback" records of a task that was cancelled: a
    SIGTERM while a flow run went on printed 40 lines of traceback (Prefect's runner
    exits from its signal handler, cancelling its control channel's connection task,
    whose stream callback then asks the task for its exception: CancelledError). A
    cancelled task is how stopping looks, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


#: How long stopping `serve` waits for the server's next answer (a pause, a read, a crash
#: mark landed) before it gives up: a server gone or hung ends the stop this soon.
PAUSE_TIMEOUT_S = 5.0
#: How long stopping `serve` goes on in all while the server keeps answering, slowly.
PAUSE_CAP_S = 20.0
#: The states of a flow run that this process's runner took and did not see end.
LEFT_STATES = ("PENDING", "RUNNING", "CANCELLING")
LEFT_RUNNING = (
    "evalflow serve stopped while this flow run ran, and its process with it: evalflow "
    "status names the command that resumes its experiment"
)
LEFT_PENDING = (
    "evalflow serve stopped as it took this flow run, before its process started: it did not run"
)


def pause_schedules(
    deployments: list[RunnerDeployment],
    warn: Callable[[str], None],
    *,
    serving_since: datetime | None = None,
) -> None:
    """Pause ``deployments`` on the server as serving stops (SIGTERM, Ctrl-C), so runs do
    not pile up unserved; then, with ``serving_since``, end Crashed the flow runs this
    process's runner took since then and did not see end (``end_left_runs``), each named
    in a line as it is marked. While the server answers: once it has not for
    ``PAUSE_TIMEOUT_S`` (a server stopped with `serve`, as in a shutdown, or busy), or
    after ``PAUSE_CAP_S`` in all, a deployment not paused is named in one line, and so is
    a flow run found and not marked, or the runs not looked for.

    A busy server on SQLite answers a write 503 at once ("database is locked"), and
    Prefect's client sends it again 2 s later, then 4 s: the pauses, one after the other
    behind the crash marks, left the last deployment (the weekly) active, and the lines
    of the runs already marked were lost with the timeout. So the client is evalflow's
    (``prefect_client``: a busy answer sent again after 0.05 s, 0.1 s, ...), the pauses
    go first, at once, and each step's outcome is kept as it lands. The stop was bounded
    at 5 s in all: a loaded server answering each of its ~11 requests in 0.3-1 s ran
    past it, and the nightly it had found was left Running (``_while_answering``)."""
    names = [_full_name(deployment) for deployment in deployments]
    ids: dict[str, Any] = {}
    paused: set[str] = set()
    left: dict[Any, str] = {}  # flow run id -> its name, until marked Crashed
    looked: list[bool] = []  # [True] once the flow runs to end were read
    busy: list[str] = []  # the busy answers seen
    answered: list[float] = []  # when the server answered, by the loop's clock

    async def pause(client, name: str) -> None:
        ids[name] = (await client.read_deployment_by_name(name)).id
        await client.pause_deployment(ids[name])
        paused.add(name)

    async def heard(_response) -> None:  # httpx's response hook: busy answers never reach it
        answered.append(asyncio.get_running_loop().time())

    async def stop() -> None:
        hooks = {"event_hooks": {"response": [heard]}}
        async with prefect_client(on_busy=busy.append, httpx_settings=hooks) as client:
            outcomes = await asyncio.gather(
                *(pause(client, name) for name in names), return_exceptions=True
            )
            if serving_since is not None and ids:
                await end_left_runs(
                    client, list(ids.values()), serving_since, warn, left=left, looked=looked
                )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome

    try:
        asyncio.run(_while_answering(stop(), answered, PAUSE_TIMEOUT_S, PAUSE_CAP_S))
    except Exception as exc:  # the server gone, not answering, busy, or a deployment deleted
        if isinstance(exc, _StopTooLong):
            why = f"the Prefect server still answering after {PAUSE_CAP_S:g} s"
        elif not isinstance(exc, TimeoutError):
            why = f"{type(exc).__name__} from the Prefect server"
        elif busy:
            why = f"the Prefect server answered busy ({busy[-1]}) for {PAUSE_TIMEOUT_S:g} s"
        else:
            why = f"no answer from the Prefect server within {PAUSE_TIMEOUT_S:g} s"
        active = [name for name in names if name not in paused]
        if active:
            which = "the served deployments" if active == names else ", ".join(active)
            it, its = ("they", "them") if len(active) > 1 else ("it", "it")
            warn(
                f"could not pause {which} ({why}): {it} stay"
                f"{'' if len(active) > 1 else 's'} active on the server, whose runs then "
                f"wait there, late, until `evalflow serve` runs again; pause {its} in the "
                "UI unless those runs should happen then"
            )
        for name in left.values():
            warn(
                f"flow run {name!r}: could not mark it Crashed ({why}): it reads "
                "Running or Pending on the Prefect server until set Crashed in the UI"
            )
        if serving_since is not None and paused and not looked:
            warn(
                f"could not look for the flow runs serve took ({why}): one that ran, or was "
                "due, reads Running or Pending on the Prefect server until set Crashed in the UI"
            )


class _StopTooLong(TimeoutError):
    """The server kept answering, too slowly for serve's stop to end in ``PAUSE_CAP_S``."""


async def _while_answering(
    work: Coroutine[Any, Any, None], answered: list[float], quiet_s: float, cap_s: float
) -> None:
    """Await ``work`` while the server answers: ``TimeoutError`` once ``quiet_s`` passed
    since its last answer (``answered``: when each came, by the loop's clock) or since the
    start, ``_StopTooLong`` after ``cap_s`` in all; ``work`` is then cancelled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    task = asyncio.ensure_future(work)
    while not task.done():
        quiet_until = max([start, *answered[-1:]]) + quiet_s
        deadline = min(quiet_until, start + cap_s)
        if loop.time() >= deadline:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise _StopTooLong if deadline < quiet_until else TimeoutError
        await asyncio.wait({task}, timeout=deadline - loop.time())
    task.result()


async def end_left_runs(
    client,
    deployment_ids: list,
    since: datetime,
    warn: Callable[[str], None],
    *,
    left: dict[Any, str],
    looked: list[bool],
) -> None:
    """End Crashed the flow runs of ``deployment_ids`` that entered a state of
    ``LEFT_STATES`` since ``since`` (taken by this process's runner: a served deployment
    has no other), and their subflow runs: serving stops with its runner, whose flow run
    processes end with it without a word to the server (Ctrl-C: the nightly and its
    evaluate subflow read Running on the server for ever; a SIGTERM as a night fell due:
    Pending "Submitting" for ever, the restarted serve never ran it). A line to ``warn``
    for each as it is marked, naming it and what became of it; ``left`` holds the names
    of those found and not marked yet, ``looked`` a True once they were read."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    states = FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType(name) for name in LEFT_STATES])
    )
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids), state=states
        )
    )
    runs = [r for r in runs if r.state is not None and r.state.timestamp >= since]
    left.update((run.id, run.name) for run in runs)
    looked.append(True)
    if not runs:
        return
    subflows = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[r.id for r in runs]),
            state=states,
        )
    )

    async def mark(run) -> None:
        pending = run.state.type.value == "PENDING"
        message = LEFT_PENDING if pending else LEFT_RUNNING
        crashed = Crashed(message=message)
        await client.set_flow_run_state(run.id, crashed, force=True)
        if left.pop(run.id, None) is None:
            return  # a subflow: its parent's line says it
        what = "did not run (serve stopped as it took it)" if pending else "ran"
        warn(
            f"flow run {run.name!r} {what}: marked Crashed on the Prefect server"
            + (
                ""
                if pending
                else " (evalflow status names the command that resumes its experiment)"
            )
        )

    await asyncio.gather(*(mark(run) for run in [*subflows, *runs]))


def _pause_on_shutdown() -> bool:
    """Pause the schedules when serving stops, on a Prefect server that outlives this
    process (so runs do not pile up unserved). Without PREFECT_API_URL the API is Prefect's
    temporary server, ended with this process before the pause could reach it: the pause
    then hung on SIGTERM, retrying a server that was gone."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def deploy_all(work_pool_name: str, warn: Callable[[str], None], **options: Any) -> list[str]:
    """Register the deployments on ``work_pool_name`` (which must exist) after
    ``check_server``; returns their ids."""
    deployments = build_deployments(work_pool_name=work_pool_name, **options)
    for warning in asyncio.run(check_server(deployments)):
        warn(warning)
    return [str(deployment.apply()) for deployment in deployments]
