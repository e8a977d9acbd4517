"""The host slots as Prefect holds them, for the metrics endpoint: each host's global
concurrency limit (``ollama-host-<address>-<port>``, ``evaluation.backends.host_limit_name``)
gives its slots (the limit) and its requests in flight (the slots taken now), whichever
process holds them. Each reading carries the limit's name; the collector labels it with
the address and the host name the specs give that address, as the generation metrics are
labelled."""

from __future__ import annotations

import httpx
from prefect.exceptions import PrefectHTTPStatusError

from evaluation.backends import LIMIT_PREFIX
from evaluation.observability import HostSlots
from tasks.adapters.prefect_client import prefect_client

PAGE = 200
#: How long a scrape waits out a busy Prefect API before it goes on without the gauges.
BUSY_BUDGET_S = 2.0


def host_slot_readings() -> list[HostSlots]:
    """Every host limit on the Prefect API this process is configured for; empty when
    that API does not answer (the scrape goes on without these gauges)."""
    readings: list[HostSlots] = []
    try:
        with prefect_client(sync=True, budget_s=BUSY_BUDGET_S) as client:
            offset = 0
            while True:
                page = client.read_global_concurrency_limits(limit=PAGE, offset=offset)
                readings += [
                    HostSlots(limit.name, limit.limit, limit.active_slots)
                    for limit in page
                    if limit.name.startswith(LIMIT_PREFIX)
                ]
                if len(page) < PAGE:
                    return readings
                offset += PAGE
    except (httpx.HTTPError, PrefectHTTPStatusError, OSError):
        return []
