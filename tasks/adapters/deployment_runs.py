"""Starting a registered deployment's flow run and cancelling a flow run through
Prefect's API, for the monitor page (``evaluation.monitor.RunControl``; an adapter, not
a task). Only a server named by ``PREFECT_API_URL`` is used: without one, Prefect would
start a temporary in-process API that no worker watches, so the page refuses instead.
Every refusal is one ``ControlRefused`` line with the HTTP status the page answers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelling

from evaluation.monitor import ControlRefused, FlowRunState, StartedRun
from evaluation.monitor._control import EVALUATE_FLOW
from evaluation.redact import redact
from tasks.adapters.prefect_client import PrefectBusy, prefect_client

MONITOR_TAG = "started-from-monitor"
TIMEOUT_S = 10.0


class PrefectRunControl:
    """The monitor's ``RunControl`` over the Prefect server at ``api_url``."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url

    @contextmanager
    def _client(self) -> Iterator[SyncPrefectClient]:
        """A client that tries once, within ``TIMEOUT_S``: a page waits for its answer.
        Prefect's retries (2 s, 4 s, ... 32 s after each wait) held the Start form 121 s
        on a server that takes the connection and keeps silent. A busy answer is sent
        again soon within ``TIMEOUT_S`` (``prefect_client``)."""
        from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

        with (
            temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}),
            prefect_client(
                sync=True,
                api_url=self.api_url,
                budget_s=TIMEOUT_S,
                httpx_settings={"timeout": TIMEOUT_S},
            ) as client,
        ):
            yield client

    def start(self, deployment: str, parameters: Mapping[str, object]) -> StartedRun:
        try:
            with self._client() as client:
                found = client.read_deployment_by_name(deployment)
                _check_parameters(deployment, found.parameter_openapi_schema, parameters)
                run = client.create_flow_run_from_deployment(
                    found.id, parameters=dict(parameters), tags=[MONITOR_TAG]
                )
        except ObjectNotFound as exc:
            raise ControlRefused(
                404,
                f"deployment {deployment!r} is not registered on the Prefect server at "
                f"{redact(self.api_url)}: register it (evalflow deploy registers "
                "evaluate/on-demand; evalflow serve registers evaluate/on-demand-served) "
                "or name another",
            ) from exc
        except PrefectHTTPStatusError as exc:
            raise ControlRefused(
                400, f"the Prefect server refused the run: {_detail(exc)}"
            ) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return StartedRun(str(run.id), run.name, deployment)

    def cancel(self, flow_run_id: str) -> str:
        """Ask for the run's cancellation (state Cancelling, as the Prefect UI does);
        its worker or runner stops it. Returns the state name the server gave."""
        try:
            run_id = UUID(flow_run_id)
        except ValueError as exc:
            raise ControlRefused(400, f"flow run id: not a UUID: {flow_run_id!r}") from exc
        try:
            with self._client() as client:
                result = client.set_flow_run_state(run_id, Cancelling(), force=True)
        except ObjectNotFound as exc:
            raise ControlRefused(
                404,
                f"flow run {flow_run_id} is not on the Prefect server at {redact(self.api_url)}",
            ) from exc
        except PrefectHTTPStatusError as exc:
            raise ControlRefused(409, f"the Prefect server refused: {_detail(exc)}") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        return result.state.name if result.state is not None else "Cancelling"

    def state(self, flow_run_id: str) -> FlowRunState | None:
        """The flow run's state (its type, name and message), or None where the server
        does not answer or knows no such run."""
        try:
            with self._client() as client:
                run = client.read_flow_run(UUID(flow_run_id))
        except (ValueError, ObjectNotFound, PrefectHTTPStatusError, httpx.HTTPError, OSError):
            return None
        if run.state is None:
            return None
        return FlowRunState(
            run.state.type.value,
            run.state.name or run.state.type.value.title(),
            run.state.message or "",
        )

    def deployments(self) -> list[str] | None:
        """The evaluate flow's deployments registered on the server (``evaluate/NAME``,
        sorted), or None where it does not answer."""
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        try:
            with self._client() as client:
                flows = FlowFilter(name=FlowFilterName(any_=[EVALUATE_FLOW]))
                found = client.read_deployments(flow_filter=flows, limit=50)
        except (PrefectHTTPStatusError, httpx.HTTPError, OSError):
            return None
        return sorted(f"{EVALUATE_FLOW}/{d.name}" for d in found)

    def knows(self, flow_run_id: str) -> bool:
        try:
            with self._client() as client:
                client.read_flow_run(UUID(flow_run_id))
        except (ValueError, ObjectNotFound, PrefectHTTPStatusError, httpx.HTTPError, OSError):
            return False
        return True

    def check_answers(self) -> None:
        """``ControlRefused`` (503) naming the URL and ``PREFECT_API_URL`` unless the
        server answers its health check."""
        with self._client() as client:
            problem = client.api_healthcheck()
        if problem is not None:
            raise self._unreachable(problem)

    def _unreachable(self, exc: BaseException) -> ControlRefused:
        """503: a server that took the connection and kept silent is busy, not absent."""
        if isinstance(exc, PrefectBusy):
            return ControlRefused(
                503,
                f"the Prefect server at {redact(self.api_url)} answered busy for "
                f"{TIMEOUT_S:g} s: try again when it answers",
            )
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return ControlRefused(
                503,
                f"the Prefect server at {redact(self.api_url)} did not answer within "
                f"{TIMEOUT_S:g} s ({type(exc).__name__}): busy, as on a loaded machine? "
                "try again when it answers",
            )
        return ControlRefused(
            503,
            f"no Prefect server answers at {redact(self.api_url)} ({type(exc).__name__}): "
            "start one (prefect server start) or fix PREFECT_API_URL",
        )


def _check_parameters(
    deployment: str, schema: Mapping[str, object] | None, parameters: Mapping[str, object]
) -> None:
    """``ControlRefused`` (400) unless the deployment's flow takes every parameter the
    form passes: a deployment of another flow would crash its run on them."""
    properties = (schema or {}).get("properties") or {}
    missing = [name for name in parameters if name not in properties]  # type: ignore[operator]
    if missing:
        raise ControlRefused(
            400,
            f"deployment: {deployment!r} does not take {', '.join(missing)}: the page starts "
            "only deployments of the evaluate flow",
        )


def _detail(exc: PrefectHTTPStatusError) -> str:
    try:
        detail = exc.response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail or exc.response.text or exc)[:300]


def run_control_from_settings() -> PrefectRunControl | None:
    """The control over the server named by PREFECT_API_URL; None where none is set."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return PrefectRunControl(url) if url else None
