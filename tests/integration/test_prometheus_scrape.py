"""A real Prometheus (Debian's ``prometheus`` package) scrapes evalflow's /metrics every
second, and a counter is read back through Prometheus's own HTTP query API: the
exposition is what Prometheus accepts, not only what prometheus-client's parser reads.
Skipped, saying why, where Prometheus is not installed (`.ci/run` installs it)."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
import yaml
from sqlmodel import Session

from evaluation.observability import HostSlots, observability_app
from evaluation.storage.db import make_engine
from tests.evaluation.test_observability import dashboard_expressions
from tests.integration.test_postgres_workers import free_port
from tests.support.asgi_server import serving
from tests.support.results_db import add_experiment, make_config, make_suite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
DEADLINE_S = 60.0  # Prometheus starts in ~1 s and scrapes every 1 s; a loaded CI is slower


@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)
def test_prometheus_scrapes_evalflow_and_answers_a_query(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.db'}")
    with Session(engine) as session:
        config = make_config("llama3.2:3b")
        experiment = add_experiment(
            session, "scraped", make_suite(3), {config: {"exact_match": [1, 0, 1]}}
        )
        experiment.spec = {  # two addresses, one name (recheck R4): two series
            "hosts": [
                {"name": "llama-cpp", "url": "http://127.0.0.1:18080"},
                {"name": "llama-cpp", "url": "http://127.0.0.1:18081"},
            ]
        }
        session.commit()
    slots = [
        HostSlots("ollama-host-127.0.0.1-18080", 1, 0),
        HostSlots("ollama-host-127.0.0.1-18081", 2, 1),
    ]
    with serving(observability_app(engine, host_slots=lambda: slots)) as base:
        target = base.removeprefix("http://")
        config_file = tmp_path / "prometheus.yml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "evalflow", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        process, port = _start_prometheus(config_file, tmp_path)
        try:
            result = _query_until_answered(
                f"http://127.0.0.1:{port}/api/v1/query",
                'evalflow_generations_total{job="evalflow"}',
                process,
            )
            up = _query_until_answered(
                f"http://127.0.0.1:{port}/api/v1/query", 'up{job="evalflow"}', process
            )
            stored = _query_until_answered(
                f"http://127.0.0.1:{port}/api/v1/query",
                'count(evalflow_host_slots{host="llama-cpp"})',
                process,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    (sample,) = result
    assert sample["metric"]["host"] == "h" and sample["metric"]["model"] == "llama3.2:3b"
    assert float(sample["value"][1]) == 3
    assert float(up[0]["value"][1]) == 1  # Prometheus's own verdict on the scrape
    assert float(stored[0]["value"][1]) == 2  # a repeated series would be dropped: 1


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
def test_every_dashboard_query_is_promql_prometheus_parses(tmp_path):
    """Each panel's query of docs/grafana-dashboard.json, as a recording rule, passes
    Prometheus's own parser (``promtool check rules``): a query it cannot parse is a panel
    that shows an error in Grafana."""
    queries = dashboard_expressions()
    rules = [{"record": f"dashboard_query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout, checked.stdout


def _start_prometheus(config_file, tmp_path) -> tuple[subprocess.Popen, int]:
    """Prometheus listening on a free port; another one when a process of the machine
    took the port between our choosing it and Prometheus binding it."""
    for attempt in range(5):
        port = free_port()
        log = tmp_path / f"prometheus-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={tmp_path / f'tsdb-{attempt}'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE_S
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                    return process, port
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling its readiness under a deadline
        process.terminate()
        process.wait(timeout=30)
        if "address already in use" not in log.read_text():
            raise AssertionError(f"prometheus did not start:\n{log.read_text()[-2000:]}")
    raise AssertionError("no free port for prometheus in 5 tries")


def _query_until_answered(url: str, query: str, process: subprocess.Popen) -> list[dict]:
    """Ask Prometheus until the query has a result (or the deadline passes)."""
    deadline = time.monotonic() + DEADLINE_S
    last = "no answer"
    while time.monotonic() < deadline:
        assert process.poll() is None, f"prometheus exited with {process.returncode}"
        try:
            body = httpx.get(url, params={"query": query}, timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            last = repr(exc)
        else:
            last = str(body)
            if body.get("status") == "success" and body["data"]["result"]:
                return body["data"]["result"]
        time.sleep(0.2)  # polling a query API under a deadline, not synchronisation
    raise AssertionError(f"Prometheus never answered {query!r} within {DEADLINE_S} s: {last}")
