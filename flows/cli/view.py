"""The view command: browse every output of an experiment in a local web page; without
an experiment (or as `evalflow monitor`), the monitor's home page over every run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evaluation.errors import EvalError
from flows.cli import options
from flows.cli._database import missing_default_database, open_engine, open_reader
from flows.cli._serving import bind, serve
from flows.cli.review import is_loopback

if TYPE_CHECKING:
    from evaluation.monitor import RunControl


def cmd_view(args: argparse.Namespace) -> int:
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.view.app import create_app
    from evaluation.view.links import LOOPBACK_HOSTS, home_url, summary_url
    from evaluation.view.session_key import keyed_link

    name, engine = None, None
    if args.experiment is not None:
        # Refuse an unknown name before anything is created in the database (a fresh
        # home's stands in empty); the database where it is found serves it, opened once
        # (each opening checks the schema: 0.02-0.04 s of the first page).
        engine = open_reader(args)
        with session_scope(engine) as session:
            name = get_experiment(session, args.experiment).name
    elif args.export is not None:
        raise EvalError(
            "--export: name the experiment to export (evalflow view EXPERIMENT --export DIR)"
        )
    if args.export is not None and engine is not None:
        from evaluation.view.static_export import export_view
        from flows.cli._collector import resume

        resume()  # a page per generation: not a start-up (``_collector``)

        done = export_view(engine, name, args.export)
        print(f"{done.pages} pages of {name} written: open {done.folder / 'summary.html'}")
        return 0
    sock = bind(args.host, args.port)  # a port in use is refused before anything is written
    if engine is None:  # the monitor's home page: no experiment named
        try:
            engine = open_engine(args, reads_only=True)
        except BaseException:
            sock.close()
            raise
    local = is_loopback(args.host)
    app = create_app(engine, allowed_hosts=LOOPBACK_HOSTS if local else None, control=_run_control)
    from flows.cli.metrics import OPS_PATH, build_app

    # metrics and health (docs/operations.md), built on their first request: their
    # collectors and checks (prometheus_client, the backends) are not the pages' start-up
    app.mount(OPS_PATH, _on_first_request(lambda: build_app(engine, None)))
    if not local:
        print(
            f"warning: serving on {args.host}: anyone who can reach it can read every output",
            file=sys.stderr,
        )
    # the link carries the server's key: the browser that opens it may Start and Cancel
    if name is None:
        link = keyed_link(home_url(args.host, args.port), app.state.key)
        print(f"Monitoring every run: open {link} (Ctrl+C to stop)")
    else:
        link = keyed_link(summary_url(name, args.host, args.port), app.state.key)
        print(f"Browsing {name}: open {link} (Ctrl+C to stop)")
    serve(app, sock)
    return 0


def _run_control() -> RunControl | None:
    """The monitor's run control, made on the first page that needs one: Prefect's
    settings (is PREFECT_API_URL set?) import Prefect, ~1.5 s that the experiment's own
    pages never need, and that the monitor's need only where a setting may name a server
    (without one the pages offer no buttons)."""
    from flows.cli._prefect_check import api_url_may_be_set

    if not api_url_may_be_set():
        return None
    from tasks.adapters.deployment_runs import run_control_from_settings

    return run_control_from_settings()


def register(sub: argparse._SubParsersAction) -> None:
    """Add the view subcommand to the `evalflow` parser."""
    from evaluation.view.links import DEFAULT_HOST, DEFAULT_PORT

    view = sub.add_parser(
        "view",
        help="browse every output of an experiment in a local web page (no experiment: "
        "the monitor over every run)",
    )
    _serving_options(view, DEFAULT_HOST, DEFAULT_PORT, export=True)
    monitor = sub.add_parser(
        "monitor",
        help="the monitor in a local web page: runs going on now, recent runs, series, "
        "hosts (evalflow view without an experiment)",
    )
    _serving_options(monitor, DEFAULT_HOST, DEFAULT_PORT, export=False)
    status = sub.add_parser(
        "status",
        help="where runs stand: stage, progress, rate, ETA, in flight per host, failures, "
        "GPU (no experiment: every running one)",
    )
    status.add_argument("experiment", nargs="?", help="default: every experiment running now")
    status.set_defaults(func=cmd_status)


def _serving_options(p: argparse.ArgumentParser, host: str, port: int, *, export: bool) -> None:
    if export:
        p.add_argument("experiment", nargs="?", help="default: the monitor's home page")
    else:
        p.set_defaults(experiment=None, export=None)
    p.add_argument(
        "--host", type=options.address, default=host, help="address to serve on (default: loopback)"
    )
    p.add_argument("--port", type=options.port, default=port, help=f"default {port}")
    if not export:
        p.set_defaults(func=cmd_view)
        return
    p.add_argument(
        "--export",
        type=options.output_folder,
        metavar="FOLDER",
        help="write the experiment's pages as static HTML files to FOLDER (opens without "
        "evalflow) instead of serving them",
    )
    p.set_defaults(func=cmd_view)


def cmd_status(args: argparse.Namespace) -> int:
    """Print where the named run stands, or every running one; its leaderboard once it
    has ended."""
    from sqlalchemy import inspect

    from evaluation.monitor import run_facts, running_runs, status_text
    from evaluation.storage.db import session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import experiment_status, starting_runs
    from flows.cli._width import fitted
    from flows.cli.results import results_text

    if missing_default_database(args) is not None:  # a fresh home: nothing runs, none made
        print("Nothing runs now (evalflow experiments lists every experiment).")
        return 0
    engine = open_engine(args, reads_only=True, create=False)
    if inspect(engine).has_table("experiments"):  # an evalflow database, maybe older:
        engine = open_engine(args, reads_only=True)  # the monitor's tables: made on first open
    with session_scope(engine) as session:
        if args.experiment is None:
            names = [r["name"] for r in running_runs(session)]
            if not names:
                print("Nothing runs now (evalflow experiments lists every experiment).")
                return 0
        elif starting_runs(session, args.experiment):  # maybe not stored yet
            names = [args.experiment]
        else:
            names = [get_experiment(session, args.experiment).name]
        for name in names:
            facts = run_facts(session, name)
            print(fitted(status_text(facts)))  # a failure's reason ran to 111 at 80
            if facts["live"] is None and facts["status"] != "starting":
                # how it ended: what `show` says, resume command too
                experiment = get_experiment(session, name)
                state = experiment_status(session, experiment)
                print(results_text(session, experiment, state, failures=False))
    return 0


def _on_first_request(build: Callable[[], Any]) -> Callable[..., Any]:
    """An ASGI app that is ``build()``'s, made when it is first asked."""
    built: list[Any] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if not built:
            built.append(build())
        await built[0](scope, receive, send)

    return asgi
