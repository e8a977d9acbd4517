"""The metrics collector and the health endpoints over a results database built through
the repository functions (no Prefect): what a scrape reads back, parsed by
prometheus-client's own parser, and what each health endpoint answers."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, update
from sqlmodel import Session

from evaluation.observability import (
    GpuReading,
    HostSlots,
    metrics_registry,
    observability_app,
    reason_class,
)
from evaluation.run._doctor import Check
from evaluation.run._work import GenerationRecord, WorkItem
from evaluation.storage.db import make_engine
from evaluation.storage.models import Experiment, ExperimentRun
from evaluation.storage.repository import save_generations
from evaluation.storage.verdicts import record_verdict
from tests.conftest import REPO
from tests.support.results_db import MISSING, add_experiment, make_config, make_suite
from tests.support.silent_socket import failing_server
from tests.support.standin_ollama import StandInConfig, running_standin

SMALL, LARGE = make_config("small:1b"), make_config("large:8b")


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.db'}")
    suite = make_suite(4)
    with Session(engine) as session:
        # small: 4 ok at 0.5-0.53 s; large: 2 ok at 3 s, 2 left for failures below
        add_experiment(
            session,
            "exp-a",
            suite,
            {
                SMALL: {"exact_match": [1, 0, 1, 1]},
                LARGE: {"exact_match": [1, 1, MISSING, MISSING]},
            },
            latency={SMALL: [0.5, 0.51, 0.52, 0.53], LARGE: [3.0, 3.0]},
        )
        experiment = session.query(Experiment).filter_by(name="exp-a").one()
        failed = [
            GenerationRecord(WorkItem(LARGE, suite.cases[2], suite.name, 0), "h", 3, None, error)
            for error in ("BackendUnavailable: connection refused",)
        ] + [
            GenerationRecord(
                WorkItem(LARGE, suite.cases[3], suite.name, 0), "h", 1, None, "no reason at all"
            )
        ]
        save_generations(session, experiment.id, failed)
        experiment.status = "completed"
        session.add(experiment)
        record_verdict(session, "old-night", "nightly-qa", baseline=None, regressed=True, rules=[])
        session.commit()
    return engine


def at(labels: tuple, **more: str) -> tuple:
    """A sample's labels as ``scrape`` keys them (sorted by name)."""
    return tuple(sorted([*labels, *more.items()]))


