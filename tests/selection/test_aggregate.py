import numpy as np
import pandas as pd
import pytest
from scipy.stats.mstats import hdquantiles

from selection.aggregate import aggregate, evidence, harrell_davis
from selection.frame import validate_training_frame

from .conftest import synthetic_frame


def test_harrell_davis_matches_scipy():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 0.4, 23)
    frame = pd.DataFrame({"config_hash": ["a"] * 20 + ["b"] * 3, "suite": "s", "x": values})
    ours = harrell_davis(frame, "x", 0.95)
    for key, part in (("a", values[:20]), ("b", values[20:])):
        assert ours[(key, "s")] == pytest.approx(float(hdquantiles(part, [0.95])[0]))


def test_aggregate_weights_quality_and_counts_generations():
    frame = validate_training_frame(synthetic_frame(cases=4))
    first = frame["config_hash"].iloc[0]
    rows = frame[(frame["config_hash"] == first) & (frame["suite"] == "qa-a")].index
    frame.loc[rows, "weight"] = [1.0, 1.0, 0.5, 0.5]
    frame.loc[rows, "quality"] = [1.0, 1.0, 0.0, 0.0]
    table = aggregate(frame).set_index(["config_hash", "suite"])
    row = table.loc[(first, "qa-a")]
    assert row["quality"] == pytest.approx(2 / 3)
    assert row["n"] == 3.0 and row["n_latency"] == 4
    assert row["quality_noise"] == pytest.approx(np.var([1, 1, 0, 0], ddof=1) / 4)
    assert len(table) == frame.groupby(["config_hash", "suite"]).ngroups


def test_failed_generations_count_in_evidence_not_in_targets():
    frame = validate_training_frame(synthetic_frame(cases=3))
    first = frame["config_hash"].iloc[0]
    failed = frame[(frame["config_hash"] == first) & (frame["suite"] == "qa-a")].index[0]
    frame.loc[failed, ["status", "quality", "latency_s"]] = ["failed", np.nan, np.nan]
    measured = evidence(frame).set_index(["config_hash", "task_type"]).loc[(first, "qa")]
    assert measured["n"] == 5 and measured["n_failed"] == 1 and measured["n_suites"] == 2
    assert measured["quality_ci_low"] < measured["quality_mean"] < measured["quality_ci_high"]
    assert aggregate(frame).set_index(["config_hash", "suite"]).loc[(first, "qa-a"), "n"] == 2
