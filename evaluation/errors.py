"""Every error evalflow raises on purpose.

    EvalError
    ├── TryLater              refused for now, nothing to fix: the same command may work
    │                         later (exit 75): HostBusy, storage.runs.ExperimentBusy,
    │                         DatabaseBusy (also a StorageError)
    │   └── HostsOverloaded   a run stopped part-way: a host answered 503 to every try
    ├── SuiteError            a suite file is invalid (file, line, field)
    ├── SpecError             a sweep spec is invalid (file, line, column, field)
    ├── MetricError           a metric is unknown or cannot score an output
    │   └── ScorerFailed      a user's scorer raised or returned no usable value
    ├── StorageError          the results database refused an operation
    └── BackendError          a model server failed a request (host, model)
        ├── BackendUnavailable    connect error, dropped connection            (retryable)
        │   └── BackendTimeout    connected, no answer in time                 (retryable)
        │       └── HostBusy      a command refused: its host is busy (silent, or 503), not down
        ├── BackendOverloaded     503 "server busy"                            (retryable)
        ├── BackendServerError    other 5xx, or an error line mid-stream       (retryable)
        └── BackendRejected       4xx: the request itself is wrong             (not retryable)
            ├── ModelNotFound     the host does not have the model
            ├── PromptTooLong     the prompt does not fit the server's context window
            └── KeyRefused        401/403: the host wants a key, or refused the one sent

Defined beside the code that raises them, also under EvalError:
selection.TrainingDataError, selection.UnknownRecommendation (the selector) and
tasks.adapters.slot_errors.SlotUnavailable (a host's Prefect concurrency limit).

Warnings: ``InputWarning`` (a UserWarning) is something in the user's input that does not
stop the command (``evaluation.suites.ForgeableTestWarning``); the command line shows each
once, as one ``warning:`` line.

Backends translate transport errors into this tree once, at their boundary
(``raise ... from exc``); everything above decides on ``BackendError.retryable`` and
never matches message strings. A ``BackendError``'s message is made storable (a
server's words decoded from ``"\\ud800"``: ``storable_text.storable``), as it is stored
with the generation it failed. ``BackendError.outcome`` names what happened to the
attempt, one of ``OUTCOMES`` (what each attempt's record stores).
"""

from __future__ import annotations

import re

from evaluation.storable_text import storable


class EvalError(Exception):
    """Base of every error evalflow raises on purpose."""


class InputWarning(UserWarning):
    """Something in the user's input that does not stop the command; its message is one
    line that says where (file:line, field) and why."""


class ReadNote(UserWarning):
    """How a command that reads results read something it could not read as usual (a
    user's scorer whose code does not import, read as its stored declaration says): one
    line, said once as a `note:`."""


class TryLater(EvalError):
    """A command refused for now, with nothing in its input to fix: its host is busy, its
    experiment is being run by another process, or its results database stayed locked by
    another's write. The same command may work later, so
    it exits 75 (``EX_TEMPFAIL``, sysexits.h: "try again later"), not bad input's 2,
    and its line says when to try again (docs/bad-input.md#exit-codes)."""


class HostsOverloaded(TryLater):
    """A run stopped part-way because a host it needs answered 503 (overloaded) to every
    try of a generation, and no other host serving that model took its work: what was
    generated is stored, the run is interrupted, and the same command resumes it once
    the server is free. The message says which host and what it answered."""


