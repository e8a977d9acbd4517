"""The smoke level's failure: grouped by host and cause, not by config and model (a
newcomer killed the server at 4 of 24: one line of 1,250 characters, a part per config,
the error's class names in it)."""

from __future__ import annotations

import pickle

import pandas as pd

from evaluation.adaptive import SmokeFailed, smoke_failure

DOWN = "llama-cpp unreachable: ConnectError: [Errno 111] Connection refused"
MODELS = {"a1": "gemma3-270m", "a2": "gemma3-270m", "b1": "smollm2-135m", "b2": "smollm2-135m"}


def rows(*spec: tuple[str, str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(spec, columns=["config_hash", "host", "status", "error"])


def killed_mid_run() -> pd.DataFrame:
    """As the run stored them: each failed row's error names its model."""
    failed = [
        (h, "llama-cpp", "failed", f"BackendUnavailable: every host serving {m!r} is down ({DOWN})")
        for h, m in MODELS.items()
        for _ in range(5)
    ]
    return rows(*failed, ("a1", "llama-cpp", "ok", None), ("b1", "llama-cpp", "ok", None))


def test_a_host_killed_mid_run_is_one_cause_on_one_line() -> None:
    failure = smoke_failure(killed_mid_run(), MODELS, {"llama-cpp": DOWN})
    assert isinstance(failure, SmokeFailed)
    assert (failure.failed, failure.total) == (20, 22)
    assert failure.lines() == [
        "smoke level failed: 20 of 22 generations did not succeed:",
        "  20 on llama-cpp (gemma3-270m, smollm2-135m: 4 configs): the host is down: "
        "unreachable: ConnectError: [Errno 111] Connection refused",
    ]
    assert "BackendUnavailable" not in str(failure) and "\n" not in str(failure)


def test_causes_other_than_a_host_down_are_grouped_by_error_less_its_class_name() -> None:
    long = "x " * 200
    frame = rows(
        ("a1", "gpu", "failed", "BackendRejected: gpu: HTTP 400 for model 'gemma3-270m': bad"),
        ("a2", "gpu", "failed", "BackendRejected: gpu: HTTP 400 for model 'gemma3-270m': bad"),
        ("b1", "gpu", "failed", f"BackendServerError: {long}"),
        ("b2", "gpu", "ok", None),
    )
    failure = smoke_failure(frame, MODELS, {})
    assert failure is not None
    first, second = failure.lines()[1:]
    assert first == "  2 on gpu (gemma3-270m: 2 configs): HTTP 400 for model 'gemma3-270m': bad"
    assert second.startswith("  1 on gpu (smollm2-135m: 1 config): x x") and second.endswith(" …")
    assert len(second) < 200  # cut at a word


def test_no_failure_is_none_and_a_failure_pickles_whole() -> None:
    assert smoke_failure(rows(("a1", "gpu", "ok", None)), MODELS, {}) is None
    failure = smoke_failure(killed_mid_run(), MODELS, {"llama-cpp": DOWN})
    again = pickle.loads(pickle.dumps(failure))
    assert again.lines() == failure.lines()
