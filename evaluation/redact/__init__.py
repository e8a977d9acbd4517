"""The one way evalflow hides credentials in what it prints, logs or stores.

A URL's password (``scheme://user:secret@host``), a host URL's user alone
(``https://TOKEN@host``) and the values of query parameters or settings whose name
suggests a credential (``password``, ``secret_key``, ``auth_token``, ``X-Amz-Signature``
...) are replaced by ``***``:

- ``redact_url(url)``: one URL, parsed as the libraries that use it parse it (SQLAlchemy,
  httpx, Ollama's ``OLLAMA_HOST``), so a password with ``/``, quotes or spaces is masked
  whole. Whatever evalflow writes a URL into (an error, a stored spec, a page) goes
  through it first.
- ``redact_argv(argv)``: a command line before it is echoed (``resume with: ...``), the
  value of an option named like a credential (``--api-key KEY``, which evalflow does not
  take) masked whole.
- ``redact(text, known=...)``: the net for text others wrote (a driver's error, a log
  record), and for the URLs a command was given (``urls_given``), found verbatim.
"""

from evaluation.redact._argv import (
    URL_OPTIONS,
    URL_VARIABLES,
    gives_a_key,
    redact_argv,
    secret_values,
    urls_given,
)
from evaluation.redact._names import MASK, is_secret_name
from evaluation.redact._text import one_line, redact, redact_exception, redact_values
from evaluation.redact._url import PASSWORD_NOTE, redact_url

__all__ = [
    "MASK",
    "PASSWORD_NOTE",
    "URL_OPTIONS",
    "URL_VARIABLES",
    "gives_a_key",
    "is_secret_name",
    "one_line",
    "redact",
    "redact_argv",
    "redact_exception",
    "redact_url",
    "redact_values",
    "secret_values",
    "urls_given",
]
