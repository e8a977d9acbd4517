"""Whether the Prefect API this process is configured for answers: one check, for
`doctor`, `health` and the readiness endpoint."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from evaluation.redact import redact_url

if TYPE_CHECKING:
    from evaluation.run import Check


async def prefect_check(timeout_s: float) -> Check:
    """The Prefect API named by PREFECT_API_URL answers its health check."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from evaluation.run import Check

    url = PREFECT_API_URL.value()
    shown = redact_url(url or "")
    if not url:
        return Check(
            "prefect api",
            "warn",
            "PREFECT_API_URL is not set: flows start a temporary local API; schedules, "
            "workers and the UI need a server (`prefect server start`)",
        )
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
