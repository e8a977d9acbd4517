"""The monitor in real headless Chromium, one server for the module: a running
experiment's progress changes on the page without a reload, a series draws its points,
a host shows its health, the Start button starts a registered deployment's flow run on
a real Prefect server (the session's) and Cancel asks the server to cancel it; a run
that ends moves into the recent runs. The pages poll every 0.2 s here (5 s by default)."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.settings import PREFECT_API_URL
from prefect.states import Failed
from prefect.utilities.callables import parameter_schema
from sqlalchemy import update

from evaluation.monitor import LiveRun
from evaluation.review.app import LOOPBACK_HOSTS
from evaluation.storage.db import session_scope
from evaluation.storage.models import Experiment
from evaluation.storage.runs import RunProcess, end_run
from evaluation.view.app import create_app
from flows.evaluate import evaluate
from tasks.adapters.deployment_runs import MONITOR_TAG, PrefectRunControl
from tests.support.asgi_server import serving
from tests.support.monitor_db import RUNNING, SERIES, build_monitor_db, start_running

pytestmark = pytest.mark.integration

WAIT_MS = 10_000  # an upper bound for a wait on a condition, not a sleep
# Counts (and stops) the start form's submits until ``RELEASE_SUBMITS``.
HOLD_SUBMITS = """() => {
  window.submits = 0;
  window.holdSubmit = (event) => { window.submits += 1; event.preventDefault(); };
  document.getElementById("start-form").addEventListener("submit", window.holdSubmit);
}"""
RELEASE_SUBMITS = """() => document.getElementById("start-form")
  .removeEventListener("submit", window.holdSubmit)"""


@pytest.fixture(scope="module")
def deployment(prefect_harness):
    """A registered deployment of the evaluate flow (no worker: its runs stay
    scheduled, which is all the page needs to show it started one)."""
    schema = parameter_schema(evaluate).model_dump()  # as evalflow deploy registers it
    with SyncPrefectClient(PREFECT_API_URL.value()) as client:
        flow_id = client.create_flow_from_name("evaluate")
        deployment_id = client.create_deployment(
            flow_id, "monitor-browser-test", parameter_openapi_schema=schema
        )
    return "evaluate/monitor-browser-test", deployment_id


KEY = "monitor-browser-test-key"


@pytest.fixture(scope="module")
def served(tmp_path_factory, deployment):
    db = build_monitor_db(f"sqlite:///{tmp_path_factory.mktemp('monitor') / 'm.db'}")
    app = create_app(
        db.engine,
        allowed_hosts=LOOPBACK_HOSTS,
        control=PrefectRunControl(PREFECT_API_URL.value()),
        poll_s=0.2,
        key=KEY,
    )
    with serving(app) as url:
        yield db, url


def _mark_simulated(engine, simulated: bool) -> None:
    with session_scope(engine) as session:
        session.exec(
            update(Experiment).where(Experiment.name == RUNNING).values(simulated=simulated)
        )


def test_running_progress_updates_in_place_and_series_and_hosts_show(browser, served):
    db, url = served
    _mark_simulated(db.engine, True)
    page = browser.new_page()
    page.goto(f"{url}/?key={KEY}")  # the link evalflow view prints
    row = f'#running-rows tr[data-name="{RUNNING}"] .progress'
    mark = f'#running-rows tr[data-name="{RUNNING}"] .tag'
    assert page.inner_text(row) == "3/12 (25%)" and page.inner_text(mark) == "SIMULATED"
    page.evaluate("window.notReloaded = true")
    live = LiveRun(db.engine, RUNNING, total=12, clock=lambda: 0.0)
    live.stored([None] * 9)
    live.write()
    page.wait_for_function(
        f"document.querySelector('{row}').textContent === '9/12 (75%)'", timeout=WAIT_MS
    )
    assert page.evaluate("window.notReloaded") is True  # redrawn in place
    assert page.inner_text(mark) == "SIMULATED"  # newcomer ncmon-5: the redraw dropped it
    _mark_simulated(db.engine, False)
    spark = page.locator(f'#series tr[data-series="{SERIES}"] svg[data-points="3"]')
    assert spark.count() == 2  # the headline metric and the latency, three nights each
    assert page.inner_text('#hosts tr[data-host="host-b"] .health') == "failing"
    assert page.inner_text('#hosts tr[data-host="host-a"] .health') == "ok"
    page.close()


def test_start_runs_the_deployment_and_refuses_an_unknown_one(browser, served, deployment):
    _, url = served
    name, deployment_id = deployment
    page = browser.new_page()
    page.goto(f"{url}/?key={KEY}")  # the link evalflow view prints
    # the field offers a registered evaluate deployment (M10: serve's alone is
    # evaluate/on-demand-served, and the default evaluate/on-demand was refused)
    page.wait_for_selector(f'#deployments option[value="{name}"]', state="attached")
    registered = page.eval_on_selector_all("#deployments option", "os => os.map(o => o.value)")
    offered = page.input_value('#start-form input[name="deployment"]')
    assert offered in registered and (offered == "evaluate/on-demand") == (
        "evaluate/on-demand" in registered
    )
    page.fill('#start-form input[name="deployment"]', name)
    page.fill('#start-form input[name="spec_path"]', "benchmarks/sweeps/demo-simulated.yaml")
    page.evaluate(HOLD_SUBMITS)
    page.select_option('#start-form select[name="level"]', "subset")
    page.press('#start-form input[name="spec_path"]', "Enter")
    assert page.evaluate("window.submits") == 0  # a level chosen, Enter in a field: no run
    page.evaluate(RELEASE_SUBMITS)
    with page.expect_navigation():
        page.click("#start")
    started = page.inner_text("#started")
    with SyncPrefectClient(PREFECT_API_URL.value()) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    assert len(runs) == 1 and runs[0].name in started
    assert runs[0].parameters == {
        "spec_path": "benchmarks/sweeps/demo-simulated.yaml",
        "level": "subset",
    }
    assert MONITOR_TAG in runs[0].tags
    # its flow fails before it claims its experiment (newcomers' M10: a spec path the
    # worker cannot read): listed in no section, the notice says so, and why
    reason = "Flow run encountered an exception: SpecError: x.yaml: cannot read the spec file"
    with SyncPrefectClient(PREFECT_API_URL.value()) as client:
        client.set_flow_run_state(runs[0].id, Failed(message=reason), force=True)
    page.wait_for_function(
        "document.querySelector('#started').textContent.includes('ended Failed')",
        timeout=WAIT_MS,
    )
    assert page.inner_text("#started") == f"Flow run {runs[0].name} ended Failed: {reason}"
    page.goto(f"{url}/?key={KEY}")  # the link evalflow view prints
    page.fill('#start-form input[name="deployment"]', "evaluate/no-such-deployment")
    page.fill('#start-form input[name="spec_path"]', "x.yaml")
    with page.expect_navigation():
        page.click("#start")
    assert "404" in page.inner_text("main")
    assert "'evaluate/no-such-deployment' is not registered" in page.inner_text("main")
    page.close()


def test_cancel_asks_prefect_then_a_finished_run_moves_to_recent(browser, served, deployment):
    db, url = served
    _, deployment_id = deployment
    with SyncPrefectClient(PREFECT_API_URL.value()) as client:
        run = client.create_flow_run_from_deployment(
            deployment_id, parameters={"spec_path": "x.yaml"}
        )
    start_running(db.engine, flow_run_id=str(run.id))
    page = browser.new_page()
    page.goto(f"{url}/e/{RUNNING}/live?key={KEY}")
    with page.expect_navigation():
        page.click("#cancel")
    with SyncPrefectClient(PREFECT_API_URL.value()) as client:
        state = client.read_flow_run(run.id).state
    assert state.type.value in ("CANCELLING", "CANCELLED")
    page.goto(f"{url}/?key={KEY}")  # the link evalflow view prints
    with session_scope(db.engine) as session:
        end_run(session, RUNNING, "cancelled", RunProcess.current(), reason="cancelled")
    page.wait_for_selector(
        f'#recent tr[data-name="{RUNNING}"] .status-cancelled', timeout=WAIT_MS
    )  # the page reloaded itself when the run left the running ones
    assert page.locator("#running-rows tr[data-name]").count() == 0
    page.close()
