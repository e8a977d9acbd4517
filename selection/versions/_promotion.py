"""Whether a new selector version replaces the current one, and the reason it says.

The rule: a new version is promoted unless it is worse than the current one on
data the current one never saw. The comparison rows are the (config, suite) aggregates
missing from the current version's training data, recorded outcomes apart (no suite's
measurement: :func:`_outcomes_apart`); the new version is refitted on those it saw (so
both predict data they never saw). The new version counts as worse on a target
when its per-row errors exceed the current version's by more than the margin
(``tolerance`` of the current error plus a small absolute slack) with evidence: the
one-sided 95% lower bound of the paired mean difference (``scipy.stats.ttest_rel``) lies
above the margin. With fewer such rows (same data, or only more samples of the
same pairs), both versions are measured on the same data, the new version's: its
cross-validation folds, the current version's settings refit on each fold's other rows
among the (config, suite) aggregates it learned from (:func:`compare_on_folds`), the
difference of the two errors against the margin. Each version's own recorded errors are
never compared: measured on different data they could hold a version learned from three
configs that all scored 0.500 (MAE 0.00) against every later one. Where the current
version's model cannot be loaded, or it learned from none of the rows outside each fold,
the new version is promoted, saying it was not comparable.
"""

from __future__ import annotations

import pandas as pd
from sqlmodel import Session

from evaluation.wording import counted
from selection.model import SelectorModel
from selection.outcomes import outcome_keys
from selection.quality_text import quality
from selection.schema import SelectorVersion
from selection.training import TrainingResult
from selection.versions._decisions import PromotionDecision
from selection.versions._model_cache import LOAD_ERRORS, load_model
from selection.versions._paired_errors import (
    COMPARED,
    compare_on_folds,
    compare_on_rows,
    held_out,
)
from selection.versions._store import current_version

SLACK = {"quality": 0.002, "latency_p95": 0.005}
"""Absolute slack per target (0.002 on quality's 0–1 scale; half a percent of latency)."""
MIN_COMPARISON_ROWS = 3


def decide_promotion(
    result: TrainingResult,
    incumbent: SelectorVersion | None,
    incumbent_model: SelectorModel | None,
    *,
    tolerance: float = 0.05,
) -> PromotionDecision:
    """Whether ``result`` may replace ``incumbent`` (see the module docstring)."""
    simulated = simulated_words(result.rows)
    if incumbent is None:
        measured = ", ".join(
            _describe(name, result.metrics[name][metric], simulated)
            for name, metric in COMPARED.items()
            if metric in result.metrics.get(name, {})
        )
        reason = "first selector version: nothing to compare with" + (
            f"; its cross-validated errors (held-out {held_out(result.grouping)}): {measured}"
            if measured
            else ""
        )
        return PromotionDecision(True, reason, basis="first version")
    rows = result.rows
    if incumbent_model is None:
        why = "its stored model cannot be loaded, so what it learned from is not known"
        return _not_comparable(result, incumbent, why)
    keys = rows["config_hash"] + "|" + rows["suite"]
    never_saw = ~keys.isin(incumbent_model.trained_keys)
    outcomes = outcome_keys(rows["suite"])
    unseen, seen = never_saw & ~outcomes, ~never_saw
    enough = unseen.sum() >= MIN_COMPARISON_ROWS and seen.sum() >= MIN_COMPARISON_ROWS
    how = ""
    if enough:
        basis = "unseen rows"
        comparison = compare_on_rows(result, incumbent_model, rows[seen], rows[unseen])
    else:
        basis = "cross-validation"
        comparison, how = compare_on_folds(result, incumbent, incumbent_model)
        if not comparison and set(COMPARED) & set(result.model.targets):
            why = (
                f"in each fold of this version's cross-validation, version {incumbent.id} "
                "learned from none of the other folds' (config, suite) aggregates"
            )
            return _not_comparable(result, incumbent, why)
    worse = []
    for name, errors in comparison.items():
        margin = errors["incumbent"] * tolerance + SLACK[name]
        errors["margin"] = margin
        # paired rows: the lower bound of the difference; recorded CV errors: the difference
        excess = errors.get("difference_low", errors["candidate"] - errors["incumbent"])
        if excess > margin:
            worse.append(
                f"{_describe(name, errors['candidate'], simulated)} > "
                f"{_describe(name, errors['incumbent'])} of version {incumbent.id}"
            )
    where = (
        f"on {int(unseen.sum())} (config, suite) aggregates version {incumbent.id} never saw, "
        f"both fit on the {int(seen.sum())} it saw, so that only the training "
        "differs (unchanged training gives the same errors)"
        if basis == "unseen rows"
        else "in cross-validation on this version's data "
        f"({_unseen_count(unseen, seen, never_saw & outcomes, incumbent.id)}), {how}"
    )
    if not comparison:
        worse.append("no comparable error: the new version lacks quality or latency models")
    if worse:
        reason = f"not promoted: worse {where}: " + "; ".join(worse)
    else:
        reason = (
            f"promoted: not worse than version {incumbent.id} beyond the margin "
            f"{'with 95% confidence ' if basis == 'unseen rows' else ''}{where} "
            f"({_changes(comparison, incumbent.id, simulated)})"
        )
    return PromotionDecision(
        promoted=not worse,
        reason=reason,
        incumbent_id=incumbent.id,
        basis=basis,
        comparison=comparison,
        n_comparison_rows=int(unseen.sum()) if basis == "unseen rows" else 0,
    )


