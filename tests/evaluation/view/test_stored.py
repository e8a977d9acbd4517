"""The view's pages that read every score are computed once and stored: read back
unchanged while their inputs are, computed again after a rescore changes them."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from evaluation.itembank.schema import ItemBank
from evaluation.storage.models import Aggregate, Experiment, ViewPage
from evaluation.view import stored
from evaluation.view.summary import experiment_summary, summary_fingerprint
from tests.support.review_db import build_review_db


def _summaries_computed(monkeypatch) -> list[str]:
    """The experiments whose summary is computed from here on (not read back)."""
    computed: list[str] = []
    monkeypatch.setattr(
        stored,
        "experiment_summary",
        lambda s, e, **kw: computed.append(e) or experiment_summary(s, e, **kw),
    )
    return computed


def test_pages_are_stored_once_and_computed_again_when_their_inputs_change(tmp_path, monkeypatch):
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    a, b = (c.hash for c in db.configs[:2])
    with Session(db.engine) as session:
        stored.store_pages(session, db.experiment)
        session.commit()
        first = stored.summary_page(session, db.experiment)
        flips = stored.flips_page(session, db.experiment)
        pair = stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
        session.commit()
        pages = set(session.exec(select(ViewPage.page)).scalars())
    assert pages == {"summary", "matrix", "estimates", "pipelines", f"pair exact_match {a} {b}"}
    assert first == experiment_summary(Session(db.engine), db.experiment)

    computed = _summaries_computed(monkeypatch)
    monkeypatch.setattr(stored, "pair_summary", lambda *args: computed.append("pair"))
    with Session(db.engine) as session:  # read back, equal, nothing computed
        assert stored.summary_page(session, db.experiment) == first
        assert stored.flips_page(session, db.experiment) == flips
        assert stored.pair_summary_page(session, db.experiment, a, b, "exact_match") == pair
    assert computed == []

    with Session(db.engine) as session:  # a rescore changes the aggregates
        row = session.exec(select(Aggregate).where(Aggregate.config_hash == a)).scalars().first()
        row.mean = 0.123
        session.commit()
        again = stored.summary_page(session, db.experiment)
        stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
    assert computed == [db.experiment, "pair"]
    assert again != first


def _set_status(engine, experiment: str, status: str) -> None:
    with Session(engine) as session:
        row = session.exec(select(Experiment).where(Experiment.name == experiment)).scalar_one()
        row.status = status
        session.commit()


def test_pages_stored_before_the_run_ends_are_read_back_once_it_ended_so(tmp_path, monkeypatch):
    """A sweep stores its pages before its report (``ending``: the status it ends with):
    once it has ended so they are read back, showing that status; had it ended another
    way (its report failed), they are computed again."""
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    _set_status(db.engine, db.experiment, "running")
    with Session(db.engine) as session:
        stored.store_pages(session, db.experiment, ending="completed")
        session.commit()
    _set_status(db.engine, db.experiment, "completed")
    computed = _summaries_computed(monkeypatch)
    monkeypatch.setattr(stored, "flip_matrix", lambda *args: computed.append("flips"))
    with Session(db.engine) as session:
        shown = stored.summary_page(session, db.experiment)
        flips = stored.flips_page(session, db.experiment)
    assert computed == []
    assert (shown.status, shown.running) == ("completed", False)
    assert shown == experiment_summary(Session(db.engine), db.experiment)
    assert flips is not None

    _set_status(db.engine, db.experiment, "failed")
    with Session(db.engine) as session:
        assert stored.summary_page(session, db.experiment).status == "failed"
    assert computed == [db.experiment]


def test_pages_stored_by_a_version_with_other_fields_are_computed_again(tmp_path, monkeypatch):
    """A database filled by an older evalflow holds pages of another shape (its summary
    rows lacked latency_mean_s): reading one must not fail, it is computed again."""
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    with Session(db.engine) as session:
        stored.store_pages(session, db.experiment)
        page = session.get(ViewPage, (db.experiment_id, "summary"))
        payload = dict(page.payload)
        payload["rows"] = [{k: v for k, v in r.items() if k != "label"} for r in payload["rows"]]
        page.payload = payload  # as an older version stored it
        session.add(page)
        session.commit()
    monkeypatch.setattr(stored, "PAGE_FORMAT", "an-older-format")
    with Session(db.engine) as session:
        shown = stored.summary_page(session, db.experiment)
    assert shown == experiment_summary(Session(db.engine), db.experiment)


def test_stored_flip_matrix_and_pair_summary_read_back_equal_to_computed(tmp_path, monkeypatch):
    """Read back from JSON, every field has its declared type again (tuples, not lists)."""
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    a, b = (c.hash for c in db.configs[:2])
    with Session(db.engine) as session:  # nothing stored yet: computed, then stored
        flips = stored.flips_page(session, db.experiment)
        pair = stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
        session.commit()
    assert flips is not None and flips.only_best and pair is not None

    def computed(*args):
        raise AssertionError("computed again")

    monkeypatch.setattr(stored, "flip_matrix", computed)
    monkeypatch.setattr(stored, "pair_summary", computed)
    with Session(db.engine) as session:
        assert stored.flips_page(session, db.experiment) == flips
        assert stored.pair_summary_page(session, db.experiment, a, b, "exact_match") == pair


def test_full_suite_estimates_are_stored_and_computed_again_when_a_bank_is_added(
    tmp_path, monkeypatch
):
    """A config that ran part of the suite: its estimate is stored as the run ends and read
    back equal, with no estimate computed; a new item bank of the suite makes it stale."""
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    with db.engine.begin() as connection:  # one generation of one config failed
        connection.exec_driver_sql(
            "UPDATE generations SET status = 'failed' WHERE id = (SELECT min(id) FROM generations)"
        )
    with Session(db.engine) as session:
        stored.store_pages(session, db.experiment)
        session.commit()
    fresh = stored._estimates(Session(db.engine), db.experiment_id)
    assert fresh.rows and "subset mean from 5 of 6 cases" in fresh.rows[0][1]

    computed: list[int] = []
    estimates = stored.experiment_estimates
    monkeypatch.setattr(
        stored, "experiment_estimates", lambda s, e: computed.append(e) or estimates(s, e)
    )
    with Session(db.engine) as session:
        assert stored.estimates_page(session, db.experiment) == fresh
    assert computed == []

    with Session(db.engine) as session:
        suite = session.get(Experiment, db.experiment_id).suite
        session.add(ItemBank(suite=suite, metric="another", version=1, suite_digest="x"))
        session.commit()
        assert stored.estimates_page(session, db.experiment) == fresh
        assert stored.estimates_page(session, db.experiment) == fresh
    assert computed == [db.experiment_id]


def _fingerprint_steps(tmp_path, n_cases: int) -> int:
    """SQLite's virtual machine steps (in hundreds) of the summary's fingerprint of an
    experiment of ``n_cases`` cases, nobody rated."""
    db = build_review_db(f"sqlite:///{tmp_path / f'r{n_cases}.db'}", n_cases=n_cases)
    steps = [0]
    with Session(db.engine) as session:
        summary_fingerprint(session, db.experiment)  # the mappers and statements set up
        raw = session.connection().connection.driver_connection
        raw.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
        summary_fingerprint(session, db.experiment)
        raw.set_progress_handler(None, 0)
    return steps[0]


def test_the_summary_fingerprint_does_not_go_through_every_generation(tmp_path):
    """It is read on every request of the view's summary (twice for the first page):
    looking the ratings up through the experiment's generations cost 13 ms at 100,000
    generations with no rating at all; now the same few steps at any size."""
    assert _fingerprint_steps(tmp_path, 200) == _fingerprint_steps(tmp_path, 6)


def test_pages_computed_by_other_statistics_code_are_computed_again(tmp_path, monkeypatch):
    """A pair page stored before the paired interval changed (0/1 scores: a point where
    every case differed alike, now Tango's interval) must not be read back as it was."""
    db = build_review_db(f"sqlite:///{tmp_path / 'results.db'}", n_cases=6)
    a, b = (c.hash for c in db.configs[:2])
    with Session(db.engine) as session:
        stored.store_pages(session, db.experiment)
        stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
        session.commit()
    computed = _summaries_computed(monkeypatch)
    monkeypatch.setattr(stored, "pair_summary", lambda *args: computed.append("pair"))
    with Session(db.engine) as session:
        stored.summary_page(session, db.experiment)
        stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
        assert computed == []
        monkeypatch.setattr(stored, "statistics_code", lambda: "older statistics code")
        stored.summary_page(session, db.experiment)
        stored.pair_summary_page(session, db.experiment, a, b, "exact_match")
    assert computed == [db.experiment, "pair"]
