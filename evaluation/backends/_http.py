"""The one place where HTTP-level failures become evalflow errors.

Both HTTP backends raise httpx exceptions (transport), ``httpx.HTTPStatusError`` (an error
status, body already read) or the stream errors below, and wrap every exchange in
``translate_errors``, which maps them with ``to_backend_error``:

    httpx.ConnectTimeout, httpx.NetworkError,
    httpx.ProxyError, httpx.RemoteProtocolError   -> BackendUnavailable   (retryable)
    httpx.ReadTimeout, WriteTimeout, PoolTimeout  -> BackendTimeout       (retryable)
    IncompleteStream (no done / no [DONE])        -> BackendUnavailable   (retryable)
    httpx.DecodingError, MalformedStream          -> BackendServerError   (retryable)
    StreamErrorLine ({"error": ...} mid-stream)   -> BackendServerError   (retryable)
    httpx.UnsupportedProtocol, LocalProtocolError,
    httpx.TooManyRedirects,
    a TLS handshake answered in plain HTTP,
    UnpooledEmbedding (a vector per token)        -> BackendRejected      (not retryable)
    status 503                                    -> BackendOverloaded    (retryable)
    other 5xx                                     -> BackendServerError   (retryable)
    404 naming a model                            -> ModelNotFound        (not retryable)
    401, 403                                      -> KeyRefused           (not retryable)
    other 4xx                                     -> BackendRejected      (not retryable)

A transport error's message says what happened in words (``ReadError: the connection
was reset or closed before the answer came``, ``ReadTimeout: no answer within 120 s``),
and its ``outcome`` says which of ``OUTCOMES`` it was: what an attempt's record stores
and what tells a host that is not listening from one that listens and fails.

A server's words (an error body, a stream's error line, a library's message about the
exchange) may repeat the request's credentials: the password of the host's URL, its
Basic header, its Bearer key. ``translate_errors`` masks them (``evaluation.redact``,
the host's URL and key known) in every error that leaves an exchange, so no stored or
printed failure reason holds them.
"""

from __future__ import annotations

import html
import json
import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache

import httpx

from evaluation.errors import (
    BackendError,
    BackendOverloaded,
    BackendRejected,
    BackendServerError,
    BackendTimeout,
    BackendUnavailable,
    KeyRefused,
    ModelNotFound,
)
from evaluation.printable import printable
from evaluation.redact import MASK, one_line, redact, redact_exception


class StreamErrorLine(Exception):
    """The server sent an error object after the stream had started (HTTP 200)."""


class IncompleteStream(Exception):
    """The stream ended without its final chunk (``done: true`` / ``data: [DONE]``)."""


class MalformedStream(Exception):
    """A stream line was not the JSON the protocol promises."""


class UnpooledEmbedding(MalformedStream):
    """An embeddings answer with one vector per token of an input, not one per input: the
    model pools nothing (a chat GGUF served with ``embedding: true``), so asking again
    gets the same answer."""


# Checked in order; the first matching class wins (subclasses before their bases).
TRANSPORT_ERRORS: tuple[tuple[type[Exception], type[BackendError]], ...] = (
    (httpx.UnsupportedProtocol, BackendRejected),
    (httpx.LocalProtocolError, BackendRejected),
    (httpx.TooManyRedirects, BackendRejected),
    (httpx.ConnectTimeout, BackendUnavailable),
    (httpx.TimeoutException, BackendTimeout),
    (httpx.NetworkError, BackendUnavailable),
    (httpx.ProxyError, BackendUnavailable),
    (httpx.RemoteProtocolError, BackendUnavailable),
    (IncompleteStream, BackendUnavailable),
    (httpx.DecodingError, BackendServerError),
    (UnpooledEmbedding, BackendRejected),
    (MalformedStream, BackendServerError),
    (StreamErrorLine, BackendServerError),
)


# What each transport failure means for the attempt (``BackendError.outcome``), checked
# in order like TRANSPORT_ERRORS; and what happened, in words, when the library said
# nothing useful. ``{read}`` and the like: the request's timeout of that phase.
_TRANSPORT_OUTCOMES: tuple[tuple[type[Exception], str, str], ...] = (
    (httpx.ConnectTimeout, "unreachable", "could not connect within {connect:g} s"),
    (httpx.ConnectError, "unreachable", "could not connect (refused, or no route to it)"),
    (httpx.ProxyError, "unreachable", "the proxy refused the connection"),
    (httpx.ReadTimeout, "timeout", "no answer within {read:g} s"),
    (httpx.WriteTimeout, "timeout", "could not send the request within {write:g} s"),
    (httpx.PoolTimeout, "timeout", "no free connection to the host within {pool:g} s"),
    (httpx.ReadError, "reset", "the connection was reset or closed before the answer came"),
    (httpx.WriteError, "reset", "the connection was reset or closed while sending"),
    (httpx.RemoteProtocolError, "reset", "the server closed the connection without an answer"),
    (httpx.NetworkError, "reset", "the connection failed"),
    (IncompleteStream, "reset", "the answer stopped before its end"),
)


