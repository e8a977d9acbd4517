"""Bad input on the monitor's pages and endpoints: a 4xx page that says what was
wrong, the run control never called, nothing written to the database."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from evaluation.storage.db import session_scope
from evaluation.storage.models import RunLive, RunSummary
from evaluation.view.app import create_app
from tests.evaluation.monitor.test_monitor import ORIGIN, Control, _csrf, keyed_client
from tests.support.monitor_db import RUNNING, build_monitor_db

GOOD = {"deployment": "evaluate/on-demand", "spec_path": "s.yaml", "level": "smoke"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = build_monitor_db(f"sqlite:///{tmp_path_factory.mktemp('bad') / 'm.db'}")
    control = Control()
    client = keyed_client(create_app(db.engine, control=control))
    client.get("/")  # the summaries are counted once, before the cases
    return db, client, control


def _counts(engine) -> tuple[int, ...]:
    with session_scope(engine) as session:
        tables = (RunLive, RunSummary)
        return tuple(session.exec(select(func.count()).select_from(t)).one()[0] for t in tables)


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"level": "huge"}, 400, "level: expected one of smoke, subset, full, got 'huge'"),
        ({"deployment": "on-demand"}, 400, "deployment: expected FLOW/DEPLOYMENT"),
        ({"deployment": ""}, 400, "deployment: required, got nothing"),
        ({"spec_path": " "}, 400, "spec_path: required, got nothing"),
        ({"spec_path": "a\nb"}, 400, "spec_path: expected one line"),
        ({"experiment": "x" * 2000}, 400, "experiment: expected one line of at most 1000"),
        ({"deployment": "evaluate/missing"}, 404, "is not registered"),
        (
            {"deployment": "retrain-selector/weekly-served"},
            400,
            "deployment: expected a deployment of the 'evaluate' flow",
        ),
        ({"experiment": "BAD NAME!"}, 400, "experiment: expected an experiment name of [a-z0-9-]+"),
        ({"experiment": "a" * 101}, 400, "experiment: expected an experiment name of at most 100"),
    ],
)
def test_a_bad_start_form_is_a_4xx_page_and_starts_nothing(served, form, status, says):
    db, client, control = served
    before = _counts(db.engine)
    token = _csrf(client.get("/").text)
    answer = client.post(
        "/actions/start", data={**GOOD, **form, "csrf": token}, headers={"Origin": ORIGIN}
    )
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert says.replace("'", "&#39;") in answer.text
    assert control.started == [] and _counts(db.engine) == before


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "says"),
    [
        ("/actions/start", b"csrf=wrong", {"Origin": ORIGIN}, 403, "token is missing or stale"),
        ("/actions/start", b"", {}, 403, "not this server"),
        ("/actions/cancel", b"x=1", {"Origin": "http://evil.example"}, 403, "evil.example"),
        ("/actions/start", b"\xff\xfe", {"Origin": ORIGIN}, 400, "not URL-encoded UTF-8"),
        ("/actions/start", b"a=" + b"x" * 20_000, {"Origin": ORIGIN}, 413, "at most 16384"),
        # newcomers' W7: `level=smoke&level=full` started a full run, the last one winning
        (
            "/actions/start",
            b"level=smoke&level=full",
            {"Origin": ORIGIN},
            400,
            "level: expected once, given 2 times",
        ),
        (
            "/actions/cancel",
            b"experiment=a&experiment=b",
            {"Origin": ORIGIN},
            400,
            "experiment: expected once",
        ),
    ],
)
def test_a_forged_or_malformed_write_is_refused(served, path, body, headers, status, says):
    db, client, control = served
    before = _counts(db.engine)
    answer = client.post(
        path,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )
    assert answer.status_code == status and says in answer.text
    assert control.started == [] and control.cancelled == []
    assert _counts(db.engine) == before


def test_a_start_form_with_a_field_twice_starts_nothing(served):
    """Newcomers' W7: with the page's token, `level=smoke&level=full` started a full run
    (432 generations, not the smoke's 36): the last one won, unsaid."""
    from urllib.parse import urlencode

    db, client, control = served
    before = _counts(db.engine)
    token = _csrf(client.get("/").text)
    fields = [*GOOD.items(), ("level", "full"), ("csrf", token)]
    answer = client.post(
        "/actions/start",
        content=urlencode(fields).encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "Origin": ORIGIN},
    )
    assert answer.status_code == 400 and "level: expected once, given 2 times" in answer.text
    assert control.started == [] and _counts(db.engine) == before


