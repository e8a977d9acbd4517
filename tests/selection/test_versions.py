import dataclasses

import numpy as np
import pandas as pd
import pytest
import sklearn
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from evaluation.storage.db import EVALUATION_TABLES, create_tables
from selection import versions
from selection.frame import validate_training_frame
from selection.schema import TABLES, SelectorBlob, SelectorVersion
from selection.training import Hyperparameters, train_selector
from selection.versions import (
    _model_cache,
    _promotion,
    _same_data,
    current_version,
    deserialize,
    list_versions,
    load_model,
    promote,
    serialize,
    train_and_maybe_promote,
)

from .conftest import FAST, synthetic_frame

USELESS = Hyperparameters(ensemble_size=2, max_iter=1, learning_rate=0.01, n_splits=2)
"""A version trained in a fraction of FAST's time, where what a test asserts does not
depend on how well it predicts."""
TWO_ROUNDS = dataclasses.replace(USELESS, max_iter=2)


def test_first_version_is_promoted_and_described(engine, frame):
    outcome = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)
    assert outcome.decision.promoted and outcome.decision.basis == "first version"
    with Session(engine) as session:
        row = current_version(session)
        assert row is not None and row.id == outcome.version_id
        assert row.sklearn_version == sklearn.__version__
        assert row.data_fingerprint == outcome.result.fingerprint
        assert "task_type*template" in row.features
        assert row.metrics["quality"]["mae"] == pytest.approx(
            outcome.result.metrics["quality"]["mae"]
        )
        assert row.n_generations == len(frame) and row.task_types == ["qa", "summarization"]
        assert session.get(SelectorBlob, row.id) is not None


def test_a_first_version_says_its_own_cross_validated_errors(engine, frame):
    """It had nothing to compare with and said nothing more: how far to trust it?"""
    first = train_and_maybe_promote(engine, frame, hyperparameters=USELESS).decision
    assert first.reason.startswith("first selector version: nothing to compare with; its ")
    assert "cross-validated errors (held-out suites): quality MAE " in first.reason
    assert "latency_p95 mean relative error " in first.reason


def test_a_latency_error_of_simulated_results_says_so(engine, frame):
    """`retrain --include-simulated` after the demo said "latency_p95 mean relative error
    2157.4% → 2157.4%": of the simulated backend's modelled latencies, which it did not say."""
    first = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)  # all simulated
    assert "% (of simulated latencies, not real ones)" in first.decision.reason
    real = train_selector(frame.assign(simulated=False), USELESS)
    assert _promotion.simulated_words(real.rows) == ""
    some = frame.assign(simulated=frame["suite"] == frame["suite"].iloc[0])
    words = _promotion.simulated_words(train_selector(some, USELESS).rows)
    assert words == "16 of 64 aggregates' latencies simulated, not real ones"


def test_retraining_on_the_same_data_stores_nothing(engine, frame):
    """A second `retrain` with nothing stored since made and promoted a copy of the
    current version after minutes of training: now nothing is trained, the current kept."""
    first = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)
    second = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)
    decision = second.decision
    assert second.result is None and second.version_id == first.version_id
    assert not decision.promoted and decision.basis == "same data"
    assert decision.reason == (
        f"nothing new since version {first.version_id}: it learned from these same "
        f"{len(frame)} generations; no version stored, version {first.version_id} stays current"
    )
    with Session(engine) as session:
        assert [v.id for v in list_versions(session)] == [first.version_id]
    other = train_and_maybe_promote(engine, frame, hyperparameters=TWO_ROUNDS)
    assert other.result is not None  # other settings: a version of its own


def test_a_version_not_promoted_for_too_few_new_pairs_says_how_many_to_measure(engine, trained):
    """A newcomer's version 3 had 2 (config, suite) pairs version 2 never saw, 3 needed
    to compare on them; the answer's advice `evalflow retrain` stored a copy of it."""
    with Session(engine) as session:
        first = versions.save_version(session, trained, versions.PromotionDecision(True, "t"))
        keys = trained.model.trained_keys | {"new|qa-a", "new|qa-b"}
        wider = dataclasses.replace(
            trained, model=dataclasses.replace(trained.model, trained_keys=keys)
        )
        second = versions.save_version(session, wider, versions.PromotionDecision(False, "t"))
        advice = versions.promotion_advice(session, second)
    assert advice == (
        f"to have it promoted, measure 1 more (config, suite) pair version {first.id} never "
        f"saw (a config on a suite it was not run on) and run `evalflow retrain`: from 3 such "
        f"pairs the new version is compared with version {first.id} on them"
    )


