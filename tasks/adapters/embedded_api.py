"""Which Prefect API is the embedded server this process started: the CLI that starts it
(flows/embedded_server.py) names its URL in ``EMBEDDED_API_ENV``; the slot adapter asks,
because on the embedded server no other machine can hold slots."""

from __future__ import annotations

import os

EMBEDDED_API_ENV = "EVALFLOW_EMBEDDED_PREFECT_API_URL"


def is_embedded_api(url: str) -> bool:
    """True when ``url`` is the embedded server this process started."""
    embedded = os.environ.get(EMBEDDED_API_ENV)
    return bool(embedded) and url.rstrip("/") == embedded.rstrip("/")
