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
    from prefect.client.orchestration import get_client

    try:
        async with get_client() as client:
            error = await asyncio.wait_for(client.api_healthcheck(), timeout_s)
            if error is None:
                version = await asyncio.wait_for(client.api_version(), timeout_s)
    except TimeoutError:
        return Check("prefect api", "fail", f"{shown}: no answer within {timeout_s:g} s")
    if error is not None:
        return Check("prefect api", "fail", f"{shown}: {type(error).__name__}: {error}")
    return Check("prefect api", "ok", f"{shown}: healthy (server {version})", {"url": shown})


def refuse_an_api_that_does_not_answer(timeout_s: float = 10.0) -> None:
    """For `run`, before it claims or writes anything: a configured Prefect API
    (PREFECT_API_URL, the user's setting) that does not answer is bad input, one line,
    exit 2; without the check the run failed after claiming its experiment."""
    from evaluation.errors import EvalError
    from flows.embedded_server import embedded_server_needed

    if not os.environ.get("PREFECT_API_URL") and "prefect.settings" not in sys.modules:
        return  # Prefect's settings import for seconds: a profile's URL is found later
    if embedded_server_needed():  # none configured: the run starts its own
        return
    import asyncio

    check = asyncio.run(prefect_check(timeout_s))
    if check.status == "fail":  # its detail shows the URL masked (redact_url)
        raise EvalError(
            one_line(
                f"PREFECT_API_URL: the Prefect API does not answer: {check.detail}; start it "
                "(`prefect server start`) or unset PREFECT_API_URL to run on a temporary "
                "local one"
            )
        )
