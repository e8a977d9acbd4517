"""A URL with its credentials masked, read as every library that may use it reads it.

Who reads evalflow's URLs, and where each puts the end of a password:

- SQLAlchemy's ``make_url`` (database URLs): the user is ``[^:/]*``, the password
  ``[^@]*`` up to the first ``@`` after it, whatever it holds (``/``, ``'``, spaces,
  ``?``, ``#``); an ``@`` beyond makes the rest of the password the host.
- httpx and urllib (host URLs): the authority ends at the first ``/``, ``?`` or ``#``;
  the user information is what precedes its last ``@``; a ``/`` in a password makes the
  rest of it a path.
- Ollama's ``OLLAMA_HOST`` (``evaluation.settings.ollama_url``, after Go's ``net/url``):
  no scheme means ``http``; the authority ends at the first ``/``, the user information at
  its last ``@``.

A password the user meant is masked whole under every one of these readings: it runs
from the first ``:`` after the user to the last ``@`` of the URL. Where a path or query
holds an ``@`` after a ``host:port``, SQLAlchemy too reads a password there, and so this
masks it (never a secret shown; rarely a harmless part hidden). A user name is shown,
except a lone one in an ``http(s)://`` URL (no password, or an empty one: ``KEY:@``, as
curl's ``-u KEY:``): httpx sends it as Basic auth,
and ``https://TOKEN@gateway`` is how a token is usually pasted there.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from evaluation.redact._names import MASK, is_secret_name

# After a command or spec line to paste whose password is masked: pasted as it is, it
# would send "***".
PASSWORD_NOTE = " (password masked: put it back)"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: The schemes whose lone user name is a credential: httpx sends ``http://TOKEN@host``'s
#: as Basic auth, and such a user name is usually a token pasted there.
_WEB = re.compile(r"(?i)(https?|wss?)://$")


def redact_url(url: str) -> str:
    """``url`` (one URL, as given: it may hold spaces and quotes) with its password and
    the values of credential-named query parameters masked.

    >>> redact_url("postgresql+psycopg2://ana:pa/ss W'rd@db:5432/x?sslmode=require&auth_token=t")
    'postgresql+psycopg2://ana:***@db:5432/x?sslmode=require&auth_token=***'
    >>> redact_url("ana:p@ss w0rd@gpu:11434")
    'ana:***@gpu:11434'
    >>> redact_url("https://sk-abc@gateway:8443/v1")
    'https://***@gateway:8443/v1'
    """
    stripped = url.lstrip(" \t\"'")
    match = _SCHEME.match(stripped)
    start = len(url) - len(stripped) + (match.end() if match else 0)
    prefix, rest = url[:start], url[start:]
    userinfo, at, after = rest.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if "/" in user:  # "/a:b@c": a path, not a user (SQLAlchemy: no user either)
            userinfo, at, after = "", "", rest
        elif colon and password:
            userinfo = f"{user}:{MASK}"
        elif user and not password and _WEB.match(prefix.strip(" \t\"'")):
            userinfo = MASK  # httpx sends it as Basic auth: "https://TOKEN@gateway"
    return prefix + userinfo + at + _redact_query(after)


def userinfo_readings(url: str) -> list[tuple[str, str]]:
    """(user, password), as written (maybe percent-encoded), under each reading of
    ``url`` that finds a password: ``redact_url``'s (the password runs to the last
    ``@``) and httpx's (the user information ends with the authority, at the first
    ``/``, ``?`` or ``#``): what a Basic header made from the URL carries."""
    stripped = url.strip(" \t\"'")
    match = _SCHEME.match(stripped)
    rest = stripped[match.end() if match else 0 :]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    readings: list[tuple[str, str]] = []
    for userinfo in (rest.rpartition("@")[0], authority.rpartition("@")[0]):
        user, colon, password = userinfo.partition(":")
        if colon and password and (user, password) not in readings:
            readings.append((user, password))
    return readings


def _redact_query(text: str) -> str:
    """``text`` (a URL after its user information) with the value of every parameter
    whose name suggests a credential masked; the query runs to the end (SQLAlchemy keeps
    a ``#`` in a value), its parameters split at ``&`` as ``parse_qsl`` splits them."""
    head, question, query = text.partition("?")
    if not question:
        return text
    parts = []
    for parameter in query.split("&"):
        name, equals, value = parameter.partition("=")
        secret = equals and value and is_secret_name(unquote_plus(name).strip())
        parts.append(f"{name}={MASK}{closing_punctuation(value)}" if secret else parameter)
    return head + question + "&".join(parts)


def closing_punctuation(value: str) -> str:
    """The quotes, brackets and punctuation that end a masked value in free text, closing
    what opened before its URL ("got 'http://h:1/?api_key=***', expected",
    "(GET http://h/?key=***)"): kept, as they are the sentence's, not the key's (a
    newcomer's error line lost its closing quote)."""
    kept = value[len(value.rstrip("'\")]}>,.;:")) :]
    return kept if len(kept) < len(value) else ""