class SuiteError(EvalError):
    """A suite file (or its header) is invalid."""

    def __init__(
        self, message: str, *, path: str, line: int | None = None, field: str | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = path if line is None else f"{path}:{line}"
        prefix = f"{where}: field '{field}'" if field else where
        super().__init__(f"{prefix}: {message}")


class SpecError(EvalError):
    """A sweep spec is invalid; ``field`` is the dotted path of the offending value,
    ``line`` and ``column`` (1-based) where it is in the file, when known."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.field = field
        self.path = path
        self.line = line
        self.column = column
        at = "" if line is None else f":{line}" + ("" if column is None else f":{column}")
        where = f"{path}{at}: " if path else ""
        named = "" if field == "<document>" else f"field '{field}': "  # the whole file
        super().__init__(f"{where}{named}{message}")


class MetricError(EvalError):
    """A metric is unknown, or cannot score what it was given."""


class ScorerNotHere(MetricError):
    """A user's scorer whose code does not load here: its module does not import or
    lacks the function, or its entry point fails to load."""


class ScorerFailed(MetricError):
    """A user's scorer raised, or returned what its score type does not allow: that
    value is NaN, with this error's message as the reason kept beside it."""


class StorageError(EvalError):
    """The results database refused an operation."""


class DatabaseBusy(TryLater, StorageError):
    """The results database stayed locked by another process's write past the busy
    timeout (SQLite: one writer at a time). Nothing to fix and nothing lost: the same
    command, run again, waits anew (exit 75); a run ended so is ``interrupted``, not
    ``failed``, and its rerun resumes it."""


OUTCOMES = (
    "unreachable",  # no connection: refused, no route, or the connect timed out
    "timeout",  # connected, no answer in time
    "reset",  # connected, then the connection was reset or closed without a whole answer
    "overloaded",  # 503
    "server error",  # another 5xx, or an error mid-stream
    "rejected",  # 4xx: the request itself is wrong
)


class BackendError(EvalError):
    """A model server failed a request."""

    retryable: bool = False
    outcome: str = "server error"

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        model: str = "",
        status_code: int | None = None,
    ) -> None:
        self.host = host
        self.model = model
        self.status_code = status_code
        super().__init__(storable(message))  # a server's words may hold "\\ud800"


class BackendUnavailable(BackendError):
    """Could not reach the host, it timed out, or it dropped the connection."""

    retryable = True
    outcome = "unreachable"  # set per error where the transport says more

    @property
    def connected(self) -> bool:
        """Whether something at the host's address accepted the connection."""
        return self.outcome != "unreachable"


class BackendTimeout(BackendUnavailable):
    """The host took the request and did not answer (or send it) in time: slow or hung,
    where ``BackendUnavailable`` is gone; its own class, so a stored failure says so
    (``evalflow_generations_failed{reason="BackendTimeout"}``)."""

    outcome = "timeout"


class HostBusy(BackendTimeout, TryLater):
    """A command refused to start because its host is there but busy: it took the
    connection and kept silent, or answered 503 (overloaded). Not the user's input to
    fix: the same command may work later (:class:`TryLater`, exit 75)."""


class BackendOverloaded(BackendError):
    """The host answered 503 (Ollama: "server busy, please try again")."""

    retryable = True
    outcome = "overloaded"


class BackendServerError(BackendError):
    """A 5xx other than 503, or an ``{"error": ...}`` line in the middle of a stream."""

    retryable = True


class BackendRejected(BackendError):
    """A 4xx: the request itself is wrong; retrying cannot help."""

    retryable = False
    outcome = "rejected"


class ModelNotFound(BackendRejected):
    """The host does not serve the model; ``available`` lists what it has; ``detail`` is
    what is missing and the fix without the host's name, URL or models (for a line that
    already names them: doctor's; default: the message)."""

    def __init__(
        self, message: str, *, available: list[str] | None = None, detail: str = "", **kw
    ) -> None:
        self.available = list(available or [])
        self.detail = detail or message
        super().__init__(message, **kw)


class NotOllamaAPI(BackendRejected):
    """A host set as Ollama answers 404 for Ollama's routes. ``openai_compatible``: it
    answers ``/v1/models``; ``detail`` is the message without how to fix it (the fix
    depends on where the kind was set: a spec's host, or the judge's ``--kind``)."""

    def __init__(self, message: str, *, detail: str, openai_compatible: bool, **kw) -> None:
        self.detail = detail
        self.openai_compatible = openai_compatible
        super().__init__(message, **kw)


class NoAPIAtURL(BackendRejected):
    """The host's URL answers HTTP, but 404 for the API's own routes, Ollama's and the
    OpenAI one's alike: another web server on that port (a web UI, ``evalflow view``), or
    a URL pasted with an endpoint's path. The URL is what is wrong, not the kind."""


class KeyRefused(BackendRejected):
    """The host answered 401 or 403: it wants a key and none was sent, or it refused the
    one sent (its ``api_key_env``, or the password of its URL). The message names the
    host and where the key came from, never the key."""


class PromptTooLong(BackendRejected):
    """The prompt does not fit the server's context window (OpenAI error code
    ``context_length_exceeded``); the same request can never succeed."""


_CLASS_PREFIX = re.compile(r"^[A-Z][A-Za-z]+: ")  # "BackendUnavailable: " of a stored error


def without_class_name(error: str) -> str:
    """A stored error's words for the user, less the class name it starts with
    ("BackendUnavailable: every host serving 'b' is down" -> "every host serving ...")."""
    return _CLASS_PREFIX.sub("", error)