def scrape(registry) -> dict:
    """{(sample name, sorted labels): value} of one scrape, read by prometheus-client's parser."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scrape_reads_generations_latency_failures_runs_and_verdicts(engine):
    with Session(engine) as session:  # a later check of the same series passed
        record_verdict(session, "night-2", "nightly-qa", baseline="b", regressed=False, rules=[])
        session.commit()
    values = scrape(metrics_registry(engine))

    small = (("host", "h"), ("model", "small:1b"))
    large = (("host", "h"), ("model", "large:8b"))
    assert values[("evalflow_database_up", ())] == 1
    assert values[("evalflow_generations_total", small)] == 4
    assert values[("evalflow_generations_total", large)] == 2
    # cumulative buckets: small's four fall between 0.5 and 1 s; large's two at 3 s
    assert values[("evalflow_request_duration_seconds_bucket", at(small, le="0.5"))] == 1
    assert values[("evalflow_request_duration_seconds_bucket", at(small, le="1.0"))] == 4
    assert values[("evalflow_request_duration_seconds_bucket", at(large, le="2.5"))] == 0
    assert values[("evalflow_request_duration_seconds_bucket", at(large, le="5.0"))] == 2
    assert values[("evalflow_request_duration_seconds_bucket", at(large, le="+Inf"))] == 2
    assert values[("evalflow_request_duration_seconds_count", large)] == 2
    assert values[("evalflow_request_duration_seconds_sum", small)] == pytest.approx(2.06)
    assert values[("evalflow_generations_failed", at(large, reason="BackendUnavailable"))] == 1
    assert values[("evalflow_generations_failed", at(large, reason="other"))] == 1
    assert values[("evalflow_runs", (("simulated", "false"), ("status", "completed")))] == 1
    assert values[("evalflow_regression_detected", (("series", "nightly-qa"),))] == 0  # latest
    assert not any(name.startswith("evalflow_gpu") for name, _ in values)  # none given


def test_counters_only_rise_when_a_failed_generation_is_redone(engine):
    before = scrape(metrics_registry(engine))
    suite = make_suite(4)
    with Session(engine) as session:
        experiment = session.query(Experiment).filter_by(name="exp-a").one()
        redone = WorkItem(LARGE, suite.cases[2], suite.name, 0)
        from evaluation.backends.base import GenerationResult

        result = GenerationResult("answer 2", "stop", 0.2, None)
        save_generations(session, experiment.id, [GenerationRecord(redone, "h", 1, result)])
        session.commit()
    after = scrape(metrics_registry(engine))
    large = (("host", "h"), ("model", "large:8b"))
    assert after[("evalflow_generations_total", large)] == 3
    assert ("evalflow_generations_failed", at(large, reason="BackendUnavailable")) not in after
    for key, value in before.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
            assert after[key] >= value, key


def test_a_run_whose_process_is_gone_counts_as_crashed(engine):
    with Session(engine) as session:
        experiment = session.query(Experiment).filter_by(name="exp-a").one()
        experiment.status = "running"
        session.add(experiment)
        started = datetime.now(UTC) - timedelta(hours=1)
        gone = 2**22 + 7  # above Linux's pid_max: no process has it
        host = socket.gethostname()
        run = ExperimentRun(experiment="exp-a", token="t", pid=gone, hostname=host)
        run.started_at = started
        session.add(run)
        session.commit()
    values = scrape(metrics_registry(engine))
    assert values[("evalflow_runs", (("simulated", "false"), ("status", "crashed")))] == 1
    assert ("evalflow_runs", (("simulated", "false"), ("status", "running"))) not in values


def test_slots_and_gpus_are_read_at_each_scrape():
    readings = [
        GpuReading(0, 87.0, 3 * 2**30, 212.5, 5000.0),
        GpuReading(1, None, None, None, None),
    ]
    slots = [HostSlots("gpu-a", 4, 3)]
    registry = metrics_registry(
        make_engine("sqlite://"), host_slots=lambda: slots, gpus=lambda: readings
    )
    values = scrape(registry)
    gpu_a = (("address", "gpu-a"), ("host", "gpu-a"))
    assert values[("evalflow_host_slots", gpu_a)] == 4
    assert values[("evalflow_requests_in_flight", gpu_a)] == 3
    assert values[("evalflow_gpu_utilization_ratio", (("gpu", "0"),))] == pytest.approx(0.87)
    assert values[("evalflow_gpu_power_watts", (("gpu", "0"),))] == 212.5
    assert values[("evalflow_gpu_energy_joules_total", (("gpu", "0"),))] == 5000.0
    assert not any(labels == (("gpu", "1"),) for _, labels in values)  # nothing measured
    slots[0] = HostSlots("gpu-a", 4, 1)
    assert scrape(registry)[("evalflow_requests_in_flight", gpu_a)] == 1


def _name_host(engine, name: str, url: str) -> None:
    """exp-a's spec names the host at ``url`` ``name``."""
    with Session(engine) as session:
        experiment = session.query(Experiment).filter_by(name="exp-a").one()
        experiment.spec = {"hosts": [{"name": name, "url": url}]}
        session.add(experiment)
        session.commit()


def test_slot_gauges_list_this_homes_hosts_and_only_busy_strangers(engine):
    """The newcomer's F7: the machine's slot locks keep every host any run on the machine
    called (other users' stand-ins on ephemeral ports), and every scrape listed them all.
    A host this home's experiments name is listed idle or busy; another only while a
    request holds one of its slots."""
    _name_host(engine, "mine", "http://127.0.0.1:18080")
    slots = [
        HostSlots("ollama-host-127.0.0.1-18080", 1, 0),
        HostSlots("ollama-host-127.0.0.1-33101", 1, 0),
        HostSlots("ollama-host-127.0.0.1-36149", 2, 1),
    ]
    registry = metrics_registry(engine, host_slots=lambda: slots)
    values = scrape(registry)
    mine = (("address", "127.0.0.1-18080"), ("host", "mine"))
    assert values[("evalflow_requests_in_flight", mine)] == 0
    listed = {dict(labels)["host"] for name, labels in values if name == "evalflow_host_slots"}
    assert listed == {"mine", "127.0.0.1-36149"}
    slots[2] = HostSlots("ollama-host-127.0.0.1-36149", 2, 0)  # its run ended
    assert {dict(labels)["host"] for name, labels in scrape(registry) if "slots" in name} == {
        "mine"
    }


