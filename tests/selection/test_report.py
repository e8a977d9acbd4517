from selection import render_report
from selection.frame import validate_training_frame
from selection.training import Hyperparameters
from selection.versions import train_and_maybe_promote

from .conftest import FAST, synthetic_frame


def test_report_of_a_promoted_version(engine, frame):
    outcome = train_and_maybe_promote(engine, frame, hyperparameters=FAST)
    text = render_report(outcome)
    assert text.startswith(f"# Selector version {outcome.version_id}: promoted")
    assert outcome.decision.reason in text
    assert "| quality |" in text and "| latency_p95 |" in text
    assert "## What drives quality (permutation importance)" in text
    assert f"{len(frame)} generations" in text


def test_report_of_a_version_that_was_not_promoted(engine):
    suites = {"qa-a": "qa", "sum-a": "summarization"}
    train_and_maybe_promote(
        engine,
        validate_training_frame(synthetic_frame(cases=4, suites=suites)),
        hyperparameters=FAST,
    )
    useless = Hyperparameters(ensemble_size=2, max_iter=1, learning_rate=0.01, n_splits=2)
    outcome = train_and_maybe_promote(
        engine, validate_training_frame(synthetic_frame(cases=4, seed=1)), hyperparameters=useless
    )
    text = render_report(outcome)
    assert "kept, not promoted" in text.splitlines()[0]
    assert "## Comparison with version 1 (unseen rows)" in text
