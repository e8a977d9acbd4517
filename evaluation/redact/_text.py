"""Credentials masked in free text: an error line, a log record, a stored reason.

What evalflow puts into a text itself masks each URL first (``redact_url``), so a
password with spaces or quotes never reaches a text whole. This is the net for what
others wrote (a driver's error, a server's reply, argparse's messages): every
``scheme://`` URL in it (to the next white space), every ``user:password@host`` word,
every ``name=value`` whose name suggests a credential, every ``Basic``/``Bearer``
credential and ``Authorization``/``Cookie`` header value, and every URL the caller knows
was given (``known``: argv words, environment values, a host's URL), verbatim, whatever
it holds, with its password percent-encoded and as a Basic header's base64.
"""

from __future__ import annotations

import re
from base64 import b64decode, b64encode
from binascii import Error as Base64Error
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from evaluation.redact._names import MASK, is_secret_name
from evaluation.redact._url import closing_punctuation, redact_url, userinfo_readings

#: A URL with a scheme, up to white space (``redact_url`` finds its parts); else
#: ``user:password@host`` without one (``OLLAMA_HOST=ana:pw@gpu:11434``) at the start of a
#: word, its password running to the word's last ``@`` before a host. An opening bracket
#: is never part of a user name: "(http://u:pw@h)" is a URL in brackets.
_URL = re.compile(
    r"(?P<url>[A-Za-z][A-Za-z0-9+.\-]*://\S*)"
    r"|(?<![\w/:@.\-])(?P<user>[^\s/:@'\"=(\[{<]+):(?P<pw>\S*)@(?=[\w\[])"
)
#: ``name=value`` (or ``name = 'a quoted value'``), as in a libpq keyword string.
_SETTING = re.compile(
    r"(?P<name>(?<![\w\-%])[A-Za-z_][\w.\-%]*)(?P<eq>\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^&\s'\",;)]+)"
)
#: An HTTP header that carries a credential, as a server may echo it (``Authorization:
#: Basic dTpw``, ``"authorization": "Bearer eyJ..."``): its value (a scheme and one word,
#: or one word) is masked.
_HEADER = re.compile(
    r"(?i)\b(?P<name>(?:proxy-)?authorization|(?:set-)?cookie|x-api-key)"
    r"(?P<sep>[\"']?\s*:\s*[\"']?)"
    r"(?P<value>(?:(?:basic|bearer|digest|token|negotiate)\s+)?[^\s\"',;]+)"
)
#: A credential after its HTTP auth scheme, anywhere (``header Basic dTpw...``): masked
#: where it is one (``_is_credential``), so "Basic settings" stays.
_AUTH_VALUE = re.compile(r"\b(?P<scheme>Basic|Bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9+/=._~\-]+)")
#: Passwords shorter than this are masked only where they sit in a URL: masking every
#: "abc" in a text would garble it, and tell the password besides.
_SHORTEST_LOOSE_SECRET = 4
#: Where the libraries' parsers cut a URL (a password holding one is cut in pieces).
_CUTS = re.compile(r"[@:/?#&=\s'\"]+")


