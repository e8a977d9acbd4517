"""The three deployments: names, schedules, UI-editable parameters, worker pull steps,
deployments/prefect.yaml describing the same thing, and served and worker deployments
side by side on one server."""

from __future__ import annotations

import asyncio
import re
import selectors
import uuid
from types import SimpleNamespace

import pytest
import yaml

from deployments.serve import (
    ENTRYPOINTS,
    NIGHTLY_CRON,
    RETRAIN_CRON,
    build_deployments,
    check_server,
)
from evaluation.errors import EvalError
from flows.cli import main
from flows.evaluate import evaluate
from tests.conftest import REPO
from tests.flows.conftest import UNHURRIED_S

DEMO = REPO / "benchmarks/sweeps/demo-simulated.yaml"


def by_name(deployments):
    return {f"{d.flow_name}/{d.name}": d for d in deployments}


def test_served_deployments_and_their_schedules():
    found = by_name(build_deployments(nightly_spec=DEMO, timezone="Europe/Paris"))
    assert set(found) == {
        "evaluate/on-demand-served",
        "nightly-regression/nightly-served",
        "retrain-selector/weekly-served",
    }
    on_demand, nightly, weekly = (found[k] for k in sorted(found))
    assert on_demand.schedules in (None, [])
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        (NIGHTLY_CRON, "Europe/Paris")
    ]
    assert [s.schedule.cron for s in weekly.schedules] == [RETRAIN_CRON]
    assert nightly.parameters == {"spec_path": str(DEMO.resolve())}
    # the parameters a user edits in the UI are in the deployment's schema
    schema = nightly._parameter_openapi_schema.model_dump()["properties"]
    assert {"spec_path", "baseline", "accept_baseline", "min_success_rate"} <= set(schema)
    assert "spec_path" in on_demand._parameter_openapi_schema.model_dump()["required"]


def test_worker_deployments_start_in_the_checkout():
    found = by_name(
        build_deployments(
            nightly_spec=DEMO, work_pool_name="gpu-pool", source=REPO, database="sqlite:///x.db"
        )
    )
    for name, deployment in found.items():
        assert deployment.work_pool_name == "gpu-pool"
        assert deployment.entrypoint == ENTRYPOINTS[name.split("/")[0]]
        step = deployment.storage.to_pull_step()
        assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        assert deployment.parameters["database"] == "sqlite:///x.db"


def test_prefect_yaml_matches_the_python_definitions():
    config = yaml.safe_load((REPO / "deployments/prefect.yaml").read_text())
    (pull,) = config["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ $EVALFLOW_REPO }}"
    )
    entrypoints = {d["name"]: d["entrypoint"] for d in config["deployments"]}
    assert entrypoints == {
        "on-demand": ENTRYPOINTS["evaluate"],
        "nightly": ENTRYPOINTS["nightly-regression"],
        "weekly": ENTRYPOINTS["retrain-selector"],
    }
    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in config["deployments"]}
    assert crons == {"on-demand": [], "nightly": [NIGHTLY_CRON], "weekly": [RETRAIN_CRON]}
    nightly = next(d for d in config["deployments"] if d["name"] == "nightly")
    assert (REPO / nightly["parameters"]["spec_path"]).is_file()
    for path in {e.split(":")[0] for e in entrypoints.values()}:
        assert (REPO / path).is_file()


