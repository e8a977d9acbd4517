"""A thin model's level in the winner's-curse correction (selection/_selection_bias.py,
``LEVEL_SPREAD``): a model with few candidates, placed less surely by the multilevel fit,
is read under G widened by that excess, and nothing else changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selection import _selection_bias
from selection._selection_bias import correct_for_selection, deconvolve, level_spread
from selection.multilevel import Fit


def _fit(configs: pd.Index, models: np.ndarray, level_var: dict[str, float], *, ample=True) -> Fit:
    """A fit whose effects are the models' levels, independent, with these variances:
    each config's design row is its model's indicator."""
    names = sorted(level_var)
    rows = np.array([[float(m == name) for name in names] for m in models])
    return Fit(
        mean=pd.Series(0.5, index=configs),
        sd=pd.Series(0.05, index=configs),
        variances={"residual": 0.01},
        rows=rows,
        effects_cov=np.diag([level_var[name] for name in names]),
        measured=100,
        fixed=10 if ample else 80,
    )


def _candidates(counts: dict[str, int], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidates of each model (``counts``): most estimated near 0.7 with sd 0.05; the
    last model's best few near 0.85 with sd 0.07 (less surely read)."""
    rng = np.random.default_rng(seed)
    models = np.concatenate([[name] * n for name, n in counts.items()])
    quality = rng.normal(0.7, 0.04, len(models))
    sd = np.full(len(models), 0.05)
    last = models == list(counts)[-1]
    quality[np.flatnonzero(last)[:4]] = 0.85
    sd[last] = 0.07
    table = pd.DataFrame(
        {
            "model": models,
            "quality": quality,
            "quality_sd": sd,
            "quality_low": quality - 1.645 * sd,
            "quality_high": quality + 1.645 * sd,
            "quality_weight": 0.6,
            "quality_measurement_own": False,
        },
        index=pd.Index([f"c{i}" for i in range(len(models))]),
    )
    return table, models


def test_a_thin_model_placed_less_surely_gets_a_spread_and_the_others_none():
    table, models = _candidates({"big-a": 180, "big-b": 180, "thin": 20})
    fit = _fit(table.index, models, {"big-a": 1e-4, "big-b": 1e-4, "thin": 4e-3})
    tau = level_spread(table, fit)
    assert tau is not None
    assert (tau[models == "thin"] > 0.02).all()
    assert (tau[models != "thin"] == 0).all()


def test_no_spread_where_every_model_has_about_an_equal_share_or_the_data_are_thin():
    # The least-measured model is placed less surely by chance, but it is not thin:
    # a balanced world's estimates stay exactly main's (issue 50, stop 72's flat loss).
    table, models = _candidates({"a": 100, "b": 100, "c": 92})
    fit = _fit(table.index, models, {"a": 1e-4, "b": 1e-4, "c": 4e-3})
    assert level_spread(table, fit) is None
    table, models = _candidates({"big-a": 180, "big-b": 180, "thin": 20})
    thin_fit = _fit(table.index, models, {"big-a": 1e-4, "big-b": 1e-4, "thin": 4e-3}, ample=False)
    assert level_spread(table, thin_fit) is None


def test_the_widened_reading_keeps_a_thin_models_best_above_the_mass_and_no_other_row_moves():
    table, models = _candidates({"big-a": 180, "big-b": 180, "thin": 20})
    q, sd = table["quality"].to_numpy(), table["quality_sd"].to_numpy()
    tau = np.where(models == "thin", 0.06, 0.0)
    pooled, widened = deconvolve(q, sd), deconvolve(q, sd, tau)
    best = np.flatnonzero(models == "thin")[:4]
    assert (widened.mean[best] > pooled.mean[best] + 0.01).all()
    rest = models != "thin"
    assert np.array_equal(widened.mean[rest], pooled.mean[rest])
    assert np.array_equal(widened.sd[rest], pooled.sd[rest])


def test_the_switch_off_gives_the_correction_as_before(monkeypatch):
    table, models = _candidates({"big-a": 180, "big-b": 180, "thin": 20})
    fit = _fit(table.index, models, {"big-a": 1e-4, "big-b": 1e-4, "thin": 4e-3})
    before, _ = correct_for_selection(table, 1.645)
    monkeypatch.setattr(_selection_bias, "LEVEL_SPREAD", False)
    off, _ = correct_for_selection(table, 1.645, fit)
    pd.testing.assert_frame_equal(off, before)
    monkeypatch.setattr(_selection_bias, "LEVEL_SPREAD", True)
    on, _ = correct_for_selection(table, 1.645, fit)
    thin = models == "thin"
    pd.testing.assert_frame_equal(on[~thin], before[~thin])
    assert on.loc[thin, "quality"].max() > before.loc[thin, "quality"].max()


@pytest.mark.parametrize("weight", [0.0])
def test_a_config_the_fit_does_not_read_carries_no_level_error(weight):
    # A model never measured on the task type has its effect at the flat prior; its
    # candidates' estimates are the trees' (weight 0), so its level adds nothing.
    table, models = _candidates({"big-a": 180, "big-b": 180, "thin": 20})
    table.loc[models == "thin", "quality_weight"] = weight
    fit = _fit(table.index, models, {"big-a": 1e-4, "big-b": 1e-4, "thin": 100.0})
    tau = level_spread(table, fit)
    assert tau is None or (tau[models == "thin"] == 0).all()
