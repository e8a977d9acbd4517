"""The view command: browse every output of an experiment in a local web page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli._database import open_engine
from flows.cli.review import is_loopback


def cmd_view(args: argparse.Namespace) -> int:
    import uvicorn

    from evaluation.review.app import LOOPBACK_HOSTS
    from evaluation.storage.db import open_database, session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.view.app import create_app
    from evaluation.view.links import summary_url

    # Refuse an unknown name before anything is created in the database.
    with session_scope(open_database(args.database, create=False)) as session:
        name = get_experiment(session, args.experiment).name
    engine = open_engine(args)
    if args.export is not None:
        from evaluation.view.static_export import export_view

        done = export_view(engine, name, args.export)
        print(f"{done.pages} pages of {name} written: open {done.folder / 'summary.html'}")
        return 0
    local = is_loopback(args.host)
    app = create_app(engine, allowed_hosts=LOOPBACK_HOSTS if local else None)
    if not local:
        print(
            f"warning: serving on {args.host}: anyone who can reach it can read every output",
            file=sys.stderr,
        )
    print(f"Browsing {name}: open {summary_url(name, args.host, args.port)} (Ctrl+C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the view subcommand to the `evalflow` parser."""
    from evaluation.view.links import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("view", help="browse every output of an experiment in a local web page")
    p.add_argument("experiment")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to serve on (default: loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument(
        "--export",
        type=Path,
        metavar="FOLDER",
        help="write the experiment's pages as static HTML files to FOLDER (opens without "
        "evalflow) instead of serving them",
    )
    p.set_defaults(func=cmd_view)
