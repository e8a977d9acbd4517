"""Issue 50: a model whose template effects fail their pooling check departs from the
shared ones as a shrunk (random) block, so a thin model still borrows the shared effects."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from selection import multilevel
from selection.multilevel import fit_checked


def _table() -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    # Two full models whose chain-of-thought effects depart from each other's (+0.20 and
    # -0.10) on precise measurements, and a thin one measured once per
    # template on few cases, whose cot read +0.45 over plain by luck.
    full = list(itertools.product(("mA", "mB"), ("plain", "cot", "few"), (0.0, 0.3, 0.7)))
    thin = [("mT", template, 0.0) for template in ("plain", "cot", "few")]
    factors = pd.DataFrame(full + thin, columns=["model", "template", "temperature"])
    factors.index = [f"c{i}" for i in range(len(factors))]
    base = factors["model"].map({"mA": 0.5, "mB": 0.6, "mT": 0.7})
    cot = factors["model"].map({"mA": 0.20, "mB": -0.10, "mT": 0.45})
    y = base - 0.05 * factors["temperature"] + cot * (factors["template"] == "cot")
    y += np.random.default_rng(5).normal(0, 0.01, len(y)) * (factors["model"] != "mT")
    v = pd.Series(np.where(factors["model"] == "mT", 0.01, 1e-4), index=factors.index)
    return y, v, factors


def _cot_gain(found: multilevel.Fit, factors: pd.DataFrame, model: str) -> float:
    """The model's reading of cot less plain, at temperature 0."""
    at = factors[(factors["model"] == model) & (factors["temperature"] == 0.0)]
    by_template = found.mean[at.index].groupby(at["template"].to_numpy()).first()
    return float(by_template["cot"] - by_template["plain"])


def _fit(monkeypatch, on: bool, y, v, factors) -> multilevel.Fit:
    monkeypatch.setattr(multilevel, "SHRUNK_TEMPLATE_DEPARTURE", on)
    return fit_checked(y, v, factors)


def test_a_thin_model_borrows_template_effects_the_departing_models_share(monkeypatch):
    y, v, factors = _table()
    fixed, shrunk = (_fit(monkeypatch, on, y, v, factors) for on in (False, True))
    failed = {c.level for c in shrunk.checks if c.b == "template" and not c.holds}
    assert failed == {"mA", "mB"}
    # Fixed blocks leave the shared template effects to mT alone: its luck is its reading.
    assert _cot_gain(fixed, factors, "mT") == pytest.approx(0.45, abs=0.02)
    # Shrunk, mA's and mB's measurements inform them too (here REML reads the shared
    # effects as mA's, its departure's variance 0, and mB departs): mT borrows them,
    # and each full model keeps its own effects.
    assert _cot_gain(shrunk, factors, "mT") < _cot_gain(fixed, factors, "mT") - 0.1
    assert _cot_gain(shrunk, factors, "mA") == pytest.approx(0.20, abs=0.02)
    assert _cot_gain(shrunk, factors, "mB") == pytest.approx(-0.10, abs=0.02)
    assert "model=mA*template" in shrunk.variances
    assert shrunk.fixed < fixed.fixed  # their blocks are no longer fixed effects


def test_where_every_template_check_holds_the_fit_is_unchanged(monkeypatch):
    y, v, factors = _table()
    keep = factors.index[factors["model"] != "mB"]
    y = y + 0.2 * ((factors["model"] == "mA") & (factors["template"] == "cot"))
    y, v, factors = y[keep], v[keep], factors.loc[keep]
    fixed, shrunk = (_fit(monkeypatch, on, y, v, factors) for on in (False, True))
    assert all(c.holds for c in shrunk.checks if c.b == "template")
    np.testing.assert_array_equal(fixed.mean, shrunk.mean)
    np.testing.assert_array_equal(fixed.sd, shrunk.sd)


def test_by_default_the_thin_model_does_not_read_its_luck_as_its_template_effects():
    y, v, factors = _table()
    assert _cot_gain(fit_checked(y, v, factors), factors, "mT") < 0.35
