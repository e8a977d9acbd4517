"""The review flow pauses with a form per pair and stores what the rater sends; the
report task writes the HTML file and publishes its summary as an artifact."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import PrefectHTTPStatusError
from prefect.flow_runs import resume_flow_run
from prefect.input.run_input import keyset_from_paused_state
from prefect.settings import PREFECT_UI_URL
from sqlmodel import Session

from evaluation.review.frames import ratings_frame
from flows.review import PairRating, review
from tasks.report import publish_report
from tests.flows.test_evaluate import artifact_data
from tests.support.review_db import build_review_db

pytestmark = pytest.mark.usefixtures("prefect_harness")

FORM = {
    "accuracy_a": 5,
    "completeness_a": 4,
    "relevance_a": 5,
    "speed_a": 2,
    "accuracy_b": 2,
    "completeness_b": 2,
    "relevance_b": 3,
    "speed_b": 5,
    "preference": "A",
    "notes": "A answers the question",
}


def _paused_form(after_state_ids: set, timeout_s: float = 60.0) -> tuple[FlowRun, dict, dict]:
    """The review run once it is paused in a state not seen before and its form is
    saved, with the form's description and schema. Prefect saves the form just after it
    sets the Paused state, so a run seen paused may not have its form yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["review"])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=10,
            )
            for run in runs:
                if run.state and run.state.is_paused() and run.state.id not in after_state_ids:
                    keyset = keyset_from_paused_state(run.state)
                    try:
                        description = client.read_flow_run_input(run.id, keyset["description"])
                        schema = client.read_flow_run_input(run.id, keyset["schema"])
                    except PrefectHTTPStatusError as exc:
                        if exc.response.status_code != 404:  # 404: the form is not saved yet
                            raise
                        continue
                    return run, json.loads(description), json.loads(schema)
        time.sleep(0.2)
    raise AssertionError("the review flow did not pause with its form")


def test_the_review_flow_pauses_per_pair_and_stores_each_form(database_url):
    db = build_review_db(database_url, n_cases=4)
    result = {}

    def run():
        result["summary"] = review(
            experiment=db.experiment,
            rater="ann",
            pairs=2,
            database=database_url,
            poll_interval_s=1,
            timeout_s=120,
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    seen: set = set()
    descriptions = []
    for _ in range(2):
        paused, description, schema = _paused_form(seen)
        seen.add(paused.state.id)
        descriptions.append(description)
        assert schema["properties"]["accuracy_a"]["maximum"] == 5
        resume_flow_run(paused.id, run_input=FORM)
    thread.join(timeout=60)
    assert result["summary"] == {"experiment": db.experiment, "rater": "ann", "rated": 2}

    for text in descriptions:
        assert "What is the capital" in text and "**Output A**" in text
        # blinded: no latency (the slower output would name the bigger model)
        assert "shown once the pair is revealed" in text.split("**Speed**")[1]
        assert " s, B " not in text
        assert not any(c.label in text or c.hash in text for c in db.configs)
    with Session(db.engine) as session:
        ratings = ratings_frame(session, db.experiment_id)
    assert len(ratings) == 2 * 9
    prefs = ratings[ratings.criterion == "preference"]
    assert set(prefs.preference) == {"A"} and set(prefs.notes) == {"A answers the question"}
    speed = ratings[ratings.criterion == "speed"].set_index("generation_id").stars
    assert sorted(speed) == [2, 2, 5, 5]


def test_the_form_is_validated_and_maps_to_stars_per_side():
    rating = PairRating(**FORM)
    assert rating.stars()["A"] == {"accuracy": 5, "completeness": 4, "relevance": 5, "speed": 2}
    with pytest.raises(ValueError):
        PairRating(**(FORM | {"speed_b": 6}))


def test_publish_report_writes_the_file_and_shows_its_summary_in_the_ui(database_url, tmp_path):
    db = build_review_db(database_url, name="linked report", n_cases=4)

    @flow
    def publish():
        return publish_report(db.engine, db.experiment_id, tmp_path)

    state = publish(return_state=True)
    path = state.result()
    assert path == (tmp_path / "evalflow-linked-report-report.html").resolve()
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    summary = asyncio.run(artifact_data("evalflow-linked-report-report"))
    # what a browser on the Prefect UI can show: no file:// link, the verdict and the top
    # of the leaderboard in the artifact itself, links into the UI that open
    assert "file://" not in summary
    assert summary.startswith("# Report: linked report\n")
    assert "**Verdict on " in summary and "| #1 | " in summary
    ui = PREFECT_UI_URL.value()  # the UI of the API the flow ran against
    assert ui.startswith("http://127.0.0.1:")
    assert f"({ui}/artifacts/key/evalflow-linked-report-leaderboard)" in summary
    assert f"({ui}/runs/flow-run/{state.state_details.flow_run_id})" in summary
    assert f"`{path}` on the machine that ran the flow" in summary