def test_serve_refuses_a_missing_nightly_spec(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # refused by the parser (flows/cli/options.py)
        main(["serve", "--nightly-spec", str(tmp_path / "nope.yaml")])
    assert info.value.code == 2
    assert "argument --nightly-spec: expected an existing file" in capsys.readouterr().err


def test_serve_passes_its_limit_to_the_runner(monkeypatch):
    import deployments.serve as module

    served = {}
    monkeypatch.setattr(module, "check_server", lambda deployments: _no_warnings())
    monkeypatch.setattr(module, "hand_over_missed_nights", lambda *_: None)  # its own test
    monkeypatch.setattr(
        module, "serve", lambda *d, limit, pause_on_shutdown: served.update(n=len(d), limit=limit)
    )
    module.serve_all(print, limit=1, nightly_spec=DEMO)
    assert served == {"n": 3, "limit": 1}  # Prefect's serve() ignores its process limit


@pytest.mark.parametrize("api_url", ["", "http://127.0.0.1:4200/api"])
def test_serve_pauses_schedules_on_shutdown_only_on_a_server_that_outlives_it(monkeypatch, api_url):
    """Without PREFECT_API_URL the schedules live on Prefect's temporary server, gone with
    the serving process: pausing them on SIGTERM hung, retrying that server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import deployments.serve as module

    served = {}
    monkeypatch.setattr(module, "check_server", lambda deployments: _no_warnings())
    monkeypatch.setattr(module, "hand_over_missed_nights", lambda *_: None)  # its own test
    monkeypatch.setattr(
        module, "serve", lambda *d, limit, pause_on_shutdown: served.update(pause=pause_on_shutdown)
    )
    monkeypatch.setattr(module, "pause_schedules", lambda d, warn, **_: served.update(ours=True))
    warned = []
    with temporary_settings({PREFECT_API_URL: api_url or None}):
        module.serve_all(warned.append, nightly_spec=DEMO)
    assert served == {"pause": False, **({"ours": True} if api_url else {})}
    # without a server the schedules never fire: said once, before serving
    assert [w for w in warned if "runs no schedules" in w] == ([] if api_url else warned)
    assert len(warned) == (0 if api_url else 1)


def test_serve_stopped_after_its_server_went_away_says_the_schedules_stay_active(monkeypatch):
    """`kill S; kill P` (a shutdown): the runner's pause on SIGTERM retried the gone server
    for ~65 s, then printed 75 lines of tracebacks. The pause is bounded and says so in one
    line; serving's exit (0 on SIGTERM) goes on."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    import deployments.serve as module

    def stopped_by_sigterm(*_, limit, pause_on_shutdown) -> None:  # Prefect's runner's exit
        raise SystemExit(0)

    monkeypatch.setattr(module, "check_server", lambda deployments: _no_warnings())
    monkeypatch.setattr(module, "hand_over_missed_nights", lambda *_: None)  # its own test
    monkeypatch.setattr(module, "serve", stopped_by_sigterm)
    monkeypatch.setattr(module, "PAUSE_TIMEOUT_S", 0.5)
    warned: list[str] = []
    with socket.socket() as silent:  # a server that takes connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with temporary_settings({PREFECT_API_URL: url}), pytest.raises(SystemExit) as stopped:
            module.serve_all(warned.append, nightly_spec=DEMO)
    assert stopped.value.code == 0
    assert len(warned) == 1
    assert warned[0].startswith(
        "could not pause the served deployments (no answer from the Prefect server within 0.5 s)"
    )
    assert "they stay active on the server" in warned[0]


def test_a_cancelled_tasks_callback_error_is_not_printed_while_serving(monkeypatch, caplog):
    """A SIGTERM while a flow run went on printed asyncio's "Exception in callback ..."
    with 40 lines of CancelledError traceback (Prefect's control channel, cancelled by
    the runner's exit from its signal handler). Dropped while serving; another error of
    asyncio's still shows."""
    import asyncio
    import logging

    import deployments.serve as module

    def serving(*_, limit, pause_on_shutdown) -> None:
        log = logging.getLogger("asyncio")
        for error in (asyncio.CancelledError(), ValueError("a real one")):
            log.error("Exception in callback cb()", exc_info=(type(error), error, None))

    monkeypatch.setattr(module, "check_server", lambda deployments: _no_warnings())
    monkeypatch.setattr(module, "hand_over_missed_nights", lambda *_: None)  # its own test
    monkeypatch.setattr(module, "serve", serving)
    monkeypatch.setattr(module, "_pause_on_shutdown", lambda: True)
    monkeypatch.setattr(module, "pause_schedules", lambda *_, **__: None)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        module.serve_all(print, nightly_spec=DEMO)
    assert [r.exc_info[0] for r in caplog.records if r.name == "asyncio"] == [ValueError]
    assert logging.getLogger("asyncio").filters == []  # only while serving


async def _no_warnings() -> list[str]:
    return []


def test_served_and_worker_deployments_have_distinct_names():
    served = {d.name for d in build_deployments(nightly_spec=DEMO)}
    workers = {d.name for d in build_deployments(nightly_spec=DEMO, work_pool_name="gpu-pool")}
    assert served == {"on-demand-served", "nightly-served", "weekly-served"}
    assert workers == {"on-demand", "nightly", "weekly"}


@pytest.mark.usefixtures("prefect_harness")
def test_deploy_and_serve_coexist_and_refuse_to_rewrite_the_other_kind(capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async def setup():
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name="coexist", type="process"))

    asyncio.run(setup())
    assert main(["deploy", "--pool", "coexist"]) == 0
    workers = build_deployments(nightly_spec=DEMO, work_pool_name="coexist")
    served = build_deployments(nightly_spec=DEMO)
    # serving beside the worker deployments: no clash, but both nightly schedules are on
    warnings = asyncio.run(check_server(served))
    assert warnings == [
        "nightly-regression/nightly (on work pool 'coexist') has an active schedule too: "
        "pause one of them in the UI, or each run happens twice",
        "retrain-selector/weekly (on work pool 'coexist') has an active schedule too: "
        "pause one of them in the UI, or each run happens twice",
    ]
    for deployment in served:
        deployment.apply()

    async def read(name):
        async with get_client() as client:
            return await client.read_deployment_by_name(name)

    worker = asyncio.run(read("evaluate/on-demand"))
    assert worker.work_pool_name == "coexist"
    assert worker.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]
    assert asyncio.run(read("evaluate/on-demand-served")).work_pool_name is None

    # a served deployment left under a worker name (an older `evalflow serve`) is refused
    async def delete(name):
        async with get_client() as client:
            await client.delete_deployment((await client.read_deployment_by_name(name)).id)

    asyncio.run(delete("evaluate/on-demand"))
    evaluate.to_deployment(name="on-demand").apply()
    capsys.readouterr()
    assert main(["deploy", "--pool", "coexist"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: evaluate/on-demand is already registered served by a process")
    assert "prefect deployment delete evaluate/on-demand" in err
    # and a worker deployment under a served name is not taken off its pool by `serve`
    stray = workers[0]
    stray.name = "on-demand-served"
    stray.apply()
    with pytest.raises(EvalError, match="on-demand-served is already registered on work pool"):
        asyncio.run(check_server(served))


@pytest.mark.usefixtures("prefect_harness", "unhurried_stop")
def test_stopping_serve_ends_crashed_the_flow_runs_it_took_and_names_them():
    """Newcomers' M4 and M5: Ctrl-C on serve mid-nightly left the nightly and its evaluate
    subflow Running on the server for ever (their process ended with serve, without a
    word); a SIGTERM as a night fell due left that run Pending for ever. As serving stops,
    each flow run of its deployments that entered such a state since it began is ended
    Crashed, with its subflows, and named; an older one (another serve's, before) and an
    ended one are left as they are. (How long the stop waits: on the loop's clock,
    test_serves_stop_waits_for_a_server_while_it_answers.)"""
    from datetime import UTC, datetime

    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Pending, Running

    import deployments.serve as module

    @task
    def step() -> None: ...

    @flow(name="evaluate")
    def subflow() -> None: ...

    served = build_deployments(nightly_spec=DEMO)
    ids = {f"{d.flow_name}/{d.name}": d.apply() for d in served}

    async def setup():
        async with get_client() as client:

            async def run(name, *states):
                made = await client.create_flow_run_from_deployment(
                    ids[name], parameters={"spec_path": DEMO}
                )
                for state in states:
                    await client.set_flow_run_state(made.id, state, force=True)
                return made

            older = await run("evaluate/on-demand-served", Pending(), Running())
            since = datetime.now(UTC)
            nightly = await run("nightly-regression/nightly-served", Pending(), Running())
            task_run = await client.create_task_run(step, nightly.id, dynamic_key="0")
            child = await client.create_flow_run(subflow, parent_task_run_id=task_run.id)
            await client.set_flow_run_state(child.id, Running(), force=True)
            due = await run("nightly-regression/nightly-served", Pending())
            ended = await run("evaluate/on-demand-served", Pending(), Running(), Completed())
            return since, {
                "older": older,
                "nightly": nightly,
                "child": child,
                "due": due,
                "ended": ended,
            }

    since, runs = asyncio.run(setup())
    warned: list[str] = []
    module.pause_schedules(served, warned.append, serving_since=since)

    async def read():
        async with get_client() as client:
            states = {k: (await client.read_flow_run(r.id)).state for k, r in runs.items()}
            paused = [(await client.read_deployment(i)).paused for i in ids.values()]
            return states, paused

    states, paused = asyncio.run(read())
    assert not [line for line in warned if "could not" in line]  # else the reason is here
    assert {k: s.type.value for k, s in states.items()} == {
        "older": "RUNNING",
        "nightly": "CRASHED",
        "child": "CRASHED",
        "due": "CRASHED",
        "ended": "COMPLETED",
    }
    assert states["nightly"].message == module.LEFT_RUNNING
    assert states["due"].message == module.LEFT_PENDING
    assert paused == [True, True, True]
    assert sorted(warned) == sorted(
        [
            f"flow run {runs['nightly'].name!r} ran: marked Crashed on the Prefect server "
            "(evalflow status names the command that resumes its experiment)",
            f"flow run {runs['due'].name!r} did not run (serve stopped as it took it): "
            "marked Crashed on the Prefect server",
        ]
    )


@pytest.mark.usefixtures("prefect_harness", "unhurried_stop")
def test_a_busy_servers_answers_are_sent_again_soon_enough_to_pause_every_deployment(
    monkeypatch,
):
    """Newcomers' W5: a Prefect server on SQLite under load answers a write 503 at once
    ("database is locked"), and Prefect's client sent it again 2 s later, then 4 s: the
    5 s of stopping `serve` ran out with a deployment left active. Every pause answered
    busy twice is now paused, with no line; the waits are counted, not timed."""
    import httpx
    from prefect.client.orchestration import get_client

    import deployments.serve as module
    from tasks.adapters import prefect_client
    from tasks.adapters.prefect_client import busy_waits

    served = build_deployments(nightly_spec=DEMO)
    ids = {f"{d.flow_name}/{d.name}": d.apply() for d in served}

    async def resume():
        async with get_client() as client:
            for deployment_id in ids.values():
                await client.resume_deployment(deployment_id)

    asyncio.run(resume())
    handle = httpx.AsyncHTTPTransport.handle_async_request
    answered: dict[str, int] = {}

    async def busy_twice(self, request):
        if request.method == "PATCH":
            answered[request.url.path] = answered.get(request.url.path, 0) + 1
            if answered[request.url.path] <= 2:
                return httpx.Response(503, json={"exception_message": "Service Unavailable"})
        return await handle(self, request)

    waits: list[float] = []

    def noted(jitter=None):
        for wait in busy_waits(jitter):
            waits.append(wait)
            yield wait

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", busy_twice)
    monkeypatch.setattr(prefect_client, "busy_waits", noted)
    warned: list[str] = []
    module.pause_schedules(served, warned.append)
    monkeypatch.undo()

    async def read():
        async with get_client() as client:
            return [(await client.read_deployment(i)).paused for i in ids.values()]

    assert warned == []
    assert asyncio.run(read()) == [True, True, True]
    # each answered busy twice, sent again (more on a harness busy with the others)
    assert len(answered) == 3 and min(answered.values()) >= 3
    # by evalflow's client, 0.05 s then 0.1 s later (Prefect's: 2 s, then 4 s)
    assert len(waits) >= 6 and max(waits) <= prefect_client.WAIT_CAP_S


@pytest.mark.usefixtures("prefect_harness", "unhurried_stop")
def test_a_deployment_left_active_by_a_busy_server_is_named_and_the_crash_lines_kept(
    monkeypatch,
):
    """Newcomers' W5: SIGTERM to serve on a busy server (SQLite's "database is locked"
    answered 503, retried 2 s later) said "could not pause the served schedules (no answer
    from the Prefect server)" though two of three were paused; the weekly, paused last,
    was left active, and the run marked Crashed had no line. Here the weekly's pause is
    the write the deadline cuts: the others are paused, the crash line printed, and the
    one line names the weekly alone."""
    from datetime import UTC, datetime

    from prefect.client.orchestration import PrefectClient, get_client
    from prefect.states import Pending, Running

    import deployments.serve as module

    served = build_deployments(nightly_spec=DEMO)
    ids = {f"{d.flow_name}/{d.name}": d.apply() for d in served}
    weekly = ids["retrain-selector/weekly-served"]

    async def setup():
        async with get_client() as client:
            for deployment_id in ids.values():
                await client.resume_deployment(deployment_id)
            since = datetime.now(UTC)
            made = await client.create_flow_run_from_deployment(
                ids["nightly-regression/nightly-served"], parameters={"spec_path": DEMO}
            )
            for state in (Pending(), Running()):
                await client.set_flow_run_state(made.id, state, force=True)
            return since, made

    since, nightly = asyncio.run(setup())
    pause = PrefectClient.pause_deployment

    async def busy(self, deployment_id) -> None:
        if deployment_id == weekly:  # this write waits past the deadline
            raise TimeoutError
        await pause(self, deployment_id)

    monkeypatch.setattr(PrefectClient, "pause_deployment", busy)
    warned: list[str] = []
    module.pause_schedules(served, warned.append, serving_since=since)

    async def read():
        async with get_client() as client:
            state = (await client.read_flow_run(nightly.id)).state
            return state, {n: (await client.read_deployment(i)).paused for n, i in ids.items()}

    state, paused = asyncio.run(read())
    assert state.type.value == "CRASHED"
    assert paused == {
        "evaluate/on-demand-served": True,
        "nightly-regression/nightly-served": True,
        "retrain-selector/weekly-served": False,
    }
    assert len(warned) == 2
    assert warned[0] == (
        f"flow run {nightly.name!r} ran: marked Crashed on the Prefect server "
        "(evalflow status names the command that resumes its experiment)"
    )
    # "no answer ... within N s", or "answered busy (503) for N s" where the harness,
    # its SQLite written by the other pauses at once, answered one of them busy
    assert re.fullmatch(
        r"could not pause retrain-selector/weekly-served \((no answer from the Prefect "
        rf"server within|the Prefect server answered busy \(503\) for) {UNHURRIED_S:g} s\): "
        r"it stays active on the server, whose runs then wait there, late, until `evalflow serve` "
        r"runs again; pause it in the UI unless those runs should happen then",
        warned[1],
    )


class _InstantLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to its next timer instead of waiting for it: a
    sleep of 5 s takes none, and the loop's clock says when each thing happened."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Jumping(self))

    def time(self) -> float:
        return self.now


class _Jumping(selectors.DefaultSelector):
    """A selector that moves its loop's clock by the time it was asked to wait."""

    def __init__(self, loop: _InstantLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if not ready and timeout:
            self._loop.now += timeout
        return ready


class _SlowServer:
    """The Prefect client of serve's stop (``prefect_client``), its server answering each
    call ``answer_s`` after it is sent (on the loop's clock) and never those in
    ``silent``; an answer goes through the response hooks as httpx's would. Its runs: a
    nightly Running with a Running subflow, a nightly due (Pending)."""

    def __init__(self, answer_s: float, silent: tuple[str, ...] = ()) -> None:
        from prefect.states import Pending, Running

        self.answer_s, self.silent = answer_s, silent
        self.paused: list[uuid.UUID] = []
        self.crashed: dict[str, str] = {}
        self.hooks: list = []
        self.runs = {
            name: SimpleNamespace(id=uuid.uuid4(), name=name, state=state)
            for name, state in (("nightly", Running()), ("due", Pending()), ("child", Running()))
        }

    def __call__(self, *, on_busy=None, httpx_settings=None) -> _SlowServer:
        self.hooks = (httpx_settings or {}).get("event_hooks", {}).get("response", [])
        return self

    async def __aenter__(self) -> _SlowServer:
        return self

    async def __aexit__(self, *_) -> None:
        return None

    async def _answer(self, call: str, answer=None):
        if call in self.silent:
            await asyncio.Event().wait()
        await asyncio.sleep(self.answer_s)
        for hook in self.hooks:
            await hook(None)
        return answer

    async def read_deployment_by_name(self, name: str):
        return await self._answer("read_deployment_by_name", SimpleNamespace(id=uuid.uuid4()))

    async def pause_deployment(self, deployment_id: uuid.UUID) -> None:
        await self._answer("pause_deployment")
        self.paused.append(deployment_id)

    async def read_flow_runs(self, *, flow_run_filter):
        kind = "deployment_id" if flow_run_filter.deployment_id else "parent_flow_run_id"
        ours = ["nightly", "due"] if kind == "deployment_id" else ["child"]
        return await self._answer("read_flow_runs", [self.runs[name] for name in ours])

    async def set_flow_run_state(self, flow_run_id: uuid.UUID, state, force: bool) -> None:
        await self._answer("set_flow_run_state")
        (name,) = (name for name, run in self.runs.items() if run.id == flow_run_id)
        self.crashed[name] = state.message


def _stop_on_the_loops_clock(monkeypatch, server: _SlowServer) -> tuple[list[str], float]:
    """serve's stop against ``server``: its lines, and when it ended by the loop's clock."""
    from datetime import UTC, datetime, timedelta

    import deployments.serve as module

    loops: list[_InstantLoop] = []

    def instant() -> _InstantLoop:
        loops.append(_InstantLoop())
        return loops[-1]

    def run(main):
        with asyncio.Runner(loop_factory=instant) as runner:
            return runner.run(main)

    monkeypatch.setattr(module, "prefect_client", server)
    monkeypatch.setattr(asyncio, "run", run)
    warned: list[str] = []
    since = datetime.now(UTC) - timedelta(minutes=1)
    module.pause_schedules(build_deployments(nightly_spec=DEMO), warned.append, serving_since=since)
    monkeypatch.undo()
    return warned, loops[0].now


def test_serves_stop_waits_for_a_server_while_it_answers(monkeypatch):
    """CI (2 cores, loaded): serve's stop, bounded at 5 s in all, ran past it on a server
    answering its 11 requests slowly, and the nightly and its subflow it had found stayed
    Running. The stop now gives up 5 s after the server's last answer (or 20 s in all):
    on a server answering each call 2 s after it was sent, everything is paused and
    marked, at 10 s. On the loop's clock: nothing timed."""
    import deployments.serve as module

    server = _SlowServer(answer_s=2.0)
    warned, ended = _stop_on_the_loops_clock(monkeypatch, server)
    assert server.crashed == {
        "child": module.LEFT_RUNNING,
        "nightly": module.LEFT_RUNNING,
        "due": module.LEFT_PENDING,
    }
    assert len(server.paused) == 3
    assert sorted(warned) == [
        "flow run 'due' did not run (serve stopped as it took it): marked Crashed on the "
        "Prefect server",
        "flow run 'nightly' ran: marked Crashed on the Prefect server (evalflow status "
        "names the command that resumes its experiment)",
    ]
    # read the deployments at 2 s, paused at 4, runs read at 6, subflows at 8, marked at 10
    assert ended == pytest.approx(10.0)


NOT_MARKED = (
    "flow run {name!r}: could not mark it Crashed ({why}): it reads Running or Pending on "
    "the Prefect server until set Crashed in the UI"
)


@pytest.mark.parametrize(
    ("answer_s", "silent", "ended_at", "said"),
    [
        # silent once the runs were found: 5 s after its last answer (the subflows, at 4)
        (1.0, ("set_flow_run_state",), 9.0, "marks:no answer from the Prefect server within 5 s"),
        # answering, too slowly: the marks (due at 22.5 s) cut at 20 s in all
        (4.5, (), 20.0, "marks:the Prefect server still answering after 20 s"),
        # silent once the deployments were paused (at 2 s): the runs never read are said
        (
            1.0,
            ("read_flow_runs",),
            7.0,
            "could not look for the flow runs serve took (no answer from the Prefect server "
            "within 5 s): one that ran, or was due, reads Running or Pending on the Prefect "
            "server until set Crashed in the UI",
        ),
    ],
)
def test_serves_stop_gives_up_on_a_server_gone_quiet_or_too_slow_and_says_what_it_left(
    monkeypatch, answer_s, silent, ended_at, said
):
    """On the loop's clock, as above. Before, a stop cut before it had read the runs said
    nothing of them, though one that ran stayed Running."""
    server = _SlowServer(answer_s=answer_s, silent=silent)
    warned, ended = _stop_on_the_loops_clock(monkeypatch, server)
    assert len(server.paused) == 3 and server.crashed == {}
    if said.startswith("marks:"):
        why = said.removeprefix("marks:")
        said_of = [NOT_MARKED.format(name=name, why=why) for name in ("due", "nightly")]
        assert sorted(warned) == said_of
    else:
        assert warned == [said]
    assert ended == pytest.approx(ended_at)


@pytest.mark.parametrize(("signum", "code"), [(15, 0), (1, 129)])
def test_sigterm_before_serving_stops_serve_with_exit_0_and_a_line(
    monkeypatch, capfd, signum, code
):
    """SIGTERM while `serve` started (Prefect's imports, its temporary server) killed it
    with exit 143 and no word; once serving, Prefect's runner stops on it with 0.
    SIGHUP (its terminal closed) killed it at once too: now SIGTERM's way out, 129."""
    import os
    import signal
    import sys
    import time

    import deployments.serve as module
    import tasks.adapters.deployment_runs
    from flows.cli import console_main

    def terminated(*_, **__) -> None:
        os.kill(os.getpid(), signum)
        time.sleep(30)  # the handler leaves at once
        raise AssertionError("the signal did not stop serve")

    monkeypatch.setattr(tasks.adapters.deployment_runs, "run_control_from_settings", lambda: None)
    monkeypatch.setattr(module, "serve_all", terminated)
    monkeypatch.setattr(sys, "argv", ["evalflow", "serve", "--no-metrics"])

    def left_to_its_default(*_) -> None:  # what the default action would do: exit at once
        raise AssertionError("serve left the signal to its default action")

    previous = {s: signal.signal(s, left_to_its_default) for s in {signal.SIGTERM, signum}}
    try:
        with pytest.raises(SystemExit) as stopped:
            console_main()
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
    assert stopped.value.code == code
    said = f"serve: stopped by {signal.Signals(signum).name} before it was serving\n"
    assert said in capfd.readouterr().err


def test_sighup_while_serving_takes_the_runners_sigterm_way_out_with_129():
    """Once serving, SIGTERM is Prefect's runner's (its stop, then exit 0; the schedules
    paused and the flow runs it took ended on the way out). SIGHUP ended `serve` at once;
    now it runs whatever SIGTERM's handler is, then exits 129."""
    import signal

    from flows.cli import _hangup_as_sigterm

    stopped = []

    def runner_stop(signum, _frame) -> None:  # Runner.handle_sigterm: stop, sys.exit(0)
        stopped.append(signum)
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, runner_stop)
    try:
        with pytest.raises(SystemExit) as exited:
            _hangup_as_sigterm(signal.SIGHUP, None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exited.value.code == 129 and stopped == [signal.SIGHUP]


def test_a_sub_daily_nightly_gets_an_experiment_template_and_a_warning_without_one(
    monkeypatch, capsys
):
    """With `--nightly-cron '* * * * *'` every run of a day resumed `<series>-nightly-<date>`
    and the series never grew; `serve` had no option for the `experiment` template the
    docs named. `--nightly-experiment` sets it, and a schedule more often than daily
    without {time} is warned about."""
    import deployments.serve as module
    import tasks.adapters.deployment_runs

    served: list[dict] = []
    monkeypatch.setattr(tasks.adapters.deployment_runs, "run_control_from_settings", lambda: None)
    monkeypatch.setattr(module, "serve_all", lambda warn, limit=None, **kw: served.append(kw))
    argv = ["serve", "--no-metrics", "--nightly-spec", str(DEMO), "--nightly-cron", "*/15 * * * *"]
    assert main(argv) == 0
    assert served[-1]["nightly_experiment"] is None
    warned = capsys.readouterr().err
    assert "--nightly-cron '*/15 * * * *' fires more than once a day" in warned
    assert "give --nightly-experiment 'demo-simulated-{date}-{time}'" in warned

    assert main([*argv, "--nightly-experiment", "demo-{date}-{time}"]) == 0
    assert "warning" not in capsys.readouterr().err
    nightly = by_name(build_deployments(**served[-1]))
    parameters = nightly["nightly-regression/nightly-served"].parameters
    assert parameters["experiment"] == "demo-{date}-{time}"
