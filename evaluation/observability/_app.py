"""The operator's endpoints, as one ASGI app to serve alone or mount in another
(`evalflow serve`, `evalflow metrics`, the monitor):

- ``GET /metrics``: Prometheus text or OpenMetrics (by the scraper's ``Accept``), built
  by prometheus-client from ``EvalflowCollector``.
- ``GET /health/live``: 200 while the process answers.
- ``GET /health/ready``: 200 when the results database and the Prefect API answer,
  else 503; the body lists every check and what failed.
- ``GET /health/deep[?spec=PATH]``: ``ready`` plus every host of a spec, as `evalflow
  doctor SPEC` checks them (200 or 503). Without ``spec`` the app's default spec; none
  at all, an empty ``?spec=``, a spec that is not a YAML file, or a file that does not
  exist: 4xx.

Every answer is JSON except ``/metrics``; every error says what was wrong in ``error``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from evaluation.observability._collector import EvalflowCollector, GpuReading, HostSlots
from evaluation.redact import redact
from evaluation.run._doctor import Check, check_database, check_spec, hosts_in_use
from evaluation.storage.snapshot import asked_url

SPEC_SUFFIXES = (".yaml", ".yml")


def metrics_registry(
    engine: Engine,
    *,
    host_slots: Callable[[], Sequence[HostSlots] | None] | None = None,
    gpus: Callable[[], Sequence[GpuReading]] | None = None,
) -> CollectorRegistry:
    """A registry of its own (never the process-global one) holding evalflow's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EvalflowCollector(engine, host_slots=host_slots, gpus=gpus))
    return registry


def observability_app(
    engine: Engine,
    *,
    prefect_check: Callable[[float], Awaitable[Check]] | None = None,
    default_spec: Path | None = None,
    host_slots: Callable[[], Sequence[HostSlots] | None] | None = None,
    gpus: Callable[[], Sequence[GpuReading]] | None = None,
    timeout_s: float = 5.0,
) -> FastAPI:
    """The metrics and health endpoints over ``engine``. ``prefect_check`` tells whether
    the Prefect API answers (the caller's: evaluation/ imports no Prefect); without it,
    readiness is the database's alone."""
    registry = metrics_registry(engine, host_slots=host_slots, gpus=gpus)
    app = FastAPI(title="evalflow metrics and health", docs_url=None, redoc_url=None)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "bad request"}, status_code=400)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    @app.get("/health/live")
    def live() -> JSONResponse:
        return JSONResponse({"status": "ok", "checks": [], "failed": []})

    url = engine.url.render_as_string(hide_password=False)
    shown = str(asked_url(engine))  # a read-only share's path, not its snapshot's URL

    async def ready_checks() -> list[Check]:
        database = check_database(url, timeout_s=timeout_s, shown=shown)
        return [database] + ([await prefect_check(timeout_s)] if prefect_check else [])

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        return _verdict(await ready_checks())

    @app.get("/health/deep")
    async def deep(spec: str | None = None) -> JSONResponse:
        if spec is not None and not spec.strip():
            return _refuse(400, "spec: empty; give ?spec=PATH, or no spec for the default")
        path = Path(spec) if spec else default_spec
        if path is None:
            return _refuse(400, "spec: give ?spec=PATH (a sweep spec on this machine)")
        if path.suffix.lower() not in SPEC_SUFFIXES:
            return _refuse(400, f"spec={path}: not a sweep spec (expected a .yaml or .yml file)")
        if not path.is_file():
            return _refuse(404, f"spec={path}: no such file on this machine")
        checks = await ready_checks()
        busy = hosts_in_use(url) if checks[0].status == "ok" else {}  # as `doctor` does
        return _verdict(checks + await check_spec(path, timeout_s=timeout_s, busy=busy))

    return app


def _refuse(status_code: int, error: str) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status_code)


def _verdict(checks: list[Check]) -> JSONResponse:
    """200 when no check failed, else 503; every check and the failed ones by name."""
    body: dict[str, Any] = {
        "status": "ok" if all(c.ok for c in checks) else "fail",
        "checks": [
            {"component": c.component, "status": c.status, "detail": redact(c.detail)}
            for c in checks
        ],
        "failed": [f"{c.component}: {redact(c.detail)}" for c in checks if not c.ok],
    }
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