def test_a_simulated_hosts_slots_and_requests_in_flight_come_from_its_runs_live_row(tmp_path):
    """Newcomers' M7: a simulated host holds no slot lock nor Prefect limit, so status
    and the monitor said `sim 4/4 slots` while /metrics had no series for it. Its run's
    live row counts them: the series carry them, address `simulated`."""
    from sqlalchemy import update

    from evaluation.storage.db import session_scope
    from tests.support.monitor_db import RUNNING, build_monitor_db, start_running

    db = build_monitor_db(f"sqlite:///{tmp_path / 'm.db'}")
    hosts = [{"name": "host-a", "url": "simulated://local", "slots": 2, "kind": "simulated"}]
    with session_scope(db.engine) as session:
        session.exec(
            update(Experiment)
            .where(Experiment.name == RUNNING)
            .values(spec={"name": RUNNING, "hosts": hosts})
        )
    start_running(db.engine)  # its lanes hold both of host-a's slots
    values = scrape(metrics_registry(db.engine, host_slots=lambda: []))
    labels = (("address", "simulated"), ("host", "host-a"))
    assert values[("evalflow_requests_in_flight", labels)] == 2
    assert values[("evalflow_host_slots", labels)] == 2
    # newcomers' W2: with a shared Prefect server its run sized a limit for it too
    # (`ollama-host-local-80`), read beside the live row: `sum by (host)` read 4 slots
    limit = [HostSlots("ollama-host-local-80", 2, 2)]
    values = scrape(metrics_registry(db.engine, host_slots=lambda: limit))
    assert values[("evalflow_host_slots", labels)] == 2
    listed = [dict(k) for name, k in values if name == "evalflow_host_slots"]
    assert listed == [dict(labels)]


def test_slot_gauges_carry_the_host_label_the_generations_carry(engine):
    """The limit is keyed by address; its gauges are labelled with the spec's host name,
    as evalflow_generations_total is, so one Grafana host variable picks both."""
    _name_host(engine, "h", "http://127.0.0.1:80")
    slots = [
        HostSlots("ollama-host-127.0.0.1-80", 2, 1),
        HostSlots("ollama-host-10.0.0.9-80", 1, 1),
    ]
    values = scrape(metrics_registry(engine, host_slots=lambda: slots))
    generation_hosts = {
        dict(labels)["host"] for name, labels in values if name == "evalflow_generations_total"
    }
    assert generation_hosts == {"h"}
    h = (("address", "127.0.0.1-80"), ("host", "h"))
    assert values[("evalflow_host_slots", h)] == 2
    assert values[("evalflow_requests_in_flight", h)] == 1
    unnamed = (("address", "10.0.0.9-80"), ("host", "10.0.0.9-80"))  # no spec names it
    assert values[("evalflow_host_slots", unnamed)] == 1
    dashboard = json.loads((REPO / "docs/grafana-dashboard.json").read_text())
    host_labelled = ("generations", "request_duration", "host_slots", "requests_in_flight")
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric, selector in re.findall(r"(evalflow_[a-z_]+)(\{[^}]*\})?", target["expr"]):
                if any(part in metric for part in host_labelled):
                    assert 'host=~"$host"' in selector, (panel["title"], metric)


def test_two_addresses_one_host_name_are_two_series_without_credentials(engine):
    """Recheck R4: two specs named different addresses ``llama-cpp``, and the scrape
    repeated ``evalflow_host_slots{host="llama-cpp"}`` (an invalid scrape). Each address
    is its own series, as the slot accounting keys it; a URL's user and password are in
    no label."""
    with Session(engine) as session:
        add_experiment(session, "exp-b", make_suite(1), {SMALL: {"exact_match": [1]}})
        session.commit()
    with Session(engine) as session:
        for name, url in (
            ("exp-a", "http://127.0.0.1:18080"),
            ("exp-b", "http://ana:s3cret@127.0.0.1:18081"),
        ):
            experiment = session.query(Experiment).filter_by(name=name).one()
            experiment.spec = {"hosts": [{"name": "llama-cpp", "url": url}]}
            session.add(experiment)
        session.commit()
    slots = [
        HostSlots("ollama-host-127.0.0.1-18080", 1, 0),
        HostSlots("ollama-host-127.0.0.1-18081", 2, 1),
    ]
    registry = metrics_registry(engine, host_slots=lambda: slots)
    text = generate_latest(registry).decode()
    listed = [
        tuple(sorted(s.labels.items()))
        for family in text_string_to_metric_families(text)
        if family.name == "evalflow_host_slots"
        for s in family.samples
    ]
    assert listed == [
        (("address", "127.0.0.1-18080"), ("host", "llama-cpp")),
        (("address", "127.0.0.1-18081"), ("host", "llama-cpp")),
    ]
    assert "s3cret" not in text and "ana" not in text
    values = scrape(registry)
    for address, held, taken in (("127.0.0.1-18080", 1, 0), ("127.0.0.1-18081", 2, 1)):
        labels = (("address", address), ("host", "llama-cpp"))
        assert values[("evalflow_host_slots", labels)] == held
        assert values[("evalflow_requests_in_flight", labels)] == taken


