"""The view command: browse every output of an experiment in a local web page."""

from __future__ import annotations

import argparse
import sys

from flows.cli import options
from flows.cli._database import open_engine
from flows.cli._serving import bind, serve
from flows.cli.review import is_loopback


def cmd_view(args: argparse.Namespace) -> int:
    from evaluation.review.app import LOOPBACK_HOSTS
    from evaluation.storage.db import open_database, session_scope
    from evaluation.storage.repository import get_experiment
    from evaluation.view.app import create_app
    from evaluation.view.links import summary_url

    # Refuse an unknown name before anything is created in the database.
    with session_scope(open_database(args.database, create=False)) as session:
        name = get_experiment(session, args.experiment).name
    if args.export is not None:
        from evaluation.view.static_export import export_view

        done = export_view(open_engine(args), name, args.export)
        print(f"{done.pages} pages of {name} written: open {done.folder / 'summary.html'}")
        return 0
    sock = bind(args.host, args.port)  # a port in use is refused before anything is written
    try:
        engine = open_engine(args)
    except BaseException:
        sock.close()
        raise
    local = is_loopback(args.host)
    app = create_app(engine, allowed_hosts=LOOPBACK_HOSTS if local else None)
    if not local:
        print(
            f"warning: serving on {args.host}: anyone who can reach it can read every output",
            file=sys.stderr,
        )
    print(f"Browsing {name}: open {summary_url(name, args.host, args.port)} (Ctrl+C to stop)")
    serve(app, sock)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the view subcommand to the `evalflow` parser."""
    from evaluation.view.links import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("view", help="browse every output of an experiment in a local web page")
    p.add_argument("experiment")
    p.add_argument(
        "--host",
        type=options.address,
        default=DEFAULT_HOST,
        help="address to serve on (default: loopback)",
    )
    p.add_argument(
        "--port", type=options.port, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}"
    )
    p.add_argument(
        "--export",
        type=options.output_folder,
        metavar="FOLDER",
        help="write the experiment's pages as static HTML files to FOLDER (opens without "
        "evalflow) instead of serving them",
    )
    p.set_defaults(func=cmd_view)