def promotion_advice(session: Session, version: SelectorVersion) -> str:
    """How what ``version`` (not promoted) learned reaches the promoted answer: a retrain
    on the same data stores nothing (:func:`nothing_new`), and the promotion rule
    compares on (config, suite) pairs the current version never saw only from
    ``MIN_COMPARISON_ROWS`` of them, so how many more to measure (a newcomer's version 3
    had 2: each `retrain` after it stored a copy, not promoted on the same figures)."""
    current = current_version(session)
    if current is None:
        return "`evalflow retrain` trains a version to promote"
    try:
        known = load_model(session, current).trained_keys
        unknown = pd.Series(sorted(load_model(session, version).trained_keys - known))
        new = int((~outcome_keys(unknown)).sum())  # outcomes are not compared on
    except LOAD_ERRORS:
        new = 0
    if new >= MIN_COMPARISON_ROWS:
        return (
            f"it was compared with version {current.id} on the {new} (config, suite) pairs "
            f"that version never saw; measure more and run `evalflow retrain` to compare again"
        )
    more = MIN_COMPARISON_ROWS - new
    return (
        f"to have it promoted, measure {more} more (config, suite) pair{'s' * (more != 1)} "
        f"version {current.id} never saw (a config on a suite it was not run on) and run "
        f"`evalflow retrain`: from {MIN_COMPARISON_ROWS} such pairs the new version is "
        f"compared with version {current.id} on them"
    )


def _unseen_count(
    unseen: pd.Series, seen: pd.Series, outcomes: pd.Series, incumbent_id: int | None
) -> str:
    """Why cross-validation decided: how many (config, suite) aggregates the current
    version never saw, too few to compare on (a newcomer's 2 new ones were reported as
    "no data version 1 had not seen"), and the configs whose recorded outcomes it never
    saw, which are not compared on (:func:`_outcomes_apart`)."""
    new, old = int(unseen.sum()), int(seen.sum())
    apart = _outcomes_apart(int(outcomes.sum()))
    if new == 0:
        return f"no data version {incumbent_id} had not seen{apart}"
    if new < MIN_COMPARISON_ROWS:
        return (
            f"only {new} (config, suite) aggregate{'s' * (new != 1)} version {incumbent_id} "
            f"had not seen{apart}: {MIN_COMPARISON_ROWS} needed to compare on them"
        )
    return (
        f"{new} (config, suite) aggregates version {incumbent_id} had not seen{apart}, but "
        f"only {old} it had: {MIN_COMPARISON_ROWS} needed to refit on"
    )