def test_each_database_gets_its_own_model_though_in_memory_urls_and_ids_repeat(trained):
    """The cached model was keyed by URL, id and data: a second in-memory database's
    version 1 got the first's model (test order decided the test above's advice)."""
    models = []
    for keys in (trained.model.trained_keys, trained.model.trained_keys | {"new|qa-a"}):
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        create_tables(engine, (*EVALUATION_TABLES, *TABLES))
        with_keys = dataclasses.replace(
            trained, model=dataclasses.replace(trained.model, trained_keys=keys)
        )
        with Session(engine) as session:
            version = versions.save_version(
                session, with_keys, versions.PromotionDecision(True, "t")
            )
            models.append(versions.load_model(session, version).trained_keys)
        engine.dispose()
    assert models == [trained.model.trained_keys, trained.model.trained_keys | {"new|qa-a"}]


def test_more_samples_of_the_same_pairs_compare_cross_validated_errors(engine):
    train_and_maybe_promote(
        engine, validate_training_frame(synthetic_frame(cases=4)), hyperparameters=USELESS
    )
    more = validate_training_frame(synthetic_frame(cases=6))
    decision = train_and_maybe_promote(engine, more, hyperparameters=USELESS).decision
    assert decision.promoted and decision.basis == "cross-validation"
    # each error named once, old → new (was "quality MAE 12.61 points vs quality MAE ...")
    # the same settings learned from every aggregate: the two err alike, said once (was
    # "quality MAE 0.173 → 0.173, latency_p95 mean relative error 109.2% → 109.2%")
    quality = decision.comparison["quality"]
    alike = f"(version 1 and this one alike: quality MAE {quality['incumbent']:.3f}, latency_p95"
    assert alike in decision.reason and "→ this one" not in decision.reason
    assert decision.reason.count("MAE") == 1


def test_worse_version_is_kept_but_not_promoted(engine):
    old_suites = {"qa-a": "qa", "sum-a": "summarization"}
    first = train_and_maybe_promote(
        engine,
        validate_training_frame(synthetic_frame(cases=4, suites=old_suites)),
        hyperparameters=FAST,
    )
    more = validate_training_frame(synthetic_frame(cases=4, seed=1))
    second = train_and_maybe_promote(engine, more, hyperparameters=USELESS)
    decision = second.decision
    assert not decision.promoted
    assert decision.basis == "unseen rows" and decision.n_comparison_rows == 32
    assert decision.reason.startswith("not promoted")
    assert "quality MAE" in decision.reason and f"version {first.version_id}" in decision.reason
    again = train_and_maybe_promote(engine, more, hyperparameters=USELESS)
    assert again.result is None and again.version_id == first.version_id  # no copy stored
    assert again.decision.reason.startswith(
        f"version {second.version_id} learned from these same "
        f"{len(more)} generations and was not promoted; no version stored, version "
        f"{first.version_id} stays current; version {second.version_id} answers with "
        f"`evalflow recommend TASK --version {second.version_id}`; it was compared with "
        f"version {first.version_id} on the 32 (config, suite) pairs"
    )
    with Session(engine) as session:
        assert current_version(session).id == first.version_id
        assert [v.id for v in list_versions(session)] == [first.version_id, second.version_id]
        stored = session.get(SelectorVersion, second.version_id)
        assert not stored.promoted and stored.promotion_reason == decision.reason
        assert [v.id for v in list_versions(session)] == [first.version_id, second.version_id]
        promote(session, second.version_id, "manual: testing a rollback")
        session.commit()
        assert current_version(session).id == second.version_id


