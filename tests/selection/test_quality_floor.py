"""A quality floor refusing a config whose measured mean meets it says so, with the
measurement, the estimate and the correction for selection (selection._quality_floor).
Newcomer C9: `recommend qa --min-quality 0.65 --max-latency 0.3` answered that nothing met
the limits, though sim-medium measured 0.694 on 36 cases; the correction had moved its
estimate 0.677 → 0.631, and the refusal read "estimated quality 0.631 < 0.650"."""

from __future__ import annotations

import pytest

from selection._candidates import candidate_table, params_label
from selection._choice import violations
from selection._scoring import scored_candidates
from selection.recommender import recommend_from_model
from selection.training import train_selector

from .test_selection_bias import lucky_world


@pytest.fixture(scope="module")
def lucky():
    frame, _, supported = lucky_world(seed=1)
    model = train_selector(frame).model
    table, _ = candidate_table(model, None, "qa")
    scored = scored_candidates(model, table, "qa", 300.0)
    noisy = scored.drop(index=supported)
    ranked = noisy.sort_values(["measured_quality_mean", "quality"], ascending=False)
    return model, scored, ranked.index[0]  # the luckiest (of those tied, the best estimated)


def test_a_floor_its_measurement_meets_but_its_estimate_does_not_is_said(lucky):
    model, scored, luckiest = lucky
    row = scored.loc[luckiest]
    assert row["measured_quality_mean"] >= 0.9 and row["quality"] < 0.7  # the curse, lifted
    floor = round(float(scored["quality"].max()) + 0.01, 2)
    answer = recommend_from_model(model, "qa", min_quality=floor)
    assert answer.status == "infeasible"  # the choice: nothing meets the floor, as before
    assert answer.message == (
        f"no configuration is estimated to meet quality ≥ {floor:.3f}: "
        f"{sum(scored['measured_quality_mean'] >= floor)} configs measured at or above the "
        "quality floor are estimated below it (see the note)"
    )
    measured, before, after = (
        f"{row[c]:.3f}" for c in ("measured_quality_mean", "quality_uncorrected", "quality")
    )
    (note,) = [n for n in answer.notes if "a quality floor is held to" in n]
    admits = f"{int(row['quality'] * 1000) / 1000:.3f}"
    assert note.startswith(f"{params_label(row)} was measured {measured} on 10 cases, ")
    assert f"was measured {measured} on 10 cases, at or above quality ≥ {floor:.3f}" in note
    assert f"{measured} read with the task type's other measured configs" in note
    assert f"is {before}, and corrected for selection among {len(scored)} candidates {after}" in (
        note
    )
    assert note.endswith(f"`--min-quality {admits}` (min_quality={admits} in Python), admits it")
    assert answer.quality_floor == note and f"  note: {note}" in answer.brief()  # -q too
    # each refusal says its own figures where its measurement meets the floor
    _, found = violations(scored, model, None, None, floor)
    (why,) = found[scored.index.get_loc(luckiest)]
    assert why == (
        f"estimated quality {after} < {floor:.3f} (measured {measured} on 10 cases; estimated "
        f"{before} from it and the prediction, {after} corrected for selection among "
        f"{len(scored)} candidates)"
    )
    # the floor the note names admits it
    _, found = violations(scored, model, None, None, float(admits))
    assert found[scored.index.get_loc(luckiest)] == ()


def test_a_refusal_its_measurement_agrees_with_reads_as_before(lucky):
    model, scored, _ = lucky
    _, found = violations(scored, model, None, None, 0.99)
    below = scored["measured_quality_mean"] < 0.99
    assert all(
        why == (f"estimated quality {scored['quality'].iloc[i]:.3f} < 0.990",)
        for i, why in enumerate(found)
        if below.iloc[i]
    )
