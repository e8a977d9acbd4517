"""Bad input on the metrics and health endpoints: a 4xx with a JSON body that says what
was wrong, nothing written to the results database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from evaluation.observability import observability_app
from evaluation.storage.db import make_engine
from tests.bad_input.test_corpus import row_counts
from tests.support.results_db import add_experiment, make_config, make_suite


@pytest.fixture
def client(tmp_path):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = make_engine(url)
    with Session(engine) as session:
        add_experiment(session, "demo", make_suite(2), {make_config(): {"exact_match": [1, 0]}})
        session.commit()
    before = row_counts(url)
    yield TestClient(observability_app(engine))
    assert row_counts(url) == before  # nothing written by any refusal


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "error"),
    [
        ("GET", "/health/deep", {}, 400, "spec: give ?spec=PATH"),
        (
            "GET",
            "/health/deep",
            {"spec": "/etc/hostname"},
            400,
            "not a sweep spec (expected a .yaml",
        ),
        (
            "GET",
            "/health/deep",
            {"spec": "/nowhere/spec.yaml"},
            404,
            "spec=/nowhere/spec.yaml: no such file",
        ),
        ("GET", "/health/deep", {"spec": "/tmp"}, 400, "not a sweep spec"),
        ("GET", "/health/nope", {}, 404, "Not Found"),
        ("POST", "/metrics", {}, 405, "Method Not Allowed"),
        ("DELETE", "/health/ready", {}, 405, "Method Not Allowed"),
    ],
)
def test_bad_requests_get_a_4xx_saying_what_was_wrong(client, method, path, params, status, error):
    answer = client.request(method, path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert error in answer.json()["error"]


def test_an_empty_spec_is_refused_not_the_default_spec(tmp_path):
    default = tmp_path / "default.yaml"
    default.write_text("name: x\n")
    app = observability_app(make_engine(f"sqlite:///{tmp_path / 'r.db'}"), default_spec=default)
    answer = TestClient(app).get("/health/deep", params={"spec": ""})
    assert answer.status_code == 400 and "spec: empty" in answer.json()["error"]


def test_a_spec_that_does_not_load_is_a_failed_check_not_a_crash(client, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nmodels: [\n")
    answer = client.get("/health/deep", params={"spec": str(broken)})
    assert answer.status_code == 503
    (failed,) = [f for f in answer.json()["failed"] if f.startswith("spec:")]
    assert str(broken) in failed