def test_no_scrape_repeats_a_series(engine):
    """A series (name and label set) twice in one scrape is invalid to Prometheus. Every
    family populated at once: generations, failures, runs, verdicts, GPUs, and slot
    readings that name one host twice, list one limit twice (a Prefect page read while
    limits were added) and two lock folders whose host names read alike."""
    _name_host(engine, "h", "http://127.0.0.1:80")
    slots = [
        HostSlots("ollama-host-127.0.0.1-80", 2, 1),
        HostSlots("ollama-host-127.0.0.1-80", 2, 0),
        HostSlots("ollama-host-a-b-80", 1, 1),  # http://a_b:80
        HostSlots("ollama-host-a-b-80", 1, 1),  # http://a-b:80
    ]
    gpus = [GpuReading(0, 50.0, 2**30, 100.0, 10.0), GpuReading(1, 10.0, 2**30, 90.0, 5.0)]
    text = generate_latest(
        metrics_registry(engine, host_slots=lambda: slots, gpus=lambda: gpus)
    ).decode()
    series = [
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    assert len(series) > 20
    assert sorted(k for k in set(series) if series.count(k) > 1) == []
    values = scrape(metrics_registry(engine, host_slots=lambda: slots))
    assert values[("evalflow_host_slots", (("address", "127.0.0.1-80"), ("host", "h")))] == 4
    in_flight = (("address", "a-b-80"), ("host", "a-b-80"))
    assert values[("evalflow_requests_in_flight", in_flight)] == 2


def test_a_database_that_does_not_answer_is_a_zero_not_a_failed_scrape(tmp_path):
    missing = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'results.db'}")
    values = scrape(metrics_registry(missing))
    assert values == {("evalflow_database_up", ()): 0}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("BackendOverloaded: 503 busy", "BackendOverloaded"),
        ("TimeoutError", "TimeoutError"),
        ("the model said: no", "other"),
        (None, "other"),
        ("", "other"),
    ],
)
def test_reason_classes_are_bounded(error, reason):
    assert reason_class(error) == reason


def _prefect(status: str):
    async def check(timeout_s: float) -> Check:
        return Check("prefect api", status, f"http://x:4200/api: {status}")

    return check


def test_health_endpoints_say_what_failed(engine, tmp_path):
    live = TestClient(observability_app(engine, prefect_check=_prefect("ok")))
    assert live.get("/health/live").status_code == 200
    ready = live.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert [c["component"] for c in ready.json()["checks"]] == ["database", "prefect api"]

    down = TestClient(observability_app(engine, prefect_check=_prefect("fail")))
    answer = down.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json()["failed"] == ["prefect api: http://x:4200/api: fail"]

    gone = create_engine(f"sqlite:///{tmp_path / 'nowhere' / 'r.db'}")
    answer = TestClient(observability_app(gone)).get("/health/ready")
    assert answer.status_code == 503 and answer.json()["failed"][0].startswith("database: ")