def _outcomes_apart(configs: int) -> str:
    """ ", recorded outcomes apart (of N configs)": outcomes the current version never
    learned from are no new data to compare the versions on. They are no suite's
    measurement but the application's own judgement, counted half a generation
    (:mod:`selection.outcomes`), and a retrain after 3 outcomes compared the versions on
    them alone, as "3 (config, suite) aggregates version 1 never saw"; the new version
    is still measured with them in its cross-validation."""
    if not configs:
        return ""
    return f", recorded outcomes apart (of {counted(configs, 'config')})"


def _not_comparable(
    result: TrainingResult, incumbent: SelectorVersion, why: str
) -> PromotionDecision:
    """Promoted without a comparison: the current version cannot be measured on this
    version's data (``why``)."""
    reason = (
        f"promoted: not comparable with version {incumbent.id}: {why}; this one learned "
        f"from {result.n_rows} (config, suite) aggregates, version {incumbent.id} from "
        f"{incumbent.n_rows}"
    )
    return PromotionDecision(
        True, reason, incumbent_id=incumbent.id, basis="not comparable", n_comparison_rows=0
    )


def _changes(
    comparison: dict[str, dict[str, float]], incumbent_id: int | None, simulated: str
) -> str:
    """The two versions' errors, each target's as shown old → new: "version 1 → this one:
    quality MAE 0.126 → 0.124, latency_p95 mean relative error unchanged at 47.7%"; where
    every one shows alike (the same training on
    the same rows errs alike), once: "version 1 and this one alike: quality MAE 0.126,
    ..." (was "latency_p95 mean relative error 2157.4% → 2157.4%")."""
    pairs = {
        n: (_figure(n, e["incumbent"]), _figure(n, e["candidate"])) for n, e in comparison.items()
    }
    if all(old == new for old, new in pairs.values()):
        alike = ", ".join(_named(n, old, simulated) for n, (old, _) in pairs.items())
        return f"version {incumbent_id} and this one alike: {alike}"
    changed = ", ".join(
        _named(n, f"unchanged at {old}" if old == new else f"{old} → {new}", simulated)
        for n, (old, new) in pairs.items()
    )
    return f"version {incumbent_id} → this one: {changed}"


def _describe(name: str, error: float, simulated: str = "") -> str:
    """An error as the reason says it: quality's mean absolute error on the 0–1 scale, a
    positive target's mean relative error (|predicted − measured| / measured), of
    ``simulated`` latencies where some were (:func:`simulated_words`)."""
    return _named(name, _figure(name, error), simulated)


def _figure(name: str, error: float) -> str:
    """An error's figure: "0.126" (quality's MAE), "48.5%" (a relative error)."""
    return quality(error) if name == "quality" else f"{100 * error:.1f}%"


def _named(name: str, figures: str, simulated: str = "") -> str:
    """``figures`` of the target ``name`` with what they measure: "quality MAE 0.126",
    "latency_p95 mean relative error 48.5%" and, where ``simulated`` says some latencies
    were the simulated backend's, that."""
    if name == "quality":
        return f"quality MAE {figures}"
    return f"{name} mean relative error {figures}" + (f" ({simulated})" if simulated else "")


def simulated_words(rows: pd.DataFrame) -> str:
    """What a latency error is of where the (config, suite) aggregates learned from hold
    simulated ones: "of simulated latencies, not real ones" (every one), "N of M
    aggregates' latencies simulated, not real ones"; "" where none is. The simulated
    backend's latencies are modelled, not a host's: `retrain --include-simulated` said
    "latency_p95 mean relative error 2157.4%" and nothing of that."""
    if "n_simulated" not in rows or rows.empty:
        return ""
    fake = int((rows["n_simulated"].fillna(0) > 0).sum())
    if not fake:
        return ""
    if fake == len(rows):
        return "of simulated latencies, not real ones"
    return f"{fake} of {len(rows)} aggregates' latencies simulated, not real ones"
