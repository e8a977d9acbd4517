"""Which names (a URL's query parameters, ``key=value`` settings) hold a credential."""

from __future__ import annotations

import re

MASK = "***"

#: Held anywhere in a name (``secret_key``, ``sslpassword``, ``X-Amz-Credential``).
_ANYWHERE = ("password", "passwd", "passphrase", "secret", "credential", "signature")
#: A word of the name (split at ``_ - .`` and at case changes) that starts or ends with
#: one of these: ``auth_token``, ``private_token``, ``api_key``, ``accessKey``,
#: ``sessionid``, ``authorization``, ``sslkey``, ``JSESSIONID``, ``PHPSESSID``.
_WORD_STEMS = ("token", "key", "auth", "session", "cookie", "pwd", "jwt", "bearer")
_WORD_STEMS += ("sessid", "sessionid")
#: Words that are one of these exactly (short words that begin many harmless ones:
#: ``signal``, ``passes``, ``optimal``): ``code_verifier``, ``client_assertion``,
#: ``totp``, ``sid``.
_WORDS = frozenset(
    {"pass", "sig", "sas", "apikey", "otp", "totp", "hotp", "sid", "verifier", "assertion"}
)
#: Whole names (lowercased, ``_ - .`` dropped) that are one of these: words that are a
#: credential alone but name harmless things within a longer name (``code`` is an OAuth
#: authorisation code, ``status_code`` and ``encoding`` are not; ``pin`` is a PIN,
#: ``pin_memory`` is not).
_NAMES = frozenset({"code", "devicecode", "usercode", "authcode", "pin", "ticket", "mfa"})
#: Words that begin or end with a stem but count things (``max_tokens=512``).
_COUNTS = frozenset({"tokens", "keys", "sessions"})

_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_name(name: str) -> bool:
    """Whether ``name`` suggests a credential (the issue-43 list, as substrings and words).

    >>> [n for n in ("secret_key", "private_token", "api_key", "max_tokens", "sslmode")
    ...  if is_secret_name(n)]
    ['secret_key', 'private_token', 'api_key']
    """
    lowered = name.lower()
    if re.sub(r"[_.\-]", "", lowered) in _NAMES:
        return True
    if any(part in lowered for part in _ANYWHERE):
        return True
    for word in (w.lower() for w in _WORD.findall(name)):
        if word in _WORDS:
            return True
        if word in _COUNTS:
            continue
        if any(word.startswith(stem) or word.endswith(stem) for stem in _WORD_STEMS):
            return True
    return False
