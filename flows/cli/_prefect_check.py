"""Whether the Prefect API this process is configured for answers: one check, for
`doctor`, `health` and the readiness endpoint."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import TYPE_CHECKING

from evaluation.redact import one_line, redact_url

if TYPE_CHECKING:
    from evaluation.run import Check


def configured_api_url() -> str | None:
    """PREFECT_API_URL as Prefect resolves it (environment, profile, ...), for commands
    that only read. Importing Prefect's settings creates its home folder (~/.prefect)
    where there is none, and warns on stderr where it cannot (a PREFECT_HOME whose parent
    is missing): neither is left behind, no folder and no warning."""
    from flows.embedded_server import prefect_home

    home = prefect_home()
    existed = home.exists()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Failed to create the Prefect home directory")
        from prefect.settings import PREFECT_API_URL
    if not existed:  # Prefect made it, empty, on this import: a run recreates it
        with contextlib.suppress(OSError):
            home.rmdir()
    return PREFECT_API_URL.value() or None


def api_url_may_be_set() -> bool:
    """Whether Prefect's settings may name an API URL, known without importing them (~1 s
    of CPU): False only where no place Prefect 3.8 reads settings from can hold one: the
    environment (PREFECT_API_URL, in any case), the current folder's ``.env`` and
    ``prefect.toml`` (either there: maybe), its ``pyproject.toml``'s ``[tool.prefect]``,
    and the profiles file (PREFECT_PROFILES_PATH, else the Prefect home's profiles.toml)
    naming PREFECT_API_URL in any profile. Where it may, ``configured_api_url`` asks
    Prefect."""
    import tomllib
    from pathlib import Path

    from flows.embedded_server import prefect_home

    if any(name.upper() == "PREFECT_API_URL" for name in os.environ):
        return True
    if Path(".env").exists() or Path("prefect.toml").exists():
        return True
    try:
        with open("pyproject.toml", "rb") as file:
            if "prefect" in tomllib.load(file).get("tool", {}):
                return True
    except FileNotFoundError:
        pass
    except (OSError, tomllib.TOMLDecodeError):
        return True  # Prefect reads it as it can
    profiles = os.environ.get("PREFECT_PROFILES_PATH") or prefect_home() / "profiles.toml"
    try:
        return "PREFECT_API_URL" in Path(profiles).expanduser().read_text().upper()
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True


async def prefect_check(timeout_s: float) -> Check:
    """The Prefect API named by PREFECT_API_URL answers its health check."""
    import asyncio

    from evaluation.run import Check

    url = configured_api_url()
    shown = redact_url(url or "")
    if not url:  # all one machine needs (docs/running-for-real.md): not a warning
        return Check(
            "prefect api",
            "ok",
            "PREFECT_API_URL not set: each run starts a temporary local API, all that one "
            "machine needs; schedules, workers and the UI need a server "
            "(`prefect server start`, docs/running-for-real.md)",
        )
    from tasks.adapters.prefect_client import prefect_client

    try:
        async with prefect_client() as client:  # the wait below bounds it: busy
            error = await asyncio.wait_for(client.api_healthcheck(), timeout_s)
            if error is None:
                version = await asyncio.wait_for(client.api_version(), timeout_s)
    except TimeoutError:
        # Prefect's client retries a 503 or a dropped connection until the wait is out.
        # Busy (a server on a loaded machine answers health checks seconds late), as
        # `run` takes it (TryLater, exit 75), in run's words: not failed
        detail = (
            f"{shown}: did not answer in time: no healthy answer within {timeout_s:g} s "
            "(busy?); check again when it answers"
        )
        return Check("prefect api", "busy", detail, {"url": shown, "late": True})
    if error is not None:
        return Check("prefect api", "fail", f"{shown}: {type(error).__name__}: {error}")
    return Check("prefect api", "ok", f"{shown}: healthy (server {version})", {"url": shown})


def refuse_an_api_that_does_not_answer(timeout_s: float = 10.0) -> None:
    """For `run`, before it claims or writes anything: a configured Prefect API
    (PREFECT_API_URL, the user's setting) that refuses the connection or answers an
    error is bad input, one line, exit 2; one that gives no answer within the wait is
    taken for busy (a server on a loaded machine answers health checks seconds late), so
    TryLater, exit 75: a script retries that (newcomer ncwatch's W6).
    Without the check the run failed after claiming its experiment."""
    from evaluation.errors import EvalError, TryLater
    from flows.embedded_server import embedded_server_needed

    if not os.environ.get("PREFECT_API_URL") and "prefect.settings" not in sys.modules:
        return  # Prefect's settings import for seconds: a profile's URL is found later
    if embedded_server_needed():  # none configured: the run starts its own
        return
    import asyncio

    check = asyncio.run(prefect_check(timeout_s))
    if check.facts.get("late"):  # doctor's BUSY line
        raise TryLater(
            one_line(
                "PREFECT_API_URL: the Prefect API did not answer in time: "
                f"{check.facts['url']}: no healthy answer within {timeout_s:g} s (busy?); "
                "nothing was claimed or written: run the same command again when it answers"
            )
        )
    if check.status == "fail":  # its detail shows the URL masked (redact_url)
        raise EvalError(
            one_line(
                f"PREFECT_API_URL: the Prefect API does not answer: {check.detail}; start it "
                "(`prefect server start`) or unset PREFECT_API_URL to run on a temporary "
                "local one"
            )
        )
