"""A command line, and the URLs a command was given, as they may be shown."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from evaluation.redact._text import redact
from evaluation.redact._url import redact_url

#: The options whose value is a URL (argparse also takes a long option's unambiguous
#: prefix: ``--datab``).
URL_OPTIONS = ("--database", "--url")
#: The environment variables evalflow (and Prefect) read a URL from.
URL_VARIABLES = ("EVALFLOW_DATABASE_URL", "OLLAMA_HOST", "PREFECT_API_URL")
#: A word that is a URL as a whole: a scheme, or ``user:password@`` at its start.
_URL_WORD = re.compile(r"\s*['\"]?([A-Za-z][A-Za-z0-9+.\-]*://|[^\s/:@'\"=]+:[^@]*@)")


def _url_option(word: str) -> bool:
    return len(word) > 2 and any(option.startswith(word) for option in URL_OPTIONS)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with each URL's credentials masked: the value of a URL option (``--database
    URL``, ``--database=URL``) and any word that is a URL are read as one whole URL (a
    password may hold spaces), every other word as free text.

    >>> redact_argv(["run", "s.yaml", "--database", "postgresql://ana:pa ss@db/x"])
    ['run', 's.yaml', '--database', 'postgresql://ana:***@db/x']
    """
    shown: list[str] = []
    value_is_url = False
    for word in argv:
        option, equals, value = word.partition("=")
        if value_is_url or _URL_WORD.match(word):
            shown.append(redact_url(word))
        elif equals and option.startswith("--") and _url_option(option):
            shown.append(f"{option}={redact_url(value)}")
        else:
            shown.append(redact(word))
        value_is_url = not equals and _url_option(word)
    return shown


def urls_given(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The URLs a command was given that hold a credential: the words of ``argv`` that
    ``redact_argv`` masks (and the value of an ``--option=URL`` word), and the values of
    ``URL_VARIABLES`` in ``environ``. ``redact(text, known=...)`` masks them verbatim."""
    known = [word for word, shown in zip(argv, redact_argv(argv), strict=True) if word != shown]
    known += [word.partition("=")[2] for word in known if word.startswith("--")]
    known += [environ.get(name, "") for name in URL_VARIABLES]
    return [url for url in dict.fromkeys(known) if url and redact_url(url) != url]
