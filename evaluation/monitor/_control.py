"""Starting and cancelling runs from the monitor page: what the page needs of whoever
talks to Prefect (``RunControl``, given to the app by flows/: evaluation/ knows no
Prefect), what the page says of a run it started (``started_words``) and how its writes
are guarded.

A write is a form POST that must come from a browser holding the server's key (the
cookie the link `evalflow view` prints sets: another local user has neither), carry the
page's CSRF token (a secret made per server and compared in constant time), name an
allowed host (the app's Host check) and come from the page's own origin (``Origin``,
else ``Referer``, equal to ``http://HOST``): another web page open in the same browser
can neither forge nor replay it.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from evaluation.errors import EvalError
from evaluation.spec import experiment_name_problem
from evaluation.view.same_origin import foreign_origin, new_token, token_matches

LEVELS = ("smoke", "subset", "full")
DEPLOYMENT = re.compile(r"^[^/\s][^/]*/[^/]*[^/\s]$")  # "flow/deployment", as Prefect names it
MAX_FIELD = 1000
#: The one flow the Start form starts: its parameters are the form's fields.
EVALUATE_FLOW = "evaluate"


class ControlRefused(EvalError):
    """A start or cancel that cannot be done; ``status`` is the HTTP status the page
    answers with (400 bad input, 404 no such deployment or run, 409 not now, 503 no
    Prefect server)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StartedRun:
    flow_run_id: str
    name: str
    deployment: str


@dataclass(frozen=True)
class FlowRunState:
    """Where a flow run stands on its Prefect server: the state's type (``SCHEDULED``,
    ``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CRASHED``, ``CANCELLING``,
    ``CANCELLED``, ``PAUSED``), its name (``Late``, ``Failed`` ...) and its message."""

    type: str
    name: str
    message: str = ""


#: The longest state message the page shows (a traceback's last line is enough).
MAX_MESSAGE = 500
ENDED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def started_words(name: str, state: FlowRunState | None) -> str:
    """The line under "Started flow run NAME" on the page a start redirected to: what
    its flow run does now, and, once it failed (a spec path the worker cannot read ends
    it before it claims its experiment, so no section below ever lists it), why."""
    if state is None:
        return f"Started flow run {name}: its state cannot be read from the Prefect server now."
    message = " ".join(state.message.split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 1] + "…"
    if state.type in ("FAILED", "CRASHED"):
        return f"Flow run {name} ended {state.name}: {message or 'no reason given'}"
    if state.type in ("CANCELLED", "CANCELLING"):
        return f"Flow run {name} {state.name.lower()}{': ' + message if message else '.'}"
    if state.type == "COMPLETED":
        return f"Flow run {name} completed: its experiment is under Recent runs."
    if state.type == "SCHEDULED" and state.name == "Late":
        return (
            f"Flow run {name} is late: no worker has picked it up (is evalflow serve, or a "
            "worker of the deployment's pool, running?)"
        )
    if state.type == "SCHEDULED":
        return f"Started flow run {name}: waiting for a worker to pick it up."
    return (
        f"Started flow run {name} ({state.name}): it appears below once it claims its experiment."
    )


class RunControl(Protocol):
    """Starts a deployment's flow run and cancels one (raises ``ControlRefused``);
    ``state`` reads where a flow run stands (what the page a start redirected to says of
    it); ``knows`` says whether a flow run is on its server (the Cancel button's
    condition)."""

    def start(self, deployment: str, parameters: Mapping[str, object]) -> StartedRun: ...
    def cancel(self, flow_run_id: str) -> str: ...
    def state(self, flow_run_id: str) -> FlowRunState | None:
        """The flow run's state (None if the server does not answer or knows no such
        run)."""
        ...

    def deployments(self) -> list[str] | None:
        """The evaluate flow's deployments registered on the server, ``FLOW/NAME``
        (None if it does not answer): the form's deployment is one of them."""
        ...

    def knows(self, flow_run_id: str) -> bool:
        """Whether the flow run is on this control's Prefect server (False if it
        does not answer)."""
        ...


@dataclass(frozen=True)
class StartRequest:
    deployment: str
    parameters: dict[str, object]


def start_request(form: Mapping[str, str]) -> StartRequest:
    """The deployment and its parameters from the start form, or ``ControlRefused``
    (400) naming the field that is wrong."""
    deployment = _field(form, "deployment", required=True)
    if not DEPLOYMENT.match(deployment):
        raise ControlRefused(
            400,
            f"deployment: expected FLOW/DEPLOYMENT (e.g. evaluate/on-demand), got {deployment!r}",
        )
    if deployment.split("/", 1)[0] != EVALUATE_FLOW:
        raise ControlRefused(
            400,
            f"deployment: expected a deployment of the {EVALUATE_FLOW!r} flow (the form passes "
            f"its parameters), got {deployment!r}",
        )
    parameters: dict[str, object] = {"spec_path": _field(form, "spec_path", required=True)}
    level = _field(form, "level") or "smoke"
    if level not in LEVELS:
        raise ControlRefused(400, f"level: expected one of {', '.join(LEVELS)}, got {level!r}")
    parameters["level"] = level
    experiment = _field(form, "experiment")
    if experiment:
        problem = experiment_name_problem(experiment)
        if problem:
            raise ControlRefused(400, f"experiment: {problem}")
        parameters["experiment"] = experiment
    return StartRequest(deployment, parameters)


def _field(form: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = str(form.get(name, "")).strip()
    if required and not value:
        raise ControlRefused(400, f"{name}: required, got nothing")
    if len(value) > MAX_FIELD or any(ord(ch) < 32 for ch in value):
        raise ControlRefused(400, f"{name}: expected one line of at most {MAX_FIELD} characters")
    return value


@dataclass(frozen=True)
class WriteGuard:
    """The CSRF token of one server, and the check every write passes."""

    token: str

    @classmethod
    def new(cls) -> WriteGuard:
        return cls(new_token())

    def seal(self, text: str) -> str:
        """A signature of ``text`` by this server: the page shows a "started" notice
        only for a flow run it started itself (``/?started=`` is any link's to make)."""
        return hmac.new(self.token.encode(), text.encode(), "sha256").hexdigest()[:32]

    def sealed(self, text: str, signature: str) -> bool:
        return hmac.compare_digest(self.seal(text), signature)

    def check(self, headers: Mapping[str, str], form: Mapping[str, str], *, keyed: bool) -> None:
        """``ControlRefused`` (403) unless the request comes from this server's page, in
        a browser that holds the server's key (``keyed``: another local user's does not)."""
        if not keyed:
            raise ControlRefused(
                403,
                "refused: this browser does not hold the server's key: open the link "
                "`evalflow view` printed when it started, then retry",
            )
        if (foreign := foreign_origin(headers)) is not None:
            raise ControlRefused(403, foreign)
        if not token_matches(form.get("csrf"), self.token):
            raise ControlRefused(
                403, "refused: the form's token is missing or stale: reload the page and retry"
            )
