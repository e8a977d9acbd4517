"""Where the view of an experiment lives, for the report, the Prefect artifacts and the
CLI to point at: one place that knows the default port and the URL shape."""

from __future__ import annotations

import shlex
from urllib.parse import quote

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
#: The names a page served on a loopback address answers to (its Host check).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def experiment_path(experiment: str) -> str:
    """The page of ``experiment`` relative to the server's root."""
    return f"/e/{quote(experiment, safe='')}"


def home_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The monitor's home page: every run of the database."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def view_url(experiment: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{experiment_path(experiment)}"


def summary_url(experiment: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The experiment's summary page: where to start reading a finished run."""
    return f"{view_url(experiment, host, port)}/summary"


def view_command(experiment: str) -> str:
    return shlex.join(["evalflow", "view", experiment])


def view_hint(experiment: str) -> str:
    """One sentence: how to browse every output of ``experiment``."""
    return (
        f"Browse every output: run `{view_command(experiment)}`, then open {view_url(experiment)}"
    )