PLAIN_HTTP_HINT = "the server answers plain HTTP, not TLS: use http:// in the host's url"


def answered_plain_http(exc: Exception) -> bool:
    """An https:// URL's TLS handshake that got a plain-HTTP answer (OpenSSL's
    WRONG_VERSION_NUMBER): the server is there, the URL's scheme is wrong."""
    return isinstance(exc, httpx.ConnectError) and "WRONG_VERSION_NUMBER" in str(exc)


def _what_happened(exc: Exception) -> tuple[str, str]:
    """(outcome, words) for a transport error: the library's own text when it says
    something (``[Errno 111] Connection refused``), else ours; a timeout always says how
    long was waited."""
    detail = str(exc).strip()
    for cls, outcome, words in _TRANSPORT_OUTCOMES:
        if isinstance(exc, cls):
            if outcome == "timeout" or not detail or detail == type(exc).__name__:
                detail = _with_timeout(words, exc) or detail or "timed out"
            elif isinstance(exc, httpx.ConnectError):
                detail = _connect_words(detail, _address(exc)) or detail
            return outcome, detail
    return "server error", detail or type(exc).__name__


#: How the OS and asyncio say a connection was refused ("[Errno 111] Connection refused",
#: "[Errno 111] Connect call failed ('127.0.0.1', 18181)"), and how httpx says no address
#: of the host answered: told in plain words, not errno's (newcomer N8).
_REFUSED = re.compile(r"Errno 111\b|Connection refused|Connect call failed")
_NO_ADDRESS = "All connection attempts failed"
#: How getaddrinfo says a host name does not resolve (glibc, macOS, Windows).
_UNRESOLVED = re.compile(
    r"Name or service not known|nodename nor servname|No address associated with hostname"
    r"|Temporary failure in name resolution|getaddrinfo failed"
)


def name_unresolved(exc: BaseException) -> bool:
    """A connection that failed because the URL's host name does not resolve: nothing
    to start there, the name is what to check."""
    return isinstance(exc, httpx.ConnectError) and bool(_UNRESOLVED.search(str(exc)))


def _connect_words(detail: str, address: str) -> str | None:
    """A refused or failed connection in words ("connection refused at 127.0.0.1:18181",
    "no such host name: gpu-box does not resolve"); None for another library text (a TLS
    failure)."""
    if _REFUSED.search(detail):
        return f"connection refused at {address}" if address else "connection refused"
    if _UNRESOLVED.search(detail):
        name = address.rsplit(":", 1)[0] if address else "the url's host"
        return f"no such host name: {name} does not resolve"
    if detail == _NO_ADDRESS:
        return f"could not connect to {address or 'the host'} (refused, or no route to it)"
    return None


def _address(exc: Exception) -> str:
    """host:port of the request ``exc`` was raised for; "" where it is not known."""
    try:
        url = exc.request.url  # type: ignore[attr-defined]
    except (RuntimeError, AttributeError):
        return ""
    return f"{url.host}:{url.port}" if url.port else url.host


def _with_timeout(words: str, exc: Exception) -> str | None:
    """``words`` with the request's timeouts filled in; None if they are not known."""
    if "{" not in words:
        return words
    try:
        timeout = exc.request.extensions["timeout"]  # type: ignore[attr-defined]
        return words.format(**{k: v if v is not None else float("inf") for k, v in timeout.items()})
    except (RuntimeError, KeyError, AttributeError, TypeError, ValueError):
        return None


