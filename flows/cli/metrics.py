"""The operator's endpoints (Prometheus metrics, health for probes): `evalflow metrics`
serves them alone; `evalflow serve` serves them beside its deployments."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.cli import options
from flows.cli._serving import bind, serve

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from evaluation.observability import HostSlots

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464  # the port OpenTelemetry's Prometheus exporter made usual
OPS_PATH = "/ops"  # where the monitor (evalflow view, evalflow monitor) mounts them


def register(sub: argparse._SubParsersAction) -> None:
    """Add the metrics subcommand to the `evalflow` parser."""
    p = sub.add_parser(
        "metrics",
        help="serve Prometheus metrics and health endpoints (/metrics, /health/live, "
        "/health/ready, /health/deep) over the results database",
    )
    endpoint_options(p, prefix="")
    p.set_defaults(func=cmd_metrics)


def endpoint_options(parser: argparse.ArgumentParser, *, prefix: str) -> None:
    """``--[PREFIX]host``, ``--[PREFIX]port`` and ``--health-spec``."""
    parser.add_argument(
        f"--{prefix}host",
        type=options.address,
        default=DEFAULT_HOST,
        help="address to serve the metrics and health endpoints on (default: loopback)",
    )
    parser.add_argument(
        f"--{prefix}port",
        type=options.port,
        default=DEFAULT_PORT,
        help=f"port of the metrics and health endpoints (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--health-spec",
        type=options.existing_file,
        help="the sweep spec whose hosts /health/deep checks when no ?spec= is given",
    )


def build_app(engine: Engine, health_spec: Path | None) -> Any:
    """The endpoints over the results database, with Prefect's slots and API checks."""
    from evaluation.observability import local_gpus, observability_app
    from flows.cli._prefect_check import prefect_check

    return observability_app(
        engine,
        prefect_check=prefect_check,
        default_spec=health_spec,
        host_slots=_host_slots,
        gpus=local_gpus(),
    )


def _host_slots() -> list[HostSlots] | None:
    """The hosts' slots as Prefect's API holds them (every machine sharing that server);
    where no API is set (each run's own temporary server), as this machine's slot locks
    hold them (every run on this machine), None where neither can be read. Called at
    each scrape, so that `evalflow view`, which mounts these endpoints, does not import
    Prefect (~1.5 s) to start."""
    from flows.cli._prefect_check import configured_api_url

    if not configured_api_url():
        from evaluation.backends import machine_slot_readings
        from evaluation.observability import HostSlots

        readings = machine_slot_readings()
        return None if readings is None else [HostSlots(*r) for r in readings]
    from tasks.adapters.slot_readings import host_slot_readings

    return host_slot_readings()


def open_endpoints(
    host: str,
    port: int,
    database: str | None,
    spec: Path | None,
    *,
    prefix: str = "",
    reads_only: bool = False,
) -> tuple[Any, socket.socket]:
    """Bind first (a port in use is refused in one line), then build the app. The
    endpoints only read; a caller that ``reads_only`` (`evalflow metrics`, not `serve`,
    whose runs store results) reads a database in a read-only folder as a snapshot, as
    the monitor does, and says so on stderr (``storage.snapshot``)."""
    sock = bind(host, port, host_option=f"--{prefix}host", port_option=f"--{prefix}port")
    try:
        from evaluation.storage.db import open_database
        from evaluation.storage.snapshot import snapshot_note

        engine = open_database(database, reads_only=reads_only)
        if note := snapshot_note(engine):
            print(f"note: {note}", file=sys.stderr)
        return build_app(engine, spec), sock
    except BaseException:
        sock.close()
        raise


def serve_in_background(app: Any, sock: socket.socket) -> threading.Thread:
    """Serve ``app`` on ``sock`` from a daemon thread (it ends with the process)."""
    import asyncio

    thread = threading.Thread(
        target=lambda: asyncio.run(_serve_async(app, sock)), name="evalflow-metrics", daemon=True
    )
    thread.start()
    return thread


async def _serve_async(app: Any, sock: socket.socket) -> None:
    import uvicorn

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # the main thread's handlers stay
    await server.serve(sockets=[sock])


def announce(host: str, port: int) -> None:
    print(
        f"metrics: http://{host}:{port}/metrics  health: http://{host}:{port}/health/ready",
        file=sys.stderr,
        flush=True,
    )


def cmd_metrics(args: argparse.Namespace) -> int:
    app, sock = open_endpoints(
        args.host, args.port, args.database, args.health_spec, reads_only=True
    )
    announce(args.host, args.port)
    serve(app, sock)
    return 0
