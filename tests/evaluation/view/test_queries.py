"""The view's reads: pages that tile the whole list, filters that keep exactly the rows
they name, sorts with missing values last, two configs side by side, one generation
with its input as the model received it and its pipeline stages."""

from __future__ import annotations

import pytest
from sqlalchemy import delete
from sqlmodel import Session

from evaluation.storage.models import Generation, Score, StageRow
from evaluation.storage.repository import generations_frame, scores_frame
from evaluation.view.detail import generation_detail
from evaluation.view.queries import Filters, case_generations, generation_page, pair_page
from tests.support.review_db import build_review_db


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('view') / 'results.db'}"
    db = build_review_db(url, n_cases=8, chat=True)
    with Session(db.engine) as session:
        frame = generations_frame(session, db.experiment_id)
        failed = session.get(Generation, int(frame.id.iloc[3]))
        failed.status, failed.error, failed.latency_s = "failed", "timed out after 60 s", None
        session.exec(delete(Score).where(Score.generation_id == failed.id))  # as never scored
        session.get(Generation, int(frame.id.iloc[5])).truncated = True
        session.commit()
    return db


def _page(db, filters=None, **kw):
    with Session(db.engine) as session:
        return generation_page(session, db.experiment_id, filters or Filters(), **kw)


def _frames(db):
    with Session(db.engine) as session:
        return generations_frame(session, db.experiment_id), scores_frame(session, db.experiment_id)


def test_pages_tile_the_whole_list_in_order(db):
    gens, _ = _frames(db)
    first = _page(db, per_page=5)
    assert (first.total, first.pages) == (24, 5)
    ids = [r["id"] for p in range(1, 6) for r in _page(db, per_page=5, page=p).rows]
    assert ids == sorted(gens.id.tolist())
    assert _page(db, per_page=5, page=6).rows == []
    row = first.rows[0]
    assert set(row["scores"]) == {"exact_match", "contains"}
    assert row["output"] == gens.set_index("id").output[row["id"]]


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        (Filters(case="7"), lambda g, s: g.case_id.str.contains("7")),
        (Filters(case="c05"), lambda g, s: g.case_id == "c05"),
        (Filters(group="g1"), lambda g, s: g.case_group == "g1"),
        (Filters(failed=True), lambda g, s: g.status == "failed"),
        (Filters(failed=False), lambda g, s: g.status == "ok"),
        (Filters(truncated=True), lambda g, s: g.truncated.astype(bool)),
        (
            Filters(metric="exact_match", max_value=0.5),
            lambda g, s: g.id.isin(s[(s.metric == "exact_match") & (s.value <= 0.5)].generation_id),
        ),
        (
            Filters(metric="exact_match", min_value=1),
            lambda g, s: g.id.isin(s[(s.metric == "exact_match") & (s.value >= 1)].generation_id),
        ),
    ],
)
def test_each_filter_keeps_exactly_the_rows_it_names(db, filters, keep):
    gens, scores = _frames(db)
    expected = sorted(gens[keep(gens, scores)].id.tolist())
    assert 0 < len(expected) < len(gens)
    page = _page(db, filters, per_page=100)
    assert [r["id"] for r in page.rows] == expected and page.total == len(expected)


def test_filters_combine_and_configs_filter_by_hash(db):
    gens, _ = _frames(db)
    config = db.configs[1].hash
    filters = Filters(configs=(config,), group="g0", failed=False)
    expected = gens[
        (gens.config_hash == config) & (gens.case_group == "g0") & (gens.status == "ok")
    ]
    assert [r["id"] for r in _page(db, filters).rows] == sorted(expected.id.tolist())
    assert _page(db, Filters(case="_")).total == 0  # LIKE's wildcards are matched literally


def test_sorting_by_a_metric_or_latency_puts_missing_values_last(db):
    rows = _page(db, Filters(metric="exact_match"), sort="metric", direction="desc").rows
    values = [r["scores"].get("exact_match") for r in rows]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True) and values[-1] is None  # the failed one
    latencies = [r["latency_s"] for r in _page(db, sort="latency").rows]
    assert latencies[:-1] == sorted(latencies[:-1]) and latencies[-1] is None


