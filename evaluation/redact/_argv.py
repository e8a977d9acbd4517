"""A command line, and the URLs a command was given, as they may be shown."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from evaluation.redact._names import MASK, is_secret_name
from evaluation.redact._text import GivenSecret, redact
from evaluation.redact._url import redact_url

#: The options whose value is a URL (argparse also takes a long option's unambiguous
#: prefix: ``--datab``).
URL_OPTIONS = ("--database", "--url")
#: The environment variables evalflow (and Prefect) read a URL from.
URL_VARIABLES = ("EVALFLOW_DATABASE_URL", "OLLAMA_HOST", "PREFECT_API_URL")
#: A word that is a URL as a whole: a scheme, or ``user:password@`` at its start.
_URL_WORD = re.compile(r"\s*['\"]?([A-Za-z][A-Za-z0-9+.\-]*://|[^\s/:@'\"=]+:[^@]*@)")


#: The name of an environment variable: the value of an option ending ``-env``
#: (``--api-key-env VLLM_KEY``) names where a key is, and is kept (``redact_values``).
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _url_option(word: str) -> bool:
    return len(word) > 2 and any(option.startswith(word) for option in URL_OPTIONS)


#: Short options other tools take a credential with (``-k KEY``, mysql's ``-pSECRET``,
#: ``-t TOKEN``, ``-a AUTH``, curl's ``-u user:password``): evalflow has none but ``-h``,
#: ``-v`` and ``-q`` (recheck R1: ``-k sk-…`` was shown whole).
_SECRET_LETTERS = frozenset("akptu")


#: A word shaped as a key that needs no option to say so (recheck R2: `run spec.yaml
#: $OPENAI_API_KEY`, typed for --api-key, showed the key whole): a prefix of the keys
#: model servers' users hold (OpenAI and compatibles' ``sk-``, Hugging Face's ``hf_``,
#: GitHub's, GitLab's, Slack's, AWS's access key id), then 12 or more characters of
#: letters, digits, ``-`` and ``_`` mixing upper and lower case and digits, as random
#: keys do and names (an experiment ``sk-learn-2024``) do not.
_KEY_SHAPED = re.compile(
    r"(?:sk-|sk_|hf_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abpr]-|AKIA)"
    r"(?=[\w-]*[A-Z])(?=[\w-]*[a-z])(?=[\w-]*[0-9])[A-Za-z0-9_\-]{12,}"
)


def key_shaped(word: str) -> bool:
    """Whether ``word`` looks like a key by itself (``_KEY_SHAPED``).

    >>> [w for w in ("sk-SECRETabc123XYZ", "hf_AbCdEfGhIjK0", "sk-learn-2024", "spec.yaml")
    ...  if key_shaped(w)]
    ['sk-SECRETabc123XYZ', 'hf_AbCdEfGhIjK0']
    """
    return bool(_KEY_SHAPED.fullmatch(word))


def _parts(word: str) -> tuple[str, str, str]:
    """(option, "=" or "", value) of a word: ``--name=value``, ``-kVALUE`` or ``-k=VALUE``
    (a short option's value may be attached); (word, "", "") of any other."""
    if word.startswith("--"):
        return word.partition("=")
    if len(word) > 2 and word[0] == "-" and word[1].isascii() and word[1].isalpha():
        sep = "=" if word[2] == "=" else ""
        return word[:2], sep, word[2 + len(sep) :]
    return word, "", ""


def _secret_option(option: str, value: str) -> bool:
    """Whether ``value``, given to ``option`` (``--api-key``, ``--token``, ``--password``,
    ``-k``, ``-p``: options evalflow does not have, typed as other servers' tools take
    them), is a credential: the option's name suggests one, and it is not a variable's
    name given to an ``...-env`` option."""
    if len(option) == 2 and option[0] == "-" and option[1] != "-":
        return option[1].lower() in _SECRET_LETTERS
    name = option.lstrip("-")
    if not option.startswith("-") or not name or not is_secret_name(name):
        return False
    return not (name.endswith(("-env", "_env")) and _VARIABLE_NAME.fullmatch(value))


def secret_values(argv: Sequence[str]) -> list[str]:
    """The values ``argv`` gives to options named like a credential (``--api-key KEY``,
    ``--token=KEY``; ``_secret_option``) and its words shaped as a key (``key_shaped``),
    as ``redact(text, known=...)`` masks them verbatim wherever an error repeats them
    (``got 'KEY'``, ``invalid choice: 'KEY'``)."""
    found: list[str] = []
    for i, word in enumerate(argv):
        if key_shaped(word):  # a key typed alone (recheck R2)
            found.append(GivenSecret(word))
            continue
        option, _, value = _parts(word)
        if not value:
            option, value = word, argv[i + 1] if i + 1 < len(argv) else ""
            if value.startswith("-"):
                continue
        if value and _secret_option(option, value):
            found.append(GivenSecret(value))
    return list(dict.fromkeys(found))


def gives_a_key(argv: Sequence[str]) -> bool:
    """Whether ``argv`` holds a credential outside a URL: a value of an option named like
    one (``secret_values``), or a word ``redact_argv`` masks that is no URL (``-H
    'Authorization: Bearer KEY'``, ``-e OPENAI_API_KEY=KEY``): where a key goes is then
    worth saying."""
    if secret_values(argv):
        return True
    shown = redact_argv(argv)
    return any(w != s and not _URL_WORD.match(w) for w, s in zip(argv, shown, strict=True))


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with each URL's credentials masked: the value of a URL option (``--database
    URL``, ``--database=URL``) and any word that is a URL are read as one whole URL (a
    password may hold spaces), the value of an option named like a credential
    (``--api-key KEY``, ``--token=KEY``: ``secret_values``) and a word shaped as a key
    (``sk-…``, ``hf_…``: ``key_shaped``) masked whole, every other word read as free text.

    >>> redact_argv(["run", "s.yaml", "--database", "postgresql://ana:pa ss@db/x"])
    ['run', 's.yaml', '--database', 'postgresql://ana:***@db/x']
    >>> redact_argv(["run", "s.yaml", "--api-key", "sk-1", "--token=sk-2"])
    ['run', 's.yaml', '--api-key', '***', '--token=***']
    """
    shown: list[str] = []
    value_is_url = False
    secret_option = ""
    for word in argv:
        option, equals, value = _parts(word)
        if secret_option and not word.startswith("-") and _secret_option(secret_option, word):
            shown.append(MASK)
        elif value_is_url or _URL_WORD.match(word):
            shown.append(redact_url(word))
        elif equals and option.startswith("--") and _url_option(option):
            shown.append(f"{option}={redact_url(value)}")
        elif value and _secret_option(option, value):
            shown.append(f"{option}{equals}{MASK}")
        elif key_shaped(word):
            shown.append(MASK)
        else:
            shown.append(redact(word))
        value_is_url = not equals and _url_option(word)
        secret_option = word if not value and word.startswith("-") else ""
    return shown


def urls_given(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The URLs a command was given that hold a credential: the words of ``argv`` that
    ``redact_argv`` masks (and the value of an ``--option=URL`` word), and the values of
    ``URL_VARIABLES`` in ``environ``; then the values of its options named like a
    credential (``secret_values``). ``redact(text, known=...)`` masks them verbatim."""
    known = [word for word, shown in zip(argv, redact_argv(argv), strict=True) if word != shown]
    known += [word.partition("=")[2] for word in known if word.startswith("--")]
    known += [environ.get(name, "") for name in URL_VARIABLES]
    urls = [url for url in dict.fromkeys(known) if url and redact_url(url) != url]
    return urls + secret_values(argv)
