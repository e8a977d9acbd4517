"""Where a model's latency tail ratio comes from, said where it refuses a config
(selection.aggregate.tail_source). Newcomer F8: a config met a 2.5 s limit by its own
measurements one day and was refused at 3 s the next, its 12 calls unchanged: other
configs of its model, run at night under load, had raised the model's measured
p95 / median, and the answer did not say which runs had set it."""

from __future__ import annotations

import pytest

from selection.aggregate import tail_source
from selection.frame import validate_training_frame
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .conftest import FAST
from .test_measurement_weight import few_real_runs
from .test_suite_mix import _config

TEMPERATURES = (0.0, 0.3, 0.6, 0.9)


@pytest.fixture(scope="module")
def nights():
    """smol at t=0 run by day (12 calls near 1 s), its three other configs at night,
    one call of each 5× its median (the machine loaded)."""
    frame = few_real_runs([("smol:135m", t, None, "s", 6, 12) for t in TEMPERATURES]).copy()
    day = _config("smol", 0.0).hash
    night = {_config("smol", t).hash: f"night-{i}" for i, t in enumerate(TEMPERATURES[1:], 1)}
    frame["experiment"] = frame["config_hash"].map(night).fillna("day")
    slow = frame.index[(frame["config_hash"] != day) & (frame["case_id"] == "c3")]
    frame.loc[slow, "latency_s"] *= 5.0
    return frame, train_selector(validate_training_frame(frame), FAST).model


def test_the_source_of_a_models_tail_ratio_is_its_calls_and_the_runs_of_the_slowest(nights):
    frame, _ = nights
    found = tail_source(frame, ["model", "task_type"])
    row = found.loc[("smol:135m", "qa")]
    assert (row["calls"], row["configs"]) == (48, 4)
    assert row["runs"] in {f"night-{i} (1 call)" for i in (1, 2, 3)}  # the slowest call's run


def test_a_config_refused_by_its_models_tail_ratio_is_told_where_the_ratio_came_from(nights):
    _, model = nights
    day = _config("smol", 0.0)
    answer = recommend_from_model(model, "qa", max_latency_s=2.0)
    assert answer.status == "infeasible"
    source = "48 calls of its 4 configs on qa; its slowest, which set it, from night-"
    mine = next(o for o in answer.closest if o.config_hash == day.hash)
    assert any(
        f"the model's measured p95 / median on the task type ({source}" in v
        for v in mine.violations
    ), mine.violations
    note = next(n for n in answer.notes if n.startswith("none meets the latency limit"))
    p95 = float(model.evidence.set_index("config_hash").loc[day.hash, "latency_p95"])
    assert p95 < 1.5  # its own calls meet 2 s
    assert (
        f": {day.label} meets it by its own p95 ({p95:.3g} s over 12 calls) but not by its "
        "median × "
    ) in note, note
    assert f"its model's measured p95 / median ({source}" in note
    tail_only = next(s for s in answer.suggestions if day.hash in s)
    assert f"(a bound one slow call of the model can set: {source}" in tail_only
