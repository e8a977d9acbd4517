"""`evalflow metrics` and the monitor serve the operator's endpoints: each command is run
in-process up to the point it would serve, and the app it would serve is asked."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from evaluation.storage.db import make_engine
from flows.cli import main
from flows.cli._serving import bind
from tests.support.results_db import add_experiment, make_config, make_suite


@pytest.fixture
def served(monkeypatch, database_url):
    with Session(make_engine(database_url)) as session:
        add_experiment(session, "demo", make_suite(2), {make_config(): {"exact_match": [1, 0]}})
        session.commit()
    apps = []

    def capture(app, sock):
        apps.append(app)
        sock.close()

    def any_free_port(host, port, **names):  # never a port another process holds
        return bind(host, 0, **names)

    for module in ("flows.cli.metrics", "flows.cli.view"):
        monkeypatch.setattr(f"{module}.serve", capture)
        monkeypatch.setattr(f"{module}.bind", any_free_port)
    return apps


def test_evalflow_metrics_serves_metrics_and_health(served, database_url, capsys):
    assert main(["--database", database_url, "metrics", "--port", "9464"]) == 0
    assert "metrics: http://127.0.0.1:9464/metrics" in capsys.readouterr().err
    client = TestClient(served[0])
    assert 'evalflow_generations_total{host="h",model="m:1b"} 2.0' in client.get("/metrics").text
    assert client.get("/health/live").status_code == 200


def test_the_monitor_mounts_them_under_ops(served, database_url):
    assert main(["--database", database_url, "monitor"]) == 0
    client = TestClient(served[0], headers={"host": "127.0.0.1:8766"})
    assert "evalflow_runs" in client.get("/ops/metrics").text
    assert client.get("/ops/health/live").json()["status"] == "ok"
    assert client.get("/ops/health/deep").status_code == 400  # no spec: says so