def test_two_configs_side_by_side_with_the_score_difference(db):
    a, b = db.configs[0].hash, db.configs[1].hash
    with Session(db.engine) as session:
        page = pair_page(session, db.experiment_id, a, b, per_page=100)
        apart = pair_page(
            session, db.experiment_id, a, b, Filters(metric="exact_match"), sort="|diff|"
        )
        only_b_worse = pair_page(
            session, db.experiment_id, a, b, Filters(metric="exact_match", min_value=0.5)
        )
        either_failed = pair_page(session, db.experiment_id, a, b, Filters(failed=True))
        both_whole = pair_page(session, db.experiment_id, a, b, Filters(truncated=False))
    assert page.total == 8
    for row in page.rows:
        assert row["a"]["config_hash"] == a and row["b"]["config_hash"] == b
        assert row["a"]["case_id"] == row["b"]["case_id"] == row["case_id"]
        for metric, d in row["diff"].items():
            assert d == row["a"]["scores"][metric] - row["b"]["scores"][metric]
    # config 1 misses every second case (see output_for): those come first
    first = apart.rows[0]
    assert first["diff"]["exact_match"] == 1.0 and "Town" in first["b"]["output"]
    assert only_b_worse.total == sum(r["diff"].get("exact_match", 0) >= 0.5 for r in page.rows)
    # the fixture failed config 0's c03 and truncated its c05
    assert [r["case_id"] for r in either_failed.rows] == ["c03"]
    assert "c05" not in [r["case_id"] for r in both_whole.rows] and both_whole.total == 7


def test_a_generation_shows_its_input_as_sent_references_and_stages(db):
    gens, _ = _frames(db)
    generation_id = int(gens[gens.case_id == "c02"].id.iloc[0])
    row = gens[gens.id == generation_id].iloc[0]
    key = {
        "experiment_id": db.experiment_id,
        "config_hash": row.config_hash,
        "case_uid": row.case_uid,
        "sample_index": 0,
    }
    with db.engine.begin() as conn:  # as the pipelines write them: a row per model call
        conn.execute(
            StageRow.__table__.insert(),
            [key | {"position": 1, "stage": "reduce"}, key | {"position": 0, "stage": "map"}],
        )
    with Session(db.engine) as session:
        detail = generation_detail(session, db.experiment_id, generation_id)
        assert generation_detail(session, db.experiment_id + 1, generation_id) is None
        other = generation_detail(session, db.experiment_id, generation_id + 1)
    roles = [m["role"] for m in detail["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert detail["messages"][0]["content"] == "You are a geography tutor for case 2."
    assert detail["messages"][-1]["content"] == "What is the capital of country 2?"
    assert detail["references"] == ["City 2"]
    assert [r["stage"] for r in detail["stages"]["stages"]] == ["map", "reduce"]
    assert "case_runs" not in detail["stages"]  # no case run row was written here
    assert other["stages"] == {}


def test_a_case_under_every_config_in_sweep_order(db):
    with Session(db.engine) as session:
        rows = case_generations(session, db.experiment_id, "c04")
    assert [r["config_hash"] for r in rows] == [c.hash for c in db.configs]
    assert all(r["case_id"] == "c04" for r in rows)


def test_text_search_matches_output_input_and_reference(db):
    gens, _ = _frames(db)
    town = _page(db, Filters(text="TOWN"), per_page=100)  # any case
    expected = gens[gens.output.fillna("").str.lower().str.contains("town")]
    assert {r["id"] for r in town.rows} == set(expected.id) and town.total > 0
    # "City 3" is case c03's reference: all its generations, right or wrong
    by_reference = _page(db, Filters(text="city 3"), per_page=100)
    assert {r["case_id"] for r in by_reference.rows} == {"c03"} and by_reference.total == 3
    by_input = _page(db, Filters(text="capital of country 5"), per_page=100)
    assert {r["case_id"] for r in by_input.rows} == {"c05"}
    assert _page(db, Filters(text="100%")).total == 0  # a wildcard is a character


def test_rows_carry_their_input_and_reference(db):
    row = _page(db, Filters(case="c02"), per_page=1).rows[0]
    assert "capital of country 2" in row["input"] and row["reference"] == "City 2"
    assert row["more_references"] == 0
