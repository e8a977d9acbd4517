"""Whether a write to a page served without a login (the monitor's Start and Cancel, the
review page's rating and reveal) comes from that page: its ``Origin`` (else ``Referer``)
is the server's own ``http://HOST``, and it carries the token the server made when it
started (compared in constant time). Another web page open in the same browser can
neither forge nor replay such a write: a body-less POST is a "simple" request any page
may send (newcomer S6: the review page's reveal answered one from ``http://evil.example``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit


def new_token() -> str:
    """A server's secret for its pages' writes."""
    return secrets.token_urlsafe(32)


def foreign_origin(headers: Mapping[str, str]) -> str | None:
    """Why a request does not come from this server's page (its words), or None."""
    host = headers.get("host", "")
    origin = headers.get("origin") or headers.get("referer") or ""
    parts = urlsplit(origin)
    if not host or f"{parts.scheme}://{parts.netloc}" != f"http://{host}":
        return f"refused: the request comes from {origin or 'no page'!r}, not this server's page"
    return None


def token_matches(given: object, token: str) -> bool:
    """Whether ``given`` (a form field, a header) is the server's ``token``."""
    return hmac.compare_digest(str(given or ""), token)
