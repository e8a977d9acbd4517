"""A host URL that leads to a web server but not to a model API: the API's own routes
answer 404 (Ollama's ``/api/tags`` and ``/v1/models`` alike). Another web server listens
on that port (a web UI, ``evalflow view``), or the URL was pasted with an endpoint's path
(``http://127.0.0.1:8080/v1/chat/completions``). The fix is the URL, not the kind: the
error (``NoAPIAtURL``) says which request answered 404, what it answered in a few words
(a 404 page is not quoted whole), and how to fix the URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx

from evaluation.backends._http import reply_excerpt
from evaluation.errors import BackendRejected, ModelNotFound, NoAPIAtURL
from evaluation.redact import PASSWORD_NOTE, redact_url
from evaluation.spec import HostSpec


def route_missing(exc: BackendRejected) -> bool:
    """A 404 that names no model: the route itself is missing at this URL."""
    return exc.status_code == 404 and not isinstance(exc, ModelNotFound)


def what_answered(exc: BackendRejected, url: str) -> str:
    """ "GET http://127.0.0.1:8765/api/tags answered HTTP 404 (an HTML page titled 'x')": the
    request (from the error's cause) and the reply, on one line, ``url``'s password
    masked; the error's own message where its cause is not an HTTP status."""
    cause = exc.__cause__
    if not isinstance(cause, httpx.HTTPStatusError):
        return str(exc)
    said = reply_excerpt(cause.response.text, (url,))
    where = redact_url(str(cause.request.url))
    return f"{cause.request.method} {where} answered HTTP 404" + (f" ({said})" if said else "")


def url_fix(url: str) -> str:
    """How to fix a host URL that leads to no model API: drop a path it has (to the
    server's root), else check its port."""
    parts = urlsplit(url)
    if parts.path.strip("/"):
        root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        shown = redact_url(root)
        note = PASSWORD_NOTE if shown != root else ""
        return f"the url has a path ({parts.path}): give the server's root, e.g. {shown}{note}"
    return "check the port (another web server answers there)"


def html_instead_of_api(response: httpx.Response, host: HostSpec) -> NoAPIAtURL:
    """A 200 answer to an API route that is an HTML page (a dashboard on the host's port):
    no API at this url, as a 404 page says (``no_api_at_url``); it read "not JSON:
    '<html><head><title>My Dashboard</title>...'" under "start the server there"."""
    kind = "Ollama" if host.kind == "ollama" else "OpenAI-compatible"
    said = reply_excerpt(response.text, (host.url,))
    where = redact_url(str(response.request.url))
    message = (
        f"{host.name}: {response.request.method} {where} answered {said}: no {kind} API at "
        f"this url; {url_fix(host.url)}"
    )
    return NoAPIAtURL(message, host=host.name, status_code=response.status_code)


def no_api_at_url(exc: BackendRejected, host: HostSpec, *, also: str = "") -> NoAPIAtURL:
    """``exc`` (a 404 for ``host``'s API route) as a ``NoAPIAtURL``; ``also``: another
    route that was tried and answered no better (``/v1/models`` for an Ollama host)."""
    tried = f", {also} too" if also else ""
    kinds = "Ollama or OpenAI-compatible" if also or host.kind == "ollama" else "OpenAI-compatible"
    message = (
        f"{host.name}: {what_answered(exc, host.url)}{tried}: no {kinds} API at this url; "
        f"{url_fix(host.url)}"
    )
    return NoAPIAtURL(message, host=exc.host, model=exc.model, status_code=exc.status_code)