class GivenSecret(str):
    """A credential a command was given alone, not in a URL (``--api-key KEY``, an option
    evalflow does not have: ``secret_values``): in ``known``, masked verbatim."""


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every credential masked (see the module docstring).

    >>> redact("postgresql://ana:s3cret@db/x?sslmode=require&password=p failed")
    'postgresql://ana:***@db/x?sslmode=require&password=*** failed'
    >>> redact("OLLAMA_HOST='ana:pa ss@gpu:1'", known=["ana:pa ss@gpu:1"])
    "OLLAMA_HOST='ana:***@gpu:1'"
    """
    for given, shown in _known_forms(known):
        text = text.replace(given, shown)
    text = _URL.sub(lambda m: redact_url(m["url"]) if m["url"] else f"{m['user']}:{MASK}@", text)
    text = _SETTING.sub(_mask_setting, text)
    text = _HEADER.sub(
        lambda m: m.group() if m["value"] == MASK else m["name"] + m["sep"] + MASK, text
    )
    return _AUTH_VALUE.sub(_mask_auth_value, text)


def _mask_auth_value(match: re.Match[str]) -> str:
    value = match["value"]
    if match["scheme"] == "Basic":  # base64 of user:password
        try:
            secret = b":" in b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (Base64Error, ValueError):
            secret = False
    else:  # a token: not a plain word ("Bearer authentication")
        secret = len(value) >= 8 and not value.isalpha()
    return f"{match['scheme']}{match['sep']}{MASK}" if secret else match.group()


def _mask_setting(match: re.Match[str]) -> str:
    value = match["value"]
    closing = "" if value[0] in "'\"" else closing_punctuation(value)
    if not is_secret_name(unquote(match["name"])) or value.strip("'\"") == MASK:
        return match.group()
    if value[: len(value) - len(closing)] == MASK:
        return match.group()
    return f"{match['name']}{match['eq']}{MASK}{closing}"


def _known_forms(known: Iterable[str]) -> list[tuple[str, str]]:
    """(as it may appear, as it is shown) for each known URL that holds a credential:
    the URL itself and its escaped form (``repr``), then its secrets alone, raw,
    percent-decoded and percent-encoded, whole and in the pieces a parser may cut them
    into (a password with an ``@`` is partly a host to SQLAlchemy, and a driver may
    print that host), and ``user:password`` in base64 as a Basic header carries it (a
    server may echo its request's headers), longest first."""
    forms: dict[str, str] = {}
    for url in known:
        if isinstance(url, GivenSecret):  # whole, and as an error's repr shows it
            for form in {url, repr(url)[1:-1]}:
                if len(form) >= _SHORTEST_LOOSE_SECRET:
                    forms.setdefault(form, MASK)
            continue
        shown = redact_url(url)
        if shown == url:
            continue
        forms[url] = shown
        forms[repr(url)[1:-1]] = repr(shown)[1:-1]
        for secret in _secrets_in(url, shown):
            decoded = unquote(secret)
            for form in {secret, decoded, quote(decoded, safe=""), quote(decoded)}:
                for piece in (form, *_CUTS.split(form)):
                    if len(piece) >= _SHORTEST_LOOSE_SECRET:
                        forms.setdefault(piece, MASK)
        for user, password in userinfo_readings(url):
            for pair in {f"{user}:{password}", f"{unquote(user)}:{unquote(password)}"}:
                basic = b64encode(pair.encode()).decode()
                forms.setdefault(basic, MASK)
                forms.setdefault(basic.rstrip("="), MASK)
    return sorted(forms.items(), key=lambda item: -len(item[0]))


def _secrets_in(url: str, shown: str) -> list[str]:
    """The parts of ``url`` that ``shown`` masks: what stood where each ``***`` is."""
    pattern = "(.*?)".join(re.escape(piece) for piece in shown.split(MASK))
    match = re.fullmatch(pattern, url, flags=re.DOTALL)
    return [part for part in match.groups() if part] if match else []


def redact_values(value: Any) -> Any:
    """``value`` (nested dicts, lists and strings, as a stored spec summary) with every
    string redacted, a URL under a ``url`` key parsed as one, and the value under a
    credential-named key masked (a variable's name under ``..._env`` kept): what is
    stored never holds a password."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(item) for item in value]
    return value


#: The name of an environment variable, under a key ending ``_env`` (a host's
#: ``api_key_env``): it names where a credential is, it is not one, and is kept.
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _redact_item(key: str, item: Any) -> Any:
    if isinstance(item, str) and key.lower().endswith("url"):
        return redact(redact_url(item))
    if isinstance(item, str) and key.endswith("_env") and _VARIABLE_NAME.fullmatch(item):
        return item
    if isinstance(item, str | int | float) and item != "" and is_secret_name(key):
        return MASK
    return redact_values(item)


def one_line(text: str, *, limit: int = 500, known: Iterable[str] = ()) -> str:
    """``text`` redacted (``known`` as for ``redact``), on one line, at most ``limit``
    characters: for a message that comes from a library (a driver's error, a server's
    reply) and may be long."""
    flat = " ".join(redact(text, known).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def redact_exception(exc: BaseException, known: Iterable[str] = ()) -> BaseException:
    """``exc`` with the text arguments its message is made of redacted, in place, before
    something that stores messages (Prefect's flow run state) records it."""
    args = tuple(redact(a, known) if isinstance(a, str) else a for a in exc.args)
    if args != exc.args:
        exc.args = args
    return exc