def error_message(body: str) -> str:
    """The server's message from an Ollama (``{"error": "..."}``) or OpenAI
    (``{"error": {"message": ...}}``) error body; the raw text when it is neither."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("message"))
        if isinstance(error, dict):
            error = error.get("message")
        if isinstance(error, str):
            return error
    return body.strip()


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
REPLY_LIMIT = 200  # characters of a server's error reply an error message quotes


def html_page(body: str) -> bool:
    """Whether ``body`` is an HTML page (another web server's), not an API's answer."""
    return bool(re.match(r"\s*<(!doctype html|html)\b", body, re.IGNORECASE))


def reply_excerpt(body: str, known: Iterable[str] = ()) -> str:
    """A server's error reply on one line, redacted: its message (``error_message``); an
    HTML page (another web server's 404 page) named by its title, not quoted whole; other
    text on several lines or longer than ``REPLY_LIMIT`` characters joined and cut. Its
    control characters are escaped (``printable``): the line is stored and printed on
    terminals, where a server's ESC sequences cleared the screen (S5)."""
    message = error_message(body)
    if html_page(message):
        title = _TITLE.search(message)
        name = one_line(html.unescape(title[1]), limit=80, known=known) if title else ""
        return f"an HTML page titled {name!r}" if name else "an HTML page"
    if len(message) <= REPLY_LIMIT and "\n" not in message and "\r" not in message:
        return printable(redact(message, known))  # as written (Ollama's double spaces)
    return printable(one_line(message, limit=REPLY_LIMIT, known=known))


def error_for_status(
    status: int, message: str, *, host: str, model: str, sent: str = ""
) -> BackendError:
    """The evalflow error for an HTTP error status with the server's message; ``sent``:
    the credentials the request carried, in words (``auth.credentials_sent``)."""
    text = f"{host}: HTTP {status}" + (f" for model '{model}'" if model else "")
    text += f": {message}" if message else ""
    kw = {"host": host, "model": model, "status_code": status}
    if status in (401, 403):
        return KeyRefused(_refusal(status, message, host, sent), **kw)
    if status == 503:
        return BackendOverloaded(text, **kw)
    if status >= 500:
        return BackendServerError(text, **kw)
    if status == 404 and "model" in message.lower():
        return ModelNotFound(text, **kw)
    return BackendRejected(text, **kw)


def _refusal(status: int, message: str, host: str, sent: str) -> str:
    """A 401/403 in one line: the host, what it said (short), and what to do."""
    said = f" ({message})" if message else ""  # already short: reply_excerpt
    if sent:
        return (
            f"{host}: HTTP {status}{said}: the host refused {sent}; check that it is the "
            "key the server was started with"
        )
    return (
        f"{host}: HTTP {status}{said}: the host wants a key and none was sent; put the key "
        "in an environment variable and name it with api_key_env in the host's spec "
        "(evalflow judge: --api-key-env)"
    )


def to_backend_error(
    exc: Exception, *, host: str, model: str, known: Iterable[str] = (), sent: str = ""
) -> BackendError | None:
    """Map a lower-level exception to the evalflow error tree; None when unmapped. What
    the server or library said is redacted, the credentials of the ``known`` URLs (the
    host's) masked in every form; ``sent`` as in ``error_for_status``."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        message = reply_excerpt(response.text, known)
        status = response.status_code
        return error_for_status(status, message, host=host, model=model, sent=sent)
    where = f" (model '{model}')" if model else ""
    if answered_plain_http(exc):
        detail = redact(str(exc).strip(), known)
        text = f"{host}{where}: {type(exc).__name__}: {detail}; {PLAIN_HTTP_HINT}"
        return BackendRejected(text, host=host, model=model)
    for cls, mapped in TRANSPORT_ERRORS:
        if isinstance(exc, cls):
            outcome, detail = _what_happened(exc)
            detail = redact(detail, known)
            error = mapped(f"{host}{where}: {detail}", host=host, model=model)
            if isinstance(error, BackendUnavailable):
                error.outcome = outcome
            return error
    return None


@contextmanager
def translate_errors(
    host: str, model: str = "", *, url: str = "", key: str = "", sent: str = ""
) -> Iterator[None]:
    """Re-raise mapped lower-level errors as evalflow errors, ``from`` the original; an
    evalflow error raised inside (made from a server's reply) leaves with the
    credentials of ``url`` (the host's) and its ``key`` masked too. ``sent``: what a
    401/403 says was sent (``error_for_status``)."""
    known = (url,) if url else ()
    try:
        yield
    except (httpx.HTTPError, StreamErrorLine, IncompleteStream, MalformedStream) as exc:
        mapped = to_backend_error(exc, host=host, model=model, known=known, sent=sent)
        if mapped is None:
            raise
        raise _masked(mapped, key) from exc
    except BackendError as exc:
        _masked(redact_exception(exc, known), key)  # type: ignore[arg-type]  (in place)
        raise


def _masked(exc: BackendError, key: str) -> BackendError:
    """``exc`` with ``key`` (a server may echo the key it refused) masked in its text,
    in place."""
    if key and any(isinstance(a, str) and key in a for a in exc.args):
        exc.args = tuple(a.replace(key, MASK) if isinstance(a, str) else a for a in exc.args)
    return exc


async def raise_for_status(response: httpx.Response) -> None:
    """Read the body of an error response (streamed or not), then raise
    ``httpx.HTTPStatusError`` for ``translate_errors`` to map."""
    if response.status_code >= 400:
        await response.aread()
        response.raise_for_status()


def parse_json_object(line: str) -> dict:
    """One JSON object from a stream line or body; MalformedStream otherwise."""
    try:
        payload = json.loads(line)
    except ValueError as exc:
        raise MalformedStream(f"not JSON: {line[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise MalformedStream(f"not a JSON object: {line[:200]!r}")
    return payload


def pool_limits(slots: int, headroom: int = 4) -> httpx.Limits:
    """Connections for a host's slots plus a few for preflight, telemetry and retries."""
    size = max(1, slots) + headroom
    return httpx.Limits(max_connections=size, max_keepalive_connections=size)


@cache
def shared_tls_context() -> ssl.SSLContext:
    """httpx's default verified context, built once: every client would otherwise parse
    certifi's bundle again (~15 ms of CPU each), even for plain-HTTP hosts."""
    return httpx.create_ssl_context()