def test_cancel_of_an_unknown_or_unnamed_experiment(served):
    _, client, control = served
    token = _csrf(client.get("/").text)
    for form, status, says in (
        ({}, 400, "experiment: required"),
        ({"experiment": "nope"}, 404, "no experiment named &#39;nope&#39;"),
    ):
        answer = client.post(
            "/actions/cancel", data={**form, "csrf": token}, headers={"Origin": ORIGIN}
        )
        assert answer.status_code == status and says in answer.text
    assert control.cancelled == []


def test_unknown_names_on_the_pages_are_404(served):
    _, client, _ = served
    assert client.get("/e/nope/live").status_code == 404
    assert client.get("/api/runs/nope").status_code == 404
    series = client.get("/?series=nope")
    assert series.status_code == 404
    assert re.search(r"series: no run of series &#39;nope&#39; is stored", series.text)


def test_without_a_prefect_server_the_page_offers_no_button_and_writes_are_refused(served):
    db, _, _ = served
    client = TestClient(create_app(db.engine))
    page = client.get("/").text
    assert 'id="start"' not in page and "PREFECT_API_URL" in page
    token = _csrf(page) if 'name="csrf"' in page else ""
    answer = client.post("/actions/start", data={**GOOD, "csrf": token}, headers={"Origin": ORIGIN})
    assert answer.status_code == 403  # no form on the page: no token to send
    live = client.get(f"/e/{RUNNING}/live").text
    assert 'id="cancel"' not in live


def test_a_deployment_whose_flow_does_not_take_the_forms_parameters_is_refused():
    from evaluation.monitor import ControlRefused
    from tasks.adapters.deployment_runs import _check_parameters

    schema = {"properties": {"model_dir": {}, "ratings": {}}}  # retrain-selector's
    with pytest.raises(ControlRefused, match="does not take spec_path, level") as refused:
        _check_parameters("evaluate/odd", schema, {"spec_path": "s.yaml", "level": "smoke"})
    assert refused.value.status == 400
    _check_parameters(
        "evaluate/x",
        {"properties": {"spec_path": {}, "level": {}}},
        {"spec_path": "s", "level": "smoke"},
    )


def test_serve_refuses_a_prefect_api_url_where_no_server_answers(capsys):
    """Before anything is printed or served: the monitor's line, naming the setting."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    with socket.socket() as s:  # a port nothing listens on (bound, then closed)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: no Prefect server answers at {url}")
    assert "fix PREFECT_API_URL" in err and len(err.splitlines()) == 1


def test_start_on_a_prefect_server_that_keeps_silent_tries_once_and_says_busy(monkeypatch):
    """Recheck's R5: a server that takes the connection and never answers held the Start
    form 121 s (Prefect's client waited 10 s, then retried 5 times, 2 s to 32 s apart),
    then said "no Prefect server answers ...: start one", of a server that runs. One try
    within the timeout now, and a busy server's line: try again, as `run` says (75)."""
    import socket
    import threading

    from evaluation.monitor import ControlRefused
    from tasks.adapters import deployment_runs

    monkeypatch.setattr(deployment_runs, "TIMEOUT_S", 0.5)
    taken: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(30)

        def take() -> None:  # every connection accepted, none answered
            try:
                while True:
                    taken.append(silent.accept()[0])
            except OSError:
                return

        threading.Thread(target=take, daemon=True).start()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        control = deployment_runs.PrefectRunControl(url)
        with pytest.raises(ControlRefused) as refused:
            control.start("evaluate/on-demand", {"spec_path": "s.yaml", "level": "smoke"})
        assert control.deployments() is None
        tries = len(taken)
        for connection in taken:
            connection.close()
    assert refused.value.status == 503
    assert str(refused.value) == (
        f"the Prefect server at {url} did not answer within 0.5 s (ReadTimeout): busy, as on "
        "a loaded machine? try again when it answers"
    )
    assert tries <= 2  # one for start, one for the deployments list: no retries


def test_an_unregistered_deployment_names_what_deploy_and_serve_register(monkeypatch):
    from contextlib import nullcontext

    from prefect.exceptions import ObjectNotFound

    from evaluation.monitor import ControlRefused
    from tasks.adapters.deployment_runs import PrefectRunControl

    class NoDeployments:
        def read_deployment_by_name(self, name):
            raise ObjectNotFound(http_exc=ValueError(name))

    control = PrefectRunControl("http://127.0.0.1:4200/api")
    monkeypatch.setattr(control, "_client", lambda: nullcontext(NoDeployments()))
    with pytest.raises(ControlRefused) as refused:
        control.start("evaluate/on-demand", {"spec_path": "s.yaml", "level": "smoke"})
    assert refused.value.status == 404
    assert "evalflow serve registers evaluate/on-demand-served" in str(refused.value)