def test_toggling_back_to_data_an_older_version_learned_stores_no_copy(engine):
    """`retrain`, `retrain --include-simulated`, `retrain` stored a third version, a copy
    of the first: only the current and the newest version were looked at. Now the first
    is compared with the current one as that copy was, and made current again."""
    real = validate_training_frame(
        synthetic_frame(cases=2, suites={"qa-a": "qa", "sum-a": "summarization"})
    )
    everything = validate_training_frame(synthetic_frame(cases=2))
    first = train_and_maybe_promote(engine, real, hyperparameters=USELESS)
    second = train_and_maybe_promote(engine, everything, hyperparameters=USELESS)
    assert second.decision.promoted
    with Session(engine) as session:
        current = session.get(SelectorVersion, second.version_id)
        # first.result: what a third training on `real` with these settings gives
        copy = versions.decide_promotion(first.result, current, second.result.model, tolerance=1.0)
    assert copy.promoted  # what the third version's retrain decided
    again = train_and_maybe_promote(engine, real, hyperparameters=USELESS, tolerance=1.0)
    assert again.result is None and again.version_id == first.version_id
    assert again.decision.promoted and again.decision.reason == (
        f"version {first.version_id} learned from these same {len(real)} generations with "
        f"these settings, so nothing was trained or stored; compared with version "
        f"{second.version_id} as a new version is, {copy.reason}"
    )
    with Session(engine) as session:
        assert [v.id for v in list_versions(session)] == [first.version_id, second.version_id]
        assert current_version(session).id == first.version_id
    back = train_and_maybe_promote(engine, everything, hyperparameters=USELESS, tolerance=1.0)
    assert back.result is None and back.version_id == second.version_id
    same = train_and_maybe_promote(engine, everything, hyperparameters=USELESS)
    assert same.decision.reason.startswith(f"nothing new since version {second.version_id}:")
    with Session(engine) as session:
        assert len(list_versions(session)) == 2


def test_an_older_version_not_promoted_again_says_how_to_answer_from_it(engine, monkeypatch):
    real = validate_training_frame(
        synthetic_frame(cases=2, suites={"qa-a": "qa", "sum-a": "summarization"})
    )
    first = train_and_maybe_promote(engine, real, hyperparameters=USELESS)
    second = train_and_maybe_promote(
        engine, validate_training_frame(synthetic_frame(cases=2)), hyperparameters=USELESS
    )
    worse = versions.PromotionDecision(False, "not promoted: worse (stub)", basis="stub")
    monkeypatch.setattr(_same_data, "decide_promotion", lambda *args, **kwargs: worse)
    again = train_and_maybe_promote(engine, real, hyperparameters=USELESS)
    assert again.result is None and again.version_id == second.version_id
    assert not again.decision.promoted
    assert again.decision.reason.endswith(
        f"as a new version is, not promoted: worse (stub); version {second.version_id} stays "
        f"current; version {first.version_id} answers with `evalflow recommend TASK --version "
        f"{first.version_id}`"
    )
    with Session(engine) as session:
        assert current_version(session).id == second.version_id
        assert len(list_versions(session)) == 2


def test_better_data_from_new_suites_is_promoted(engine):
    few = validate_training_frame(
        synthetic_frame(cases=2, suites={"qa-a": "qa", "sum-a": "summarization"})
    )
    train_and_maybe_promote(engine, few, hyperparameters=USELESS)
    second = train_and_maybe_promote(
        engine, validate_training_frame(synthetic_frame()), hyperparameters=FAST
    )
    assert second.decision.promoted and second.decision.basis == "unseen rows"
    # a newcomer read identical errors for both versions as one model's printed twice
    assert "both fit on the" in second.decision.reason


def test_persistence_round_trip_predicts_the_same(engine, frame, trained):
    model = trained.model
    again = deserialize(serialize(model))
    pd.testing.assert_frame_equal(
        model.predict(model.configs, "qa"), again.predict(again.configs, "qa")
    )
    outcome = train_and_maybe_promote(engine, frame, hyperparameters=FAST)
    _model_cache._CACHE.clear()
    with Session(engine) as session:
        loaded = load_model(session, session.get(SelectorVersion, outcome.version_id))
    fitted = outcome.result.model
    pd.testing.assert_frame_equal(
        fitted.predict(fitted.configs, "summarization"),
        loaded.predict(loaded.configs, "summarization"),
    )


