"""Measured configs are judged by their measurements first: prediction and measurement
combined by their uncertainties.

For a config measured on the task type, the selector's prediction m (model-error sd
s_m, calibrated in cross-validation: :mod:`selection.training`) is a prior and the
measured mean ȳ (standard error s_y over cases: reruns of a case are one case) is the
data; with normal errors the posterior is the precision-weighted mean (the empirical
Bayes / James–Stein shrinkage of a measured cell toward the model; e.g. Efron & Morris,
JASA 70, 1975):

    w = s_m² / (s_m² + s_y²),   value = m + w·(ȳ − m),   sd = sqrt(w)·s_y

s_m is the model's error on average over configs; for one config the model can be
wrong by far more (an interaction it never saw enough data to learn). A measurement
that contradicts the prediction beyond chance discredits the prior for that config, so
its variance is raised to the conflict-implied one (a positive-part, method-of-moments
estimate in the James–Stein spirit, made conservative by ``CONFLICT_Z`` so that mere
noise, such as the luckiest of many configs measured on a few cases, does not count):

    s_m² ← max(s_m², (ȳ − m)² / CONFLICT_Z² − s_y²)

The prediction for a measured config was fitted on that config's own rows, so it
already leans toward the measurement; combined with the same measurement it would count
that evidence twice (a lucky 10 of 10 raises the prior, then the posterior again). The
prior is therefore the prediction moved by ``<target>_self_shift`` (the config's mean
out-of-fold minus in-sample prediction, less what all rows of a held-out suite share:
:mod:`selection.training`): what the model predicts without the config's own rows on the
task type, which is also the prediction whose error s_m was calibrated on.

The model's average error can also understate its error for one config. Each config's
held-out misfit (squared out-of-fold residuals on suites the model did not see, less
their sampling noise: ``<target>_misfit_var``, :mod:`selection.training`) is evidence of
that, but one or two residuals are a noisy variance estimate, and taken alone (as a
floor, as an earlier version did) they make the measurement count more exactly when it
happens to deviate from the prediction, which brings back the winner's curse shrinkage
is meant to remove. So they are pooled with the model's error like a moderated variance
(the same prior weight ``PRIOR_DF`` as below; r the config's suites):

    s_m² ← (PRIOR_DF·s_m² + r·misfit) / (PRIOR_DF + r)

The model's calibrated error comes from predicting held-out suites of configs it was
trained on; the prior here is a prediction for a config without its own rows, and with
few measured configs (three real models, say) the model has nothing to learn that from
and its calibrated error says nothing about it. So the prior is checked against the
task type's measured candidates: with k of them and residuals r = ȳ − m, the prior's
error variance is at least the upper ``CHECK_CONFIDENCE`` bound

    s_check² = Σ r² / χ²_{1 − CHECK_CONFIDENCE}(k) − mean(s_y²)

(each r² is s_m² + s_y² in expectation). With three configs that bound is wide, so the
measurements decide unless they agree with the model; with hundreds it is the model's
actual error there. ``<t>_check_sd`` and ``<t>_check_n`` say what was used. A thin
model's quality rows are checked on that model's own measured candidates too, where the
multilevel fit is ample, and take that check where it is larger (``THIN_MODEL_CHECK``,
:func:`thin_model_check`; ``quality_check_of_model`` says so).

The measurement's own standard error uses the case variance moderated toward the task
type's pooled one (:func:`selection.own_means.moderated_se`), so 10 of 10 right is not a
certain 1.0. The
quality "measurement" is not the config's raw mean but its estimate from the multilevel
model of all the task type's measured means (:mod:`selection.multilevel`): fixed effects
of model, template and each setting, shrunk pairwise interactions, a config residual,
and suite effects that pair configs run on the same cases. Where temperature 0 and 0.3,
top_p or num_ctx make no difference, a config measured on 26 cases is estimated from
hundreds, a setting's effect is learned from every model and template at once, and
configs tied in truth are no longer ranked by luck; where it reads a measured config less
surely than that config's own cases (a saturated fit, or suites it cannot tell from
settings), the own cases are the measurement (:func:`quality_measurement`). The same
model gives an unmeasured
config an estimate from its settings' measured effects, which is combined with the
prediction like a measurement (with its larger uncertainty). Latency quantiles are
pooled within groups (:mod:`selection.pooling`) over configs that differ only in
sampling settings (temperature, top_p, top_k, seed), which change which tokens are
drawn, not the work per token.

So a config measured on hundreds of cases is hardly moved by a prediction from sparse
data, a config measured on a handful leans on the prediction and on what its settings
measured elsewhere, and an unmeasured config is predicted from both. Quality is combined
on its own scale, latency quantiles on the log scale with the measurement variance of
:mod:`selection.aggregate` (``QUANTILE_NOISE``: (π/2)·s²/n for the median, 4.47·s²/n for p95).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation.spec._params import NAMES, STUDIED_PARAMETERS
from selection import multilevel
from selection.aggregate import QUANTILE_NOISE, unbiased_quantile
from selection.model import MAX_CACHED, SelectorModel, from_log
from selection.own_means import PRIOR_DF
from selection.pooling import pool
from selection.suite_mix import NO_RELATIVE, suite_mix
from selection.training import MIN_MODEL_SHARE

CONFLICT_Z = 3.0
CHECK_CONFIDENCE = 0.9
DEGENERATE_FIT = 2.0
"""A measured config's multilevel reading is set aside for its own cases where its sd is
more than this many times theirs (:func:`quality_measurement`). Up to about 1.5 times its
sd carries what the fit extrapolates to the task type's average suite mix, and its
shrinkage is worth it (sampling world, tune seed 0, qa: a 9-case 8 of 9, truly 62%, read
at 79%; taken at its own 89% it moved up the ranking); a degenerate fit is 10–80 times."""
QUALITY_PRIOR_HELD_OUT_CAP = True
"""The quality prior's error sd is lowered, never raised, to the task type's held-out
error (:func:`task_error_factor`); False keeps the folds' calibration alone (the code
before; issue 50's results, "the quality prior's error sd recalibrated per task type":
lowering changed 4 of 2,730 hits on the 21 tune units, +0.07 ± 0.07 points; raising it
too lost 0.51 ± 0.50, in near-ties)."""
LATENCY_PRIOR_HELD_OUT_FLOOR = True
"""A latency quantile's prior error sd is at least the task type's held-out error
(:func:`held_out_error`) for every config: the full ensemble's spread at a config it
was fitted on can be a fraction of the folds' on which its scale was fitted, and the
prior then claimed more certainty than the trees showed on suites they did not see
(newcomer F6: the measurement weighed ~3% of a p95 estimate). False keeps the folds'
calibration alone (the code before; issue 50's results, "the latency prior's error sd
raised to the task type's held-out error")."""
READ_BETWEEN_MEASURED = True
"""A setting's value never measured on the task type, between two measured ones, is read
between their effects by the multilevel fit (:mod:`selection.multilevel`, newcomers'
C2); False leaves it unread, to the trees (the code before)."""
THIN_MODEL_CHECK = True
"""A thin model's quality prior is checked on its own measured candidates where that
shows it worse than the task type's check (:func:`thin_model_check`); False checks it
with every model's, pooled (the code before; issue 50's results, "a thin model's quality
prior checked on its own measured candidates")."""
IDENTITY = ("model", "template", "template_text")
SAMPLING = ("temperature", "top_p", "top_k", "seed")
MEASURED_COLUMNS = (
    "n",
    "n_cases",
    "quality_mean",
    "quality_se",
    "latency_p50",
    "latency_p95",
    "log_latency_var",
    "n_latency",
)


def combine(
    model: SelectorModel, table: pd.DataFrame, task_type: str, *, pool_sampling: bool = True
) -> pd.DataFrame:
    """``table`` (candidates with the model's predictions) with measured configs'
    quality and latency quantiles replaced by the posterior (value, 90% interval, and
    ``<t>_sd`` on the fitting scale), the priors (predictions without the config's own
    rows) kept as ``<t>_predicted``, the measurements as ``measured_<column>`` and the
    measurement as combined (quality: the multilevel estimate; latency: pooled over
    sampling settings unless ``pool_sampling`` is False) as ``<t>_measurement``, and
    ``latency_pooled_with`` the config hashes each latency measurement was pooled with
    (empty where it stands alone). ``measured`` says which rows had evidence."""
    out = table.copy()
    evidence = model.evidence[model.evidence["task_type"] == task_type]
    measured = evidence.set_index("config_hash")[list(MEASURED_COLUMNS)]
    found = measured.reindex(out.index)
    for column in MEASURED_COLUMNS:
        out[f"measured_{column}"] = found[column].to_numpy()
    out["measured"] = found["n_cases"].fillna(0).to_numpy() > 0
    if "quality" in model.targets:
        y, se, own = quality_measurement(model, task_type, out.index, out["measured"], out)
        out["quality_measurement_own"] = own
        _combine(
            out,
            model,
            "quality",
            y,
            se,
            misfit(evidence, out, "quality"),
            task_type,
            log=False,
        )
    out["latency_pooled_with"] = [()] * len(out)
    for name in QUANTILE_NOISE:
        if name not in model.targets:
            continue
        y, se, siblings = _pooled_latency(model, evidence, name, pool_sampling)
        if name == "latency_p95":  # the quantile the limits hold and the answer shows
            out["latency_pooled_with"] = [siblings.get(h, ()) for h in out.index]
        _combine(
            out,
            model,
            name,
            y.reindex(out.index).to_numpy(dtype=float),
            se.reindex(out.index).to_numpy(dtype=float),
            misfit(evidence, out, name),
            task_type,
            log=True,
        )
    return out


def _combine(
    out: pd.DataFrame,
    model: SelectorModel,
    name: str,
    y: np.ndarray,
    se: np.ndarray,
    misfit_var: tuple[np.ndarray, np.ndarray],
    task_type: str,
    *,
    log: bool,
) -> None:
    target = model.targets[name]
    predicted = out[name].to_numpy(dtype=float)
    usable = np.isfinite(y) & np.isfinite(se)
    shift = np.where(usable, np.nan_to_num(self_shift(model.evidence, out, name, task_type)), 0.0)
    prior = (np.log(predicted) if log else predicted) + shift
    prior_sd = target.scale * (out[f"{name}_spread"].to_numpy(dtype=float) + target.floor)
    if name == "quality" and QUALITY_PRIOR_HELD_OUT_CAP:
        prior_sd = prior_sd * min(1.0, task_error_factor(model, model.evidence, name, task_type))
    elif name in QUANTILE_NOISE and LATENCY_PRIOR_HELD_OUT_FLOOR:
        prior_sd = np.maximum(prior_sd, held_out_error(model, model.evidence, name, task_type))
    se_safe = np.where(usable, np.maximum(se, 1e-9), 1.0)
    conflict = (np.where(usable, y, prior) - prior) ** 2 / CONFLICT_Z**2 - se_safe**2
    own, rows = misfit_var
    rows = np.where(np.isfinite(own), rows, 0.0)
    pooled = (PRIOR_DF * prior_sd**2 + rows * np.nan_to_num(own)) / (PRIOR_DF + rows)
    # Only configs measured on the task type check the prior: the others' y is the
    # multilevel model's own prediction, no measurement (a newcomer's note counted 24
    # "measured candidates" where 16 were measured).
    measured = out["measured"].to_numpy(dtype=bool)
    residual = np.where(usable & measured, y, np.nan) - prior
    if name == "quality" and THIN_MODEL_CHECK:
        fit = quality_fit(model, task_type, out)
        ample = fit is not None and fit.ample
        check_sd, check_n, of_model = thin_model_check(residual, se, out["model"], ample=ample)
        out[f"{name}_check_of_model"] = of_model
    else:
        check_sd, check_n = checked_error(residual, se)
    prior_var = np.maximum(np.maximum(pooled, conflict), check_sd**2)
    weight = np.where(usable, prior_var / (prior_var + se_safe**2), 0.0)
    mean = prior + weight * (np.where(usable, y, 0.0) - prior)
    sd = np.where(usable, np.sqrt(weight) * se_safe, prior_sd)
    low, high = mean - target.z * sd, mean + target.z * sd
    if log:
        mean, low, high = from_log(mean), from_log(low), from_log(high)
    else:
        mean, low, high = (np.clip(v, 0, 1) for v in (mean, low, high))
    for suffix in ("", "_low", "_high"):
        value = out[f"{name}{suffix}"].to_numpy(dtype=float)
        moved = value * np.exp(shift) if log else np.clip(value + shift, 0, 1)
        out[f"{name}{suffix}_predicted"] = moved
    out[name], out[f"{name}_low"], out[f"{name}_high"] = mean, low, high
    out[f"{name}_measurement"] = np.where(usable, np.exp(y) if log else y, np.nan)
    out[f"{name}_sd"] = sd
    out[f"{name}_measurement_sd"] = np.where(usable, se_safe, np.nan)
    out[f"{name}_weight"] = weight
    out[f"{name}_model_sd"] = np.sqrt(pooled)
    out[f"{name}_check_sd"], out[f"{name}_check_n"] = check_sd, check_n


def task_error_factor(
    model: SelectorModel, evidence: pd.DataFrame, name: str, task_type: str
) -> float:
    """The factor that puts the prior's error sd, scale·(spread + floor), on the task
    type's cross-validated error: over the configs measured on it, the root mean square
    of that sd (the full ensemble's spread at each) equals :func:`held_out_error`. The
    scale was fitted on the cross-validation folds' spread and is applied to the full
    ensemble's, which can differ several times over (a newcomer's real configs: folds
    0.011–0.013, full ensemble 0.023–0.138, so 77–299 points against a cross-validated
    error of 46–56); 1 where nothing was held out."""
    rows, held_out = _held_out(model, evidence, name, task_type)
    if rows.empty:
        return 1.0
    target = model.targets[name]
    x = model.encoder.transform(
        model.context_rows(model.configs.loc[rows["config_hash"]], task_type)
    )
    spread = target.predict_raw(x)[1]
    claimed = float(np.mean((target.scale * (spread + target.floor)) ** 2))
    return math.sqrt(held_out / claimed) if claimed > 0 and held_out > 0 else 1.0


def held_out_error(
    model: SelectorModel, evidence: pd.DataFrame, name: str, task_type: str
) -> float:
    """The task type's cross-validated error sd of the prior: the root mean of its
    measured configs' held-out misfits (``<name>_misfit_var``), at least
    ``MIN_MODEL_SHARE`` of misfit plus measurement noise as in training; 0 where nothing
    was held out."""
    return math.sqrt(_held_out(model, evidence, name, task_type)[1])


def _held_out(
    model: SelectorModel, evidence: pd.DataFrame, name: str, task_type: str
) -> tuple[pd.DataFrame, float]:
    """The task type's measured configs with a held-out misfit, and the variance
    :func:`held_out_error` is the root of (0 without any)."""
    column = f"{name}_misfit_var"
    if column not in evidence:
        return evidence.iloc[:0], 0.0
    rows = evidence[(evidence["task_type"] == task_type) & evidence[column].notna()]
    rows = rows[rows["config_hash"].isin(model.configs.index)]
    if rows.empty:
        return rows, 0.0
    misfit = float(np.mean(rows[column]))
    noise = float(np.mean(np.nan_to_num(measurement_variance(rows, name))))
    return rows, max(misfit, MIN_MODEL_SHARE * (misfit + noise))


def measurement_variance(evidence: pd.DataFrame, name: str) -> np.ndarray:
    """Per evidence row, the sampling variance of its measured ``name`` on the fitting
    scale: the squared standard error of its quality, or of its log latency quantile
    (``QUANTILE_NOISE``); NaN where unknown."""
    if name == "quality":
        return evidence["quality_se"].to_numpy(dtype=float) ** 2
    n = evidence["n_latency"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return QUANTILE_NOISE[name] * evidence["log_latency_var"].to_numpy(dtype=float) / n


def checked_error(residual: np.ndarray, se: np.ndarray) -> tuple[float, int]:
    """The prior's error sd as the measured candidates show it (module docstring): the
    upper ``CHECK_CONFIDENCE`` bound from the residuals (measurement − prior) less their
    measurement noise, and how many there were; (0, 0) without any."""
    from scipy import stats

    use = np.isfinite(residual) & np.isfinite(se)
    k = int(use.sum())
    if k == 0:
        return 0.0, 0
    squares = float(np.sum(residual[use] ** 2))
    bound = squares / stats.chi2.ppf(1 - CHECK_CONFIDENCE, k) - float(np.mean(se[use] ** 2))
    return math.sqrt(max(bound, 0.0)), k


def thin_model_check(
    residual: np.ndarray, se: np.ndarray, models: pd.Series, *, ample: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, the prior's checked error sd (:func:`checked_error`) and how many
    residuals it was checked on, and whether they are its model's own: the task type's
    check, except for a thin model's rows (:func:`selection._selection_bias.thin_models`)
    where the fit is ``ample``, which get the check on that model's own measured
    candidates where that is larger. The trees learn mostly from the models with many
    configs, so they can predict a thin model's far worse than the task type's check,
    pooled over every model, says (issue 50's uneven world: sim-xl's 10 measured qa
    configs missed by 0.25 against the task type's 0.077), and its measurements then
    weigh as little as the others' though its prior is worse. Only raised, as the check
    is: a thin model the trees predict well keeps the task type's."""
    from selection._selection_bias import thin_models

    task_sd, task_n = checked_error(residual, se)
    check_sd, check_n = np.full(len(residual), task_sd), np.full(len(residual), task_n)
    of_model = np.zeros(len(residual), dtype=bool)
    if not ample:
        return check_sd, check_n, of_model
    names = models.astype(str).to_numpy()
    for thin in thin_models(names):
        rows = names == thin
        own_sd, own_n = checked_error(np.where(rows, residual, np.nan), se)
        if own_sd > task_sd:
            check_sd[rows], check_n[rows], of_model[rows] = own_sd, own_n, True
    return check_sd, check_n, of_model


def quality_measurement(
    model: SelectorModel,
    task_type: str,
    index: pd.Index,
    measured: pd.Series,
    unseen: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per config of ``index``, the quality measurement the estimate combines, its
    standard error, and whether it is the config's own cases (else the multilevel fit's
    reading of it, :func:`multilevel_quality`; ``unseen``: the rows of configs of
    ``index`` the selector never saw, read too). A measured config's fit is the better
    reading where it borrows from the others; where it is far less sure than the config's
    own cases (``DEGENERATE_FIT``: a fit saturated by its fixed effects, or one that cannot
    tell the suites from the settings: every config of one setting run on one suite, so
    its estimate at the average suite mix rests on the effects' flat prior), it says less
    than those cases, and they are taken instead: read at a standard error of 2.4
    against its cases' 0.09, a config measured 0 of 8 got 4% of its estimate from the
    measurement and was estimated 62% (a newcomer's real qa runs). Cut to [0, 1], where
    a quality lies (the fit's suite adjustment read that config at −1.6%). The own cases
    are read at the task type's suite mix (:mod:`selection.suite_mix`), so configs run on
    different suites are not compared on different cases."""
    fit_y, fit_se = multilevel_quality(model, task_type, unseen)
    fit_y = fit_y.reindex(index).to_numpy(dtype=float)
    fit_se = fit_se.reindex(index).to_numpy(dtype=float)
    at_mix = suite_mix(model, task_type)
    own_y = at_mix["mean"].reindex(index).to_numpy(dtype=float)
    own_se = at_mix["se"].reindex(index).to_numpy(dtype=float)
    own = measured.to_numpy(dtype=bool) & np.isfinite(own_y) & np.isfinite(own_se)
    own &= ~(fit_se <= DEGENERATE_FIT * own_se)  # NaN (no fit) counts as less sure
    y = np.clip(np.where(own, own_y, fit_y), 0.0, 1.0)
    return y, np.where(own, own_se, fit_se), own


def multilevel_quality(
    model: SelectorModel, task_type: str, unseen: pd.DataFrame | None = None
) -> tuple[pd.Series, pd.Series]:
    """Every known config's quality on ``task_type`` and its standard error by the
    multilevel model of the task's measured means (:func:`quality_fit`), by config
    hash, and those of the ``unseen`` configs; NaN without measurements."""
    found = quality_fit(model, task_type, unseen)
    if found is None:
        return (pd.Series(np.nan, index=model.configs.index),) * 2
    return found.mean, found.sd


def quality_fit(
    model: SelectorModel, task_type: str, unseen: pd.DataFrame | None = None
) -> multilevel.Fit | None:
    """The multilevel fit (:mod:`selection.multilevel`) of the task type's measured
    configs' quality read at the task type's suite mix (:mod:`selection.suite_mix`: own
    cases, moderated standard errors, a suite not run filled from relatives with the
    fill's uncertainty; the fit's suite effects read only configs it could not fill);
    None without measurements. ``unseen``: rows (as ``model.configs``'s) of configs the
    selector never saw, named as candidates: read by the same fit from their settings'
    measured effects, the known configs' readings unchanged. Cached per task type (and
    unseen configs) on the model: every recommendation for a task type reads the same
    fit."""
    cache = model._multilevel
    extra = unseen.index.difference(model.configs.index) if unseen is not None else pd.Index([])
    key = (task_type, "unseen", tuple(extra)) if len(extra) else task_type
    if key not in cache:
        if len(extra):  # a few sets of unseen candidates kept, the oldest dropped
            kept = [k for k in cache if isinstance(k, tuple) and k[1:2] == ("unseen",)]
            if len(kept) >= MAX_CACHED:
                cache.pop(kept[0])
        at_mix = suite_mix(model, task_type)
        y, se = at_mix["mean"], at_mix["se"]
        configs = model.configs
        use = y.notna() & np.isfinite(se) & (se > 0) & y.index.isin(configs.index)
        if len(extra):
            configs = pd.concat([configs, unseen.loc[extra, configs.columns]])
        factors = quality_factors(configs)
        shares = _fit_shares(model, task_type, at_mix)
        ordered = [n for n in STUDIED_PARAMETERS if n in factors and READ_BETWEEN_MEASURED]
        found = None
        if use.any():
            found = multilevel.fit_checked(
                y[use], se[use] ** 2, factors, shares, ordered, read_only=extra
            )
        cache[key] = found
    return cache[key]


def quality_factors(configs: pd.DataFrame) -> pd.DataFrame:
    """The factors the multilevel fit reads of ``configs`` (rows as ``model.configs``'s):
    model, template (its name and text) and each setting, as text."""
    return pd.DataFrame(
        {
            "model": configs["model"].astype(str),
            "template": configs["template"].astype(str)
            + "\x1f"
            + configs["template_text"].astype(str),
            **{name: configs[name].astype(str) for name in NAMES if name in configs},
        },
        index=configs.index,
    )


def _fit_shares(model: SelectorModel, task_type: str, at_mix: pd.DataFrame) -> pd.DataFrame | None:
    """The suite shares the fit reads each config's measurement at: the task type's mix
    where :func:`selection.suite_mix.suite_mix` read it there (every suite run, or the
    missing ones filled from relatives' paired differences), its own shares where it
    could not (no relative run on a suite it lacks); None where every row is the mix."""
    shares = _suite_shares(model, task_type)
    if shares.shape[1] < 2:
        return None
    own = at_mix.loc[at_mix.index.intersection(shares.index)]
    unfilled = own.index[own["missing"].map(len).gt(0) & own["read_from"].eq(NO_RELATIVE)]
    if unfilled.empty:
        return None
    mix = pd.Series(at_mix["mix"].iloc[0]).reindex(shares.columns).fillna(0.0)
    shares.loc[~shares.index.isin(unfilled)] = mix.to_numpy()
    return shares


def shared_case_variance(model: SelectorModel, task_type: str) -> float:
    """The variance every config's quality estimate on ``task_type`` shares because all
    were measured on the same cases: how much a case's score, averaged over configs,
    varies about its suite's mean (less what the configs' own noise adds), averaged over
    each suite's cases at the task type's suite mix. The multilevel model compares
    configs on shared cases (its suite effects), so this error cancels in a comparison
    but not in a config's quality on the task: three configs measured on the same 36
    cases, 8 points of standard error each, were given ±1.9 points between them."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    per_case = scores.groupby("case")["quality"].agg(["mean", "var", "count"])
    suite = per_case.index.str.split("/", n=1).str[0]
    n_cases, n_suites = len(per_case), suite.nunique()
    if n_cases <= n_suites:
        return 0.0
    about_suite = per_case["mean"] - per_case["mean"].groupby(suite).transform("mean")
    config_noise = float((per_case["var"].fillna(0.0) / per_case["count"]).mean())
    case_var = max(0.0, float(np.sum(about_suite**2)) / (n_cases - n_suites) - config_noise)
    weight = per_case["count"].groupby(suite).sum()
    weight = weight / weight.sum()
    return case_var * float(np.sum(weight**2 / pd.Series(suite).value_counts()[weight.index]))


def _suite_shares(model: SelectorModel, task_type: str) -> pd.DataFrame:
    """Per measured config, the share of its cases on each suite of ``task_type``."""
    scores = model.case_scores[model.case_scores["task_type"] == task_type]
    suite = scores["case"].str.split("/", n=1).str[0]
    counts = pd.crosstab(scores["config_hash"], suite)
    return counts.div(counts.sum(axis=1), axis=0)


def pooled_latency(
    model: SelectorModel, evidence: pd.DataFrame, name: str
) -> tuple[pd.Series, pd.Series]:
    """The task type's measured configs' log latency quantile ``name`` (corrected for
    Harrell–Davis's small-sample bias: :func:`selection.aggregate.unbiased_quantile`) and
    its standard error, pooled over configs that differ only in sampling settings
    (``SAMPLING``: they change which tokens are drawn, not the work per token; where they
    change output length, the data's τ² keeps them apart); by config hash."""
    y, se, _ = _pooled_latency(model, evidence, name, True)
    return y, se


def _pooled_latency(
    model: SelectorModel, evidence: pd.DataFrame, name: str, over_sampling: bool
) -> tuple[pd.Series, pd.Series, dict[str, tuple[str, ...]]]:
    """:func:`pooled_latency`, or the configs' own figures where ``over_sampling`` is
    False, and per config hash the others it was pooled with (none: not in the dict)."""
    table = evidence.set_index("config_hash")
    n = table["n_latency"].astype(float)
    value = unbiased_quantile(table[name].astype(float), table["log_latency_var"], n, name)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(value.where(value > 0))
        se = np.sqrt(QUANTILE_NOISE[name] * table["log_latency_var"].astype(float) / n)
    if not over_sampling:
        return y, se.where(n >= 2), {}
    keys = (*IDENTITY, *(p for p in NAMES if p not in SAMPLING))
    task = str(evidence["task_type"].iloc[0]) if len(evidence) else ""
    return _pooled(model, y, se.where(n >= 2), keys, task)


def latency_checks(
    model: SelectorModel, evidence: pd.DataFrame, name: str = "latency_p50"
) -> list[multilevel.Check]:
    """Per model, the test of pooling its latency over sampling settings (they change
    which tokens are drawn, not the work per token, unless they change output length):
    Cochran's Q of its measured configs' log ``name`` about the mean of their group
    (same model, template and other settings), χ² with Σ(group size − 1) degrees of
    freedom when sampling settings do not move latency. Where a model fails it, its
    configs are not pooled (:func:`pooled_latency`)."""
    from scipy import stats

    y, se, groups = _latency_groups(model, evidence, name)
    found = []
    for level in sorted({g[0] for g in groups}):
        q, df = 0.0, 0
        for members in _member_lists(groups, level):
            if len(members) < 2:
                continue
            w = 1.0 / se[members] ** 2
            centre = np.sum(w * y[members]) / np.sum(w)
            q += float(np.sum(w * (y[members] - centre) ** 2))
            df += len(members) - 1
        if df:
            found.append(multilevel.Check("model", "sampling", level, q, df, stats.chi2.sf(q, df)))
    return found


def _latency_groups(
    model: SelectorModel, evidence: pd.DataFrame, name: str
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    table = evidence.set_index("config_hash")
    n = table["n_latency"].astype(float)
    value = unbiased_quantile(table[name].astype(float), table["log_latency_var"], n, name)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(value.where(value > 0))
        se = np.sqrt(QUANTILE_NOISE[name] * table["log_latency_var"].astype(float) / n)
    use = y.notna() & np.isfinite(se) & (se > 0) & (n >= 2) & y.index.isin(model.configs.index)
    identity = model.configs.reindex(y.index[use])
    keys = (*IDENTITY, *(p for p in NAMES if p not in SAMPLING))
    groups = list(zip(*(identity[k].astype(str) for k in keys), strict=True))
    return y[use].to_numpy(), se[use].to_numpy(), groups


def _member_lists(groups: list[tuple[str, ...]], model_name: str) -> list[np.ndarray]:
    found: dict[tuple[str, ...], list[int]] = {}
    for i, group in enumerate(groups):
        if group[0] == model_name:
            found.setdefault(group, []).append(i)
    return [np.array(m) for m in found.values()]


def _pooled(
    model: SelectorModel, y: pd.Series, se: pd.Series, keys: tuple[str, ...], task_type: str
) -> tuple[pd.Series, pd.Series, dict[str, tuple[str, ...]]]:
    """``y`` and ``se`` (by config hash) pooled within groups of equal ``keys``, except
    for the models whose latency the data show moved by sampling settings
    (:func:`latency_checks`, on the median): their configs keep their own. Also, per
    config hash pooled with others, those others' hashes."""
    use = y.notna() & np.isfinite(se) & (se > 0)
    if not use.any():
        return y, se, {}
    identity = model.configs.reindex(y.index[use])
    groups = list(zip(*(identity[k].astype(str) for k in keys), strict=True))
    unpooled = {c.level for c in _latency_checks_cached(model, task_type) if not c.holds}
    if unpooled:
        groups = [
            (*g, h) if g[0] in unpooled else g for g, h in zip(groups, y.index[use], strict=True)
        ]
    mean, pooled_se, _ = pool(y[use].to_numpy(), se[use].to_numpy() ** 2, groups)
    members: dict[tuple[str, ...], list[str]] = {}
    for group, config in zip(groups, y.index[use], strict=True):
        members.setdefault(group, []).append(str(config))
    siblings = {
        config: tuple(other for other in found if other != config)
        for found in members.values()
        if len(found) > 1
        for config in found
    }
    return (
        y.where(~use, pd.Series(mean, index=y[use].index)),
        se.where(~use, pd.Series(pooled_se, index=se[use].index)),
        siblings,
    )


def _latency_checks_cached(model: SelectorModel, task_type: str) -> list[multilevel.Check]:
    """:func:`latency_checks` of ``task_type``, cached on the model (pooling runs for
    every recommendation)."""
    key = ("latency checks", task_type)
    if key not in model._multilevel:
        evidence = model.evidence[model.evidence["task_type"] == task_type]
        model._multilevel[key] = latency_checks(model, evidence)
    return model._multilevel[key]


def assumption_checks(model: SelectorModel, task_type: str) -> list[multilevel.Check]:
    """Every pooling assumption tested for ``task_type``: the quality model's
    (:meth:`selection.multilevel.Fit.check`) and latency's pooling over sampling settings
    (:func:`latency_checks`); those that fail are not used."""
    found = quality_fit(model, task_type)
    checks = list(found.checks) if found is not None else []
    if "latency_p50" in model.targets:
        checks += _latency_checks_cached(model, task_type)
    return checks


def misfit(evidence: pd.DataFrame, out: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``out``, the model's held-out error variance for that config
    (``<name>_misfit_var`` from :mod:`selection.training`; NaN where unknown) and the
    number of (config, suite) rows it was estimated from (its suites)."""
    column = f"{name}_misfit_var"
    if column not in evidence:
        return np.full(len(out), np.nan), np.zeros(len(out))
    table = evidence.set_index("config_hash").reindex(out.index)
    return table[column].to_numpy(dtype=float), table["n_suites"].fillna(0).to_numpy(dtype=float)


def self_shift(evidence: pd.DataFrame, out: pd.DataFrame, name: str, task_type: str) -> np.ndarray:
    """Per row of ``out``, what turns the model's prediction for that config into one
    made without its own rows on ``task_type`` (``<name>_self_shift`` from
    :mod:`selection.training`, fitting scale; NaN where unknown)."""
    column = f"{name}_self_shift"
    if column not in evidence:
        return np.full(len(out), np.nan)
    table = evidence[evidence["task_type"] == task_type].set_index("config_hash")
    return table[column].reindex(out.index).to_numpy(dtype=float)
