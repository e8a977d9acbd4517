"""The monitor's pages, mounted on the view app (``add_monitor``): the home page over
the whole database (``/``), a series' trends (``/series/NAME``), a run's live page
(``/e/NAME/live``), their light JSON
(``/api/live``, ``/api/runs/NAME``: an ETag per answer, so a page polling an unchanged
state gets an empty 304; ``/api/started/ID``: where a flow run the page started stands,
asked of Prefect by that page alone) and the guarded writes that start a deployment's run and
cancel one (``/actions/start``, ``/actions/cancel``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.engine import Engine

from evaluation.compare._leaderboard import figure_name
from evaluation.errors import StorageError
from evaluation.monitor import _facts
from evaluation.monitor._control import (
    ENDED,
    LEVELS,
    ControlRefused,
    RunControl,
    WriteGuard,
    start_request,
    started_words,
)
from evaluation.monitor._home import (
    HomeCache,
    home,
    running_runs,
)
from evaluation.monitor._live import STAGES
from evaluation.monitor._series_page import reference_level, stream_chart
from evaluation.monitor._status import gpu_text
from evaluation.monitor._svg import line_chart, sparkline
from evaluation.run import format_duration
from evaluation.storage.db import session_scope
from evaluation.storage.runs import request_cancel
from evaluation.view.session_key import keyed, new_key
from evaluation.wording import PARTIAL_RUN, not_judged_why

POLL_S = 5.0  # how often an open page asks whether anything changed
MAX_FORM_BYTES = 16_384
DEFAULT_DEPLOYMENT = "evaluate/on-demand"

Render = Callable[..., HTMLResponse]


def add_monitor(
    app: FastAPI,
    engine: Engine,
    env: Environment,
    render: Render,
    *,
    control: RunControl | Callable[[], RunControl | None] | None = None,
    poll_s: float | None = None,
    key: str | None = None,
) -> None:
    """Add the monitor's routes to ``app`` (its templates rendered by ``render`` from
    ``env``, the view's); ``control`` starts and cancels runs (None: the page offers no
    buttons and the writes answer 503), or is a function that makes it (or None), called
    by the first monitor page: the CLI's reads Prefect's settings, which imports Prefect,
    and the experiments' own pages need none of it. Start and Cancel are offered, and
    taken, only from a browser holding the server's ``key`` (its cookie, set by the link
    `evalflow view` prints: ``evaluation.view.session_key``); None: a key of its own."""
    key = key or new_key()
    made: list[RunControl | None] = []

    def the_control() -> RunControl | None:
        if not made:  # two first requests at once both make one: either will do
            made.append(control() if callable(control) else control)
        return made[0]

    guard = WriteGuard.new()
    cache = HomeCache()
    env.globals |= {
        "sparkline": sparkline,
        "line_chart": line_chart,
        "duration": format_duration,
        "gpu": gpu_text,
        "not_judged_why": not_judged_why,  # as trends says it (`evaluation.wording`)
        "partial_run": PARTIAL_RUN,
        "figure_name": figure_name,  # "corpus chrf", as show and the verdicts name it
    }
    page_context = {
        "poll_ms": int((POLL_S if poll_s is None else poll_s) * 1000),
        "levels": LEVELS,
        "default_deployment": DEFAULT_DEPLOYMENT,
        "stages": STAGES,
    }

    def writer(request: Request) -> dict[str, Any]:
        """Whether this browser may write (holds the key), and then the form's token."""
        holds = keyed(request, key)
        return {"keyed": holds, "csrf": guard.token if holds else ""}

    @app.get("/", response_class=HTMLResponse)
    def monitor_home(request: Request) -> HTMLResponse:
        series = request.query_params.get("series", "").strip() or None
        with session_scope(engine) as session:
            shown = home(session, series, cache)
        if series and shown.across is None:
            raise HTTPException(
                404,
                f"series: no run of series {series!r} is stored; expected one of "
                f"{', '.join(shown.series_names) or 'none (nothing has run yet)'}",
            )
        started = request.query_params.get("started", "")
        run_id = request.query_params.get("run", "")
        if not guard.sealed(_started_key(started, run_id), request.query_params.get("seal", "")):
            started = run_id = ""  # not a run this server started: shown as nothing
        return render(
            "monitor.html",
            home=shown,
            started=started,
            started_state_url=(
                f"/api/started/{quote(run_id, safe='')}?name={quote(started, safe='')}"
                f"&seal={guard.seal(_started_key(started, run_id))}"
                if run_id
                else ""
            ),
            can_control=the_control() is not None,
            **page_context,
            **writer(request),
        )

    # path parameters read from the request, as the view's pages read theirs (a typed
    # argument is a pydantic field made as the route is added: evaluation.view.app)
    @app.get("/series/{name}", response_class=HTMLResponse)
    def series_page(request: Request) -> HTMLResponse:
        from evaluation.itembank import BankEstimates
        from evaluation.series import (
            SeriesNotFound,
            baseline_words,
            evidence_figures,
            figure,
            list_series,
            runs_of,
            since_words,
            stream_state,
            watch_and_keep,
        )

        name = request.path_params["name"]
        with session_scope(engine) as session:
            try:
                watch = watch_and_keep(session, name, banks=BankEstimates(session))
            except SeriesNotFound:
                known = ", ".join(s.name for s in list_series(session)) or "none yet"
                raise HTTPException(
                    404, f"series: no run of series {name!r} is stored; expected one of {known}"
                ) from None
        return render(
            "series.html",
            watch=watch,
            chart=stream_chart,
            reference_of=reference_level,
            state_of=lambda s: stream_state(s, watch.settings.learning),  # as trends says it
            figure=figure,
            evidence=evidence_figures,
            runs_of=runs_of,  # as `evalflow series` and `trends` count them
            baseline_words=baseline_words,  # and name the accepted baseline
            since_of=since_words,  # where each stream's comparison starts, as trends says
            **page_context,
            **writer(request),
        )

    @app.get("/api/live")
    def live(request: Request) -> Response:
        with session_scope(engine) as session:
            payload = {"running": running_runs(session)}
        return _json(request, payload)

    @app.get("/api/deployments")
    def deployments(request: Request) -> Response:
        """The evaluate deployments registered on the page's Prefect server, asked once
        by a page with the Start form: its deployment field is made one of them
        (``evalflow serve`` registers evaluate/on-demand-served, not the default)."""
        control = the_control()
        if control is None:
            raise HTTPException(404, "no Prefect server is set for this page")
        return _json(request, {"default": DEFAULT_DEPLOYMENT, "evaluate": control.deployments()})

    @app.get("/api/started/{flow_run_id}")
    def started_state(request: Request) -> Response:
        """Where a flow run this page started stands, in the words the page shows: a
        run whose flow fails before it claims its experiment (a spec path the worker
        cannot read) is listed in no section, so the notice says it failed, and why."""
        run_id = request.path_params["flow_run_id"]
        name = request.query_params.get("name", "")
        if not guard.sealed(_started_key(name, run_id), request.query_params.get("seal", "")):
            raise HTTPException(404, "not a flow run this page started")
        control = the_control()
        state = control.state(run_id) if control is not None else None
        payload = {
            "state": state.type if state is not None else None,
            "ended": state is not None and state.type in ENDED,
            "words": started_words(name, state),
        }
        return _json(request, payload)

    @app.get("/e/{experiment}/live", response_class=HTMLResponse)
    def run_page(request: Request) -> HTMLResponse:
        with session_scope(engine) as session:
            facts = _run_facts(session, request.path_params["experiment"])
            board = unscored = None
            if facts["status"] not in ("running", "starting"):
                from evaluation.view.stored import summary_page

                board = summary_page(session, facts["name"])
                if board.primary is None:  # nothing scored: what `show` says, no ranking
                    unscored = _no_results(session, facts["name"])
        flow_run_id = (facts["live"] or {}).get("flow_run_id")
        # only a run on the server this page controls (not one on a temporary server)
        control = the_control()
        can_cancel = bool(control is not None and flow_run_id and control.knows(flow_run_id))
        return render(
            "run.html",
            run=facts,
            board=board,
            no_results=unscored,
            experiment=None,
            can_cancel=can_cancel,
            can_control=control is not None,
            **page_context,
            **writer(request),
        )

    @app.get("/api/runs/{experiment}")
    def run_json(request: Request) -> Response:
        with session_scope(engine) as session:
            facts = _run_facts(session, request.path_params["experiment"])
        return _json(request, facts)

    async def _form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the form is {len(body)} bytes; at most {MAX_FORM_BYTES}")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise HTTPException(400, f"the form is not URL-encoded UTF-8 text: {exc}") from exc
        names = Counter(name for name, _ in pairs)
        if twice := [name for name, n in names.items() if n > 1]:  # the last one won, unsaid
            raise HTTPException(400, f"{twice[0]}: expected once, given {names[twice[0]]} times")
        return dict(pairs)

    def _controlled(request: Request, form: dict[str, str]) -> RunControl:
        try:
            guard.check(request.headers, form, keyed=keyed(request, key))
        except ControlRefused as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        control = the_control()
        if control is None:
            raise HTTPException(
                503,
                "no Prefect server is set for this page: serve it with PREFECT_API_URL set "
                "(evalflow view) to start and cancel runs from here",
            )
        return control

    @app.post("/actions/start")
    async def start(request: Request) -> Response:
        form = await _form(request)
        runner = _controlled(request, form)
        try:
            wanted = start_request(form)
            started = runner.start(wanted.deployment, wanted.parameters)
        except ControlRefused as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        key = _started_key(started.name, started.flow_run_id)
        return RedirectResponse(
            f"/?started={quote(started.name, safe='')}&run={quote(started.flow_run_id, safe='')}"
            f"&seal={guard.seal(key)}#running",
            status_code=303,
        )

    @app.post("/actions/cancel")
    async def cancel(request: Request) -> Response:
        form = await _form(request)
        runner = _controlled(request, form)
        name = form.get("experiment", "").strip()
        if not name:
            raise HTTPException(400, "experiment: required, got nothing")
        with session_scope(engine) as session:
            facts = _run_facts(session, name)
        if facts["status"] != "running":
            raise HTTPException(409, f"experiment {name!r} is {facts['status']}, not running")
        flow_run_id = (facts["live"] or {}).get("flow_run_id")
        if not flow_run_id:
            raise HTTPException(
                409,
                f"experiment {name!r} runs outside Prefect's API (no flow run recorded): "
                "stop it where it runs (Ctrl+C)",
            )
        try:
            runner.cancel(flow_run_id)
        except ControlRefused as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        # its process ends (Prefect's runner polls) before the flow's hook says cancelled
        with session_scope(engine) as session:
            request_cancel(session, facts["name"], flow_run_id)
        return RedirectResponse(f"/e/{quote(facts['name'], safe='')}/live", status_code=303)


def _started_key(name: str, flow_run_id: str) -> str:
    """What the seal of a started run's notice signs: its name and its flow run's id."""
    return f"{name}\n{flow_run_id}"


def _run_facts(session, experiment: str) -> dict[str, Any]:
    """``_facts.run_facts`` for a page: an unknown experiment is a 404."""
    try:
        return _facts.run_facts(session, experiment)
    except StorageError as exc:
        raise HTTPException(404, str(exc)) from exc


def _no_results(session, experiment: str) -> str:
    """What `show` and the summary page say of a run that ended with nothing scored
    (``no_results_line``): its generations, none scored, its status, how to resume."""
    from evaluation.storage.no_results import no_results_line
    from evaluation.storage.repository import get_experiment
    from evaluation.storage.runs import experiment_status

    row = get_experiment(session, experiment)
    return no_results_line(session, row, experiment_status(session, row))


def _json(request: Request, payload: Any) -> Response:
    """``payload`` as JSON with its ETag; 304 with no body where the page has it."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    tag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