def test_an_unloadable_current_version_is_not_comparable_and_replaced(engine, frame):
    """Its recorded errors were measured on its own data, not comparable; unloadable, it
    cannot answer either."""
    first = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)
    with Session(engine) as session:
        session.get(SelectorBlob, first.version_id).data = b"not a joblib file"
        session.commit()
    _model_cache._CACHE.clear()
    second = train_and_maybe_promote(engine, frame, hyperparameters=USELESS)
    assert second.decision.promoted and second.decision.basis == "not comparable"
    assert "its stored model cannot be loaded" in second.decision.reason


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Three configs on one suite, every generation scoring 0.500."""
    three = frame["config_hash"].isin(frame["config_hash"].unique()[:3])
    return validate_training_frame(frame[three].assign(quality=0.5))


def test_a_version_that_learned_flat_scores_is_no_bar_for_more_data(engine):
    """A newcomer's version 3 learned from 3 configs all scoring 0.500: its quality MAE
    in cross-validation was exactly 0.00, and every later version (26 more cases of each
    config) was "not promoted: worse in cross-validation: quality MAE 2.92 points > 0.00
    of version 3", forever. Both are now measured on the new data with the same folds."""
    one = {"qa-a": "qa"}
    first = train_and_maybe_promote(
        engine, _flat(synthetic_frame(cases=2, suites=one)), hyperparameters=USELESS
    )
    assert first.result.metrics["quality"]["mae"] == 0.0
    more = synthetic_frame(cases=6, suites=one)
    more = validate_training_frame(more[more["config_hash"].isin(first.result.rows["config_hash"])])
    second = train_and_maybe_promote(engine, more, hyperparameters=USELESS)
    decision = second.decision
    assert second.result.metrics["quality"]["mae"] > 0.01
    assert decision.promoted and decision.basis == "cross-validation"
    quality = decision.comparison["quality"]
    assert (
        quality["candidate"]
        == quality["incumbent"]
        == pytest.approx(second.result.metrics["quality"]["mae"])
    )
    assert "in cross-validation on this version's data (no data version 1 had not seen), " in (
        decision.reason
    )
    assert "it learned from every one, with the same settings, so the two err alike" in (
        decision.reason
    )
    # a database where the old rule left it unpromoted: the next retrain compares again
    with Session(engine) as session:
        stored = session.get(SelectorVersion, second.version_id)
        stored.promoted, stored.promoted_at = False, None
        stored.promotion_reason = (
            "not promoted: worse in cross-validation (no data version 1 had not seen): "
            "quality MAE 2.92 points > quality MAE 0.00 points of version 1"
        )
        session.commit()
        assert current_version(session).id == first.version_id
    again = train_and_maybe_promote(engine, more, hyperparameters=USELESS)
    assert again.result is None and again.decision.promoted
    assert again.version_id == second.version_id
    with Session(engine) as session:
        assert current_version(session).id == second.version_id
        assert len(list_versions(session)) == 2


def test_the_same_two_versions_compare_alike_whichever_is_current(engine):
    """Toggling --include-simulated compared one pair of versions as 'quality MAE 15.1 ->
    15.1' one way and '8.6 -> 0.0' the other (each version's own errors, on its own data),
    each 'not worse' than the other. Now on the same data both err the same."""
    real = validate_training_frame(
        synthetic_frame(cases=2, suites={"qa-a": "qa", "sum-a": "summarization"})
    )
    everything = validate_training_frame(synthetic_frame(cases=2))
    first = train_and_maybe_promote(engine, everything, hyperparameters=USELESS)
    with Session(engine) as session:
        current = session.get(SelectorVersion, first.version_id)
        decision = versions.decide_promotion(
            train_selector(real, USELESS), current, first.result.model
        )
    assert decision.promoted and decision.basis == "cross-validation"
    for errors in decision.comparison.values():
        assert errors["candidate"] == errors["incumbent"]
    assert "the 32 it learned from that this data lacks do not count" in decision.reason


def test_a_feature_the_old_versions_rows_never_had_does_not_break_the_comparison(engine):
    # Version 1 saw a few rows without top_p; the new data adds many rows that set it,
    # so the candidate refit on version 1's rows meets a column with no value at all
    # (scikit-learn's binning raised "window shape cannot be larger than input array").
    old_suites = {"qa-a": "qa", "sum-a": "summarization"}
    first = train_and_maybe_promote(
        engine,
        validate_training_frame(synthetic_frame(cases=2, suites=old_suites)),
        hyperparameters=FAST,
    )
    more = synthetic_frame(cases=2, seed=1)
    new_rows = ~more["suite"].isin(old_suites)
    more.loc[new_rows, "top_p"] = np.where(more.loc[new_rows, "temperature"] > 0.5, 0.9, 0.5)
    second = train_and_maybe_promote(engine, validate_training_frame(more), hyperparameters=FAST)
    decision = second.decision
    assert decision.basis == "unseen rows" and decision.incumbent_id == first.version_id
    assert "quality" in decision.comparison and decision.reason.startswith(("promoted", "not"))