def test_deep_health_checks_every_host_of_the_spec(engine, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with running_standin(StandInConfig(models=("llama3.2:3b",))) as server:
        spec = {
            "name": "deep",
            "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
            "models": ["llama3.2:3b"],
            "hosts": [
                {"name": "alive", "url": server.url, "slots": 1},
                {"name": "dead", "url": f"http://127.0.0.1:{closed}", "slots": 1},
            ],
        }
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        app = observability_app(engine, prefect_check=_prefect("ok"), timeout_s=2.0)
        answer = TestClient(app).get("/health/deep", params={"spec": str(path)})
        healthy = observability_app(engine, default_spec=None)
    assert answer.status_code == 503, answer.text
    body = answer.json()
    statuses = {c["component"]: c["status"] for c in body["checks"]}
    assert statuses == {
        "database": "ok",
        "prefect api": "ok",
        "spec": "ok",
        "host alive": "ok",
        "host dead": "fail",
    }
    assert [f.split(":")[0] for f in body["failed"]] == ["host dead"]
    assert TestClient(healthy).get("/health/deep").status_code == 400  # no spec at all


def test_deep_health_fails_on_a_silent_host_no_run_of_ours_uses(engine, tmp_path):
    # a hung server (SIGSTOP: accepts, never answers) was "busy" and HTTP 200
    with failing_server("silent") as hung:
        spec = {
            "name": "deep",
            "suite": str(REPO / "benchmarks/suites/qa-short.jsonl"),
            "models": ["llama3.2:3b"],
            "hosts": [{"name": "hung", "url": hung.url, "slots": 1}],
        }
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        app = observability_app(engine, prefect_check=_prefect("ok"), timeout_s=1.0)
        answer = TestClient(app).get("/health/deep", params={"spec": str(path)})
    assert answer.status_code == 503, answer.text
    assert answer.json()["failed"] == [
        f"host hung: {hung.url}: not answering: connected but no answer within 1 s, and no "
        "evalflow run is using it (a hung server? restart it)"
    ]


def test_the_endpoints_mount_in_another_app(engine):
    from fastapi import FastAPI

    outer = FastAPI()
    outer.mount("/ops", observability_app(engine))
    client = TestClient(outer)
    assert client.get("/ops/health/live").json()["status"] == "ok"
    text = client.get("/ops/metrics").text
    assert "evalflow_generations_total" in text
    openmetrics = client.get("/ops/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_a_scrape_reads_only_at_scrape_time(engine):
    registry = metrics_registry(engine)  # registering queries nothing: no describe()
    with Session(engine) as session:
        record_verdict(session, "n3", "other-series", baseline=None, regressed=True, rules=["x"])
        session.commit()
    assert scrape(registry)[("evalflow_regression_detected", (("series", "other-series"),))] == 1


def test_a_trend_alarm_of_the_series_watch_is_a_gauge_per_series(tmp_path):
    """A series run from cron or CI (`run --series` + `trends`) alarmed and no metric
    said so: evalflow_regression_detected is only the nightly deployment's rule check.
    The watch's own verdict (the function `trends` uses) is exported per series, and
    recomputed once a run of the series is stored."""
    from evaluation.series import watch_series
    from tests.support.series_db import add_nights

    engine = make_engine(f"sqlite:///{tmp_path / 'series.db'}")
    with Session(engine) as session:
        add_nights(session, 10, series="watched", seed=1)
        session.commit()
    registry = metrics_registry(engine)
    key = ("series", "watched"), ("simulated", "false")
    assert scrape(registry)[("evalflow_trend_alarm", key)] == 0
    with Session(engine) as session:
        add_nights(session, 1, series="watched", drop_from=10, slow_from=10, seed=1, first=10)
        session.commit()
        alarms = watch_series(session, "watched").alarms
    assert len(alarms) == 2  # the drop and the slowdown of one config, tonight
    values = scrape(registry)
    assert values[("evalflow_trend_alarm", key)] == 1
    assert values[("evalflow_trend_alarm_streams", key)] == 2
    assert values == scrape(registry)  # nothing changed: the kept verdict
    with Session(engine) as session:  # newcomer ncmon-6: a simulated series' alarm fired
        session.exec(update(Experiment).values(simulated=True))  # the alert as a real one's
        session.commit()
    simulated = ("series", "watched"), ("simulated", "true")
    values = scrape(registry)
    assert values[("evalflow_trend_alarm", simulated)] == 1
    assert ("evalflow_trend_alarm", key) not in values


def dashboard_expressions() -> list[str]:
    """Every PromQL expression a panel of docs/grafana-dashboard.json queries."""
    dashboard = json.loads((REPO / "docs/grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_grafana_dashboard_charts_every_series_evalflow_exports_and_no_other(engine):
    """Both directions: a charted name evalflow does not export is an empty panel, and an
    exported series no panel charts is one operations.md says the dashboard charts (M1:
    the trend watch's two series, the nightly check's time and GPU memory were in none)."""
    registry = metrics_registry(
        engine,
        host_slots=lambda: [HostSlots("a", 1, 1)],
        gpus=lambda: [GpuReading(0, 1.0, 1, 1.0, 1.0)],
    )
    exported = {s.name for family in registry.collect() for s in family.samples}
    charted = {
        name for expr in dashboard_expressions() for name in re.findall(r"evalflow_[a-z_]+", expr)
    }
    assert charted and charted <= exported, charted - exported
    families = {f.name for f in registry.collect()}
    assert {
        "evalflow_generations",
        "evalflow_request_duration_seconds",
        "evalflow_runs",
        "evalflow_trend_alarm",
        "evalflow_gpu_memory_used_bytes",
    } <= families
    # a family's samples: a counter's _total, a histogram's _bucket, _sum and _count
    suffixes = ("", "_total", "_bucket", "_sum", "_count")
    uncharted = {f for f in families if not any(f + s in charted for s in suffixes)}
    assert not uncharted, f"exported, charted by no panel: {sorted(uncharted)}"
