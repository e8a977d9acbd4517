"""The one way evalflow hides credentials in what it prints, logs or stores.

A URL's password (``scheme://user:secret@host``) and the values of secret-looking query
parameters (``?password=``, ``?token=``, ``api_key=`` ...) are replaced by ``***``,
wherever the URL appears in a text: an error line, a stored failure reason, a report.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

#: Query-string (or ``key=value`` setting) names whose value is a secret.
SECRET_NAMES = (
    "password",
    "passwd",
    "pwd",
    "pass",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "secret",
    "client_secret",
    "sslpassword",
    "signature",
    "sig",
)

#: ``user:password@`` after a scheme (``http://``), or at the start of a word without one
#: (``OLLAMA_HOST=ana:pw@gpu:11434``).
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://|(?<![\w/:@.\-]))"
    r"(?P<user>[^/\s:@'\"]*):(?P<pw>[^\s/'\"]*)@(?=[\w\[])"
)
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_])(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r"))"
    r"(?P<eq>\s*=\s*)(?P<value>[^&\s'\",;)]+)",
    flags=re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every URL password and secret ``name=value`` masked.

    >>> redact("postgresql://ana:s3cret@db/x?sslmode=require&password=p")
    'postgresql://ana:***@db/x?sslmode=require&password=***'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m['name']}{m['eq']}{MASK}", text)


def redact_values(value: Any) -> Any:
    """``value`` (nested dicts, lists and strings, as a stored spec summary) with
    ``redact`` applied to every string: what is stored never holds a password."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value


def one_line(text: str, *, limit: int = 500) -> str:
    """``text`` redacted, on one line, at most ``limit`` characters: for a message that
    comes from a library (a driver's error, a server's reply) and may be long."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
