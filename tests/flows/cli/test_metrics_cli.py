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


def test_metrics_reads_a_database_in_a_read_only_folder_as_the_monitor_does(
    served, tmp_path, read_only, capsys
):
    """The newcomer's F1 (stop 71): a read-only share of the results (a WAL database whose
    folder may not be written, no -wal or -shm beside it) was refused to `metrics`, "this
    command stores results", while `monitor` served the same /ops/metrics from it."""
    shared = tmp_path / "share"
    shared.mkdir()
    path = shared / "evalflow.db"
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        add_experiment(session, "demo", make_suite(2), {make_config(): {"exact_match": [1, 0]}})
        session.commit()
    engine.dispose()  # the last connection: the -wal and -shm go
    read_only(shared)
    note = f"note: read the results database {path} as a snapshot: its folder is read-only"
    for argv, scraped in ((["metrics"], "/metrics"), (["monitor"], "/ops/metrics")):
        assert main(["--database", f"sqlite:///{path}", *argv]) == 0
        assert capsys.readouterr().err.startswith(note), argv
        client = TestClient(served[-1], headers={"host": "127.0.0.1:8766"})
        text = client.get(scraped).text
        assert "evalflow_database_up 1.0" in text, argv
        assert 'evalflow_generations_total{host="h",model="m:1b"} 2.0' in text, argv
    assert sorted(p.name for p in shared.iterdir()) == ["evalflow.db"]


def test_health_gives_health_readys_verdict_on_a_read_only_folder(
    served, tmp_path, read_only, capsys
):
    """Recheck R6 (stop 71): on a read-only share whose /health/ready said ok, `evalflow
    health` exited 1 with the driver's "unable to open database file". It reads the
    snapshot as every reader does, and says so; a -wal it cannot read there is said."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shared = tmp_path / "share"
    shared.mkdir()
    path = shared / "evalflow.db"
    url = f"sqlite:///{path}"
    make_engine(url).dispose()  # evalflow's tables, the -wal and -shm gone
    read_only(shared)
    note = f"note: read the results database {path} as a snapshot: its folder is read-only"
    with temporary_settings({PREFECT_API_URL: None}):
        assert main(["--database", url, "metrics"]) == 0
        ready = TestClient(served[-1]).get("/health/ready").json()
        assert ready["status"] == "ok", ready
        capsys.readouterr()
        assert main(["--database", url, "health", "--timeout", "2"]) == 0
        out, err = capsys.readouterr()
        assert out == "healthy: prefect api, database, hosts\n"
        # a probe polled every few seconds said the note on every probe: only `doctor` does
        assert err == ""
        main(["--database", url, "doctor", "--timeout", "2"])
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(note)
        assert sorted(p.name for p in shared.iterdir()) == ["evalflow.db"]
        (shared / "evalflow.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
        assert main(["--database", url, "health", "--timeout", "2"]) == 1
    assert capsys.readouterr().out.startswith(
        f"unhealthy: database: cannot open the results database {path}: its folder is "
        "read-only and evalflow.db-wal beside it holds changes not yet in the database"
    )


def test_without_a_prefect_server_the_slot_gauges_come_from_this_machines_locks(
    served, database_url, monkeypatch, tmp_path
):
    """The default one-machine setup (a temporary Prefect API per run): the gauges
    docs/throughput.md recommends are read from the machine-wide slot locks."""
    import asyncio

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from evaluation.backends._machine_slots import LOCK_DIR_ENV, MachineSlots

    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    slots = MachineSlots("http://127.0.0.1:18431", 2)

    async def scrape_while_one_is_held() -> str:
        async with slots.hold():
            return client.get("/metrics").text

    with temporary_settings({PREFECT_API_URL: None}):
        assert main(["--database", database_url, "metrics"]) == 0
        client = TestClient(served[0])
        text = asyncio.run(scrape_while_one_is_held())
        after = client.get("/metrics").text
    slots.close()
    labels = 'address="127.0.0.1-18431",host="127.0.0.1-18431"'
    assert f"evalflow_host_slots{{{labels}}} 2.0" in text
    assert f"evalflow_requests_in_flight{{{labels}}} 1.0" in text
    assert 'host="127.0.0.1-18431"' not in after  # idle, and no experiment here names it