def test_a_second_suite_is_promoted_though_holding_out_suites_errs_more(engine):
    """`retrain --include-simulated` after a pipeline demo: 'not promoted ... latency_p95
    error 35128.9% > latency_p95 error 48.7%'. With one suite cross-validation held out
    configs; with two it holds out each suite whole, predicted from the other alone (0.25 s
    answers from 60 s pipelines): errors measured so differently were compared, so a
    version that learned a second suite was never promoted. And the figure said no more."""
    one = validate_training_frame(synthetic_frame(cases=2, suites={"qa-a": "qa"}))
    first = train_and_maybe_promote(engine, one, hyperparameters=FAST)
    slow = synthetic_frame(cases=2, suites={"sum-a": "summarization"})
    slow = slow[slow["config_hash"].isin(slow["config_hash"].unique()[:2])]  # 2 new rows
    slow = slow.assign(latency_s=slow["latency_s"] * 200)
    both = validate_training_frame(
        pd.concat([synthetic_frame(cases=2, suites={"qa-a": "qa"}), slow])
    )
    second = train_and_maybe_promote(engine, both, hyperparameters=FAST)
    assert (
        second.result.grouping == "suite"
        and second.result.metrics["latency_p95"]["relative_error"]
        > 10 * first.result.metrics["latency_p95"]["relative_error"]
    )  # as the newcomer saw
    decision = second.decision
    assert decision.promoted and decision.basis == "cross-validation"
    assert "(only 2 (config, suite) aggregates version 1 had not seen: 3 needed" in (
        decision.reason
    )
    # holding out qa-a leaves version 1 nothing it learned from: those rows do not count
    assert "version 1 cross-validated on the same folds (held-out suites)" in decision.reason
    assert "; 16 aggregates left out: in their fold version 1 learned from none" in (
        decision.reason
    )


def test_the_reason_names_the_error_it_gives():
    assert _promotion._describe("latency_p95", 9.0) == "latency_p95 mean relative error 900.0%"
    # on the metric's 0–1 scale, as `show` and --min-quality are (was "1.60 points": N6)
    assert _promotion._describe("quality", 0.016) == "quality MAE 0.016"
    changed = {"quality": {"incumbent": 0.126, "candidate": 0.124}}
    assert _promotion._changes(changed, 1, "") == "version 1 → this one: quality MAE 0.126 → 0.124"
    # the same figures are said once (was "latency_p95 mean relative error 2157.4% → 2157.4%")
    same = changed | {"latency_p95": {"incumbent": 21.574, "candidate": 21.5741}}
    assert _promotion._changes(same, 1, "") == (
        "version 1 → this one: quality MAE 0.126 → 0.124, latency_p95 mean relative error "
        "unchanged at 2157.4%"
    )
    same["quality"] = {"incumbent": 0.126, "candidate": 0.126}
    assert _promotion._changes(same, 1, "of simulated latencies, not real ones") == (
        "version 1 and this one alike: quality MAE 0.126, latency_p95 mean relative error "
        "2157.4% (of simulated latencies, not real ones)"
    )


def test_a_retrain_with_too_few_new_aggregates_says_how_many_it_had(trained):
    """A newcomer's retrain after measuring 2 new (config, suite) aggregates said "no data
    version 1 had not seen": it had 2, too few (3) to compare the versions on them."""
    from dataclasses import replace as replaced

    keys = sorted(trained.model.trained_keys)
    incumbent = SelectorVersion(id=1, grouping=trained.grouping, metrics=trained.metrics)
    older = replaced(trained.model, trained_keys=frozenset(keys[2:]))
    decision = versions.decide_promotion(trained, incumbent, older)
    assert decision.basis == "cross-validation"
    assert "(only 2 (config, suite) aggregates version 1 had not seen: 3 needed" in (
        decision.reason
    )
    assert "no data version 1 had not seen" not in decision.reason
    same = versions.decide_promotion(trained, incumbent, trained.model)
    assert "(no data version 1 had not seen)" in same.reason


def test_outcomes_are_no_pairs_to_measure_for_a_promotion(engine, trained):
    """The advice counted the (config, outcomes:qa) keys of recorded outcomes among the
    (config, suite) pairs the current version never saw: 1 real pair and 2 configs'
    outcomes read as 3, "it was compared ... on them", though those are set apart."""
    with Session(engine) as session:
        first = versions.save_version(session, trained, versions.PromotionDecision(True, "t"))
        keys = trained.model.trained_keys | {"new|qa-a", "a|outcomes:qa", "b|outcomes:qa"}
        wider = dataclasses.replace(
            trained, model=dataclasses.replace(trained.model, trained_keys=keys)
        )
        second = versions.save_version(session, wider, versions.PromotionDecision(False, "t"))
        advice = versions.promotion_advice(session, second)
    assert advice.startswith(
        f"to have it promoted, measure 2 more (config, suite) pairs version {first.id} never saw"
    )
