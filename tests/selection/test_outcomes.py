import pytest
from sqlmodel import Session

from selection import recommend, record_outcome
from selection.frame import validate_training_frame
from selection.outcomes import OUTCOME_WEIGHT, UnknownRecommendation, outcomes_frame
from selection.schema import RecommendationLog
from selection.versions import PromotionDecision, save_version, train_and_maybe_promote

from .conftest import FAST


@pytest.fixture
def stored(engine, trained):
    with Session(engine) as session:
        save_version(session, trained, PromotionDecision(True, "test", basis="first version"))
        session.commit()
    return engine


def test_record_outcome_attaches_to_the_log(stored):
    answer = recommend("qa", max_latency_s=1.0, engine=stored)
    record_outcome(answer.id, quality=0.4, latency_s=0.3, engine=stored)
    with Session(stored) as session:
        log = session.get(RecommendationLog, answer.id)
        assert (log.outcome_quality, log.outcome_latency_s) == (0.4, 0.3)
        assert log.outcome_at is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "quality and/or latency_s"),
        ({"quality": 1.5}, r"\[0, 1\]"),
        ({"latency_s": -2.0}, "non-negative"),
    ],
)
def test_bad_outcomes_raise_value_error(stored, kwargs, match):
    answer = recommend("qa", engine=stored)
    with pytest.raises(ValueError, match=match):
        record_outcome(answer.id, engine=stored, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"quality": "high"}, "quality must be a number in [0, 1], got 'high' (str)"),
        ({"quality": True}, "quality must be a number in [0, 1], got True (bool)"),
        ({"latency_s": "1.4"}, "latency_s must be a non-negative number of seconds, got '1.4'"),
    ],
)
def test_an_outcome_that_is_no_number_is_named(stored, kwargs, said):
    """Recheck R6: quality="high" leaked "'<=' not supported between instances of 'int'
    and 'str'", naming neither the argument nor what it takes."""
    answer = recommend("qa", engine=stored)
    with pytest.raises(TypeError) as refused:
        record_outcome(answer.id, engine=stored, **kwargs)
    assert str(refused.value).startswith(said)


def test_outcome_needs_a_recommended_config(stored):
    with pytest.raises(UnknownRecommendation, match="no recommendation with id 42"):
        record_outcome(42, quality=1.0, engine=stored)
    infeasible = recommend("qa", max_latency_s=0.001, engine=stored)
    with pytest.raises(UnknownRecommendation, match="recommended no configuration"):
        record_outcome(infeasible.id, quality=1.0, engine=stored)


def test_an_answer_not_logged_is_refused_up_front(read_only_trained):
    """The newcomer's F16: an answer from a read-only database has id None, and
    `record_outcome(answer.id, ...)` leaked SQLAlchemy's "fully NULL primary key identity"
    warning before "no recommendation with id None"."""
    import warnings

    read_only, _ = read_only_trained
    answer = recommend("qa", max_latency_s=1.0, database_url=read_only)
    assert answer.status == "ok" and answer.id is None and answer.unlogged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnknownRecommendation) as refused:
            record_outcome(answer.id, quality=0.5, latency_s=1.0, database_url=read_only)
    assert str(refused.value) == (
        "this answer was not logged (its database took no write, as its `unlogged` note says, "
        "or it was refused: status 'unavailable'): there is nothing to record an outcome on"
    )


def test_outcomes_become_weighted_training_rows(stored):
    answer = recommend("qa", max_latency_s=1.0, engine=stored)
    record_outcome(answer.id, latency_s=0.25, engine=stored)
    with Session(stored) as session:
        rows = validate_training_frame(outcomes_frame(session))
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["suite"] == "outcomes:qa" and row["weight"] == OUTCOME_WEIGHT
    assert row["config_hash"] == answer.choice.config_hash and row["latency_s"] == 0.25
    assert row["num_predict"] == answer.choice.params["num_predict"]
    assert row["quality"] != row["quality"]  # NaN: only latency was reported


def test_outcomes_flow_into_training(stored, frame, trained):
    chosen = recommend("qa", max_latency_s=1.0, engine=stored).choice.config_hash
    for _ in range(30):
        answer = recommend("qa", max_latency_s=1.0, engine=stored)
        record_outcome(answer.id, quality=0.0, engine=stored)
    outcome = train_and_maybe_promote(stored, frame, hyperparameters=FAST)
    assert outcome.n_outcomes == 30
    assert outcome.result.n_generations == len(frame)  # generations: outcomes apart
    assert "outcomes:qa" in set(outcome.result.rows["suite"])
    before = trained.model.predict(trained.model.configs, "qa").loc[chosen, "quality"]
    after = outcome.result.model.predict(outcome.result.model.configs, "qa").loc[chosen, "quality"]
    assert after < before - 0.02


def test_outcomes_feed_the_fit_not_what_was_measured(stored, frame, trained):
    """An outcome is no case of a suite: after one, a `next:` line asked to measure each
    config "on outcomes:qa", and the pick's measured p95 took the application's latency
    in among its calls."""
    answer = recommend("qa", max_latency_s=1.0, engine=stored)
    record_outcome(answer.id, quality=0.8, latency_s=1.4, engine=stored)
    model = train_and_maybe_promote(stored, frame, hyperparameters=FAST).result.model
    assert not model.case_scores["case"].str.startswith("outcomes:").any()
    columns = ["config_hash", "task_type", "n_cases", "latency_p95"]
    assert model.evidence[columns].equals(trained.model.evidence[columns])


def test_outcomes_alone_are_no_unseen_data_to_compare_versions_on(stored, frame, trained):
    """Recheck: outcomes recorded on 3 configs made the next retrain compare the versions
    on them alone, "on 3 (config, suite) aggregates version 1 never saw": the
    application's own judgements, as if new suites had been measured. They are set apart;
    the new version is measured in cross-validation, outcomes included."""
    for config_hash in trained.model.configs.index[:3]:
        answer = recommend("qa", candidates=[config_hash], engine=stored)
        record_outcome(answer.id, quality=0.1, engine=stored)
    decision = train_and_maybe_promote(stored, frame, hyperparameters=FAST).decision
    assert decision.basis == "cross-validation", decision.reason
    assert "(no data version 1 had not seen, recorded outcomes apart (of 3 configs))" in (
        decision.reason
    )
