"""Selector versions: store each training, decide promotion, load a version back.

Promotion rule: a new version is promoted unless it is worse than the current one on
data the current one never saw. The comparison rows are the (config, suite) aggregates
missing from the current version's training data; the new version is refitted without
them (so both predict data they never saw). The new version counts as worse on a target
when its per-row errors exceed the current version's by more than the margin
(``tolerance`` of the current error plus a small absolute slack) with evidence: the
one-sided 95% lower bound of the paired mean difference (``scipy.stats.ttest_rel``) lies
above the margin. With fewer such rows (same data, or only more samples of the
same pairs), both versions are measured on the same data, the new version's: its
cross-validation folds, the current version's settings refit on each fold's other rows
among the (config, suite) aggregates it learned from (:func:`_compare_on_folds`), the
difference of the two errors against the margin. Each version's own recorded errors are
never compared: measured on different data they could hold a version learned from three
configs that all scored 0.500 (MAE 0.00) against every later one. Where the current
version's model cannot be loaded, or it learned from none of the rows outside each fold,
the new version is promoted, saying it was not comparable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from evaluation.storage.models import utcnow
from selection._codec import FORMAT, decode, encode
from selection._db import with_selector_tables
from selection._forest import SelectorFormatError
from selection.frame import validate_training_frame
from selection.model import LOG_TARGETS, SelectorModel
from selection.schema import SelectorBlob, SelectorVersion
from selection.training import (
    Hyperparameters,
    TrainingResult,
    fit_ensemble,
    grouped_folds,
    out_of_fold,
    train_selector,
    training_rows,
)

COMPARED = {"quality": "mae", "latency_p95": "relative_error"}
"""Targets a new version must not be worse on, and the error used for each."""
SLACK = {"quality": 0.002, "latency_p95": 0.005}
"""Absolute slack per target (0.2 quality points; half a percent of latency)."""
MIN_COMPARISON_ROWS = 3
LOAD_ERRORS = (LookupError, SelectorFormatError)
"""What loading a stored selector raises: no blob, or a blob that is not a selector in
the current format (one line each, never a traceback)."""
_CACHE: dict[tuple[str, int, str, datetime], SelectorModel] = {}
_CACHE_SIZE = 4


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    incumbent_id: int | None = None
    basis: str = ""  # "unseen rows", "cross-validation", "not comparable" or "first version"
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)
    n_comparison_rows: int = 0


@dataclass
class RetrainOutcome:
    """What one retraining did: the stored version and why it was (not) promoted."""

    version_id: int
    decision: PromotionDecision
    result: TrainingResult | None  # None: a stored version learned from this data; none trained
    sklearn_version: str
    n_outcomes: int = 0


def serialize(model: SelectorModel) -> bytes:
    """The bytes stored in ``selector_blobs`` (format :data:`selection._codec.FORMAT`)."""
    return encode(model)


def deserialize(data: bytes, blob_format: str = FORMAT) -> SelectorModel:
    """A stored selector. Only :data:`selection._codec.FORMAT` is read, and reading it
    cannot run code; older pickle (joblib) blobs are refused without being opened."""
    if blob_format != FORMAT:
        raise SelectorFormatError(
            f"stored as {blob_format!r}, a pickle format that evalflow no longer loads "
            "because loading it can run code; retrain the selector (evalflow retrain)"
        )
    return decode(data)


def sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def current_version(session: Session) -> SelectorVersion | None:
    """The promoted version promoted last, or None."""
    statement = (
        select(SelectorVersion)
        .where(col(SelectorVersion.promoted))
        .order_by(col(SelectorVersion.promoted_at).desc(), col(SelectorVersion.id).desc())
    )
    return session.exec(statement).first()


def list_versions(session: Session) -> list[SelectorVersion]:
    return list(session.exec(select(SelectorVersion).order_by(col(SelectorVersion.id))))


def load_model(session: Session, version: SelectorVersion) -> SelectorModel:
    """The fitted selector of ``version`` (cached per database, version, data and time
    stored: an in-memory database's URL and ids repeat from one database to the next)."""
    bind = session.get_bind()
    key = (str(bind.url), int(version.id or 0), version.data_fingerprint, version.created_at)
    if key not in _CACHE:
        blob = session.get(SelectorBlob, version.id)
        if blob is None:
            raise LookupError(f"selector version {version.id} has no stored model")
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = deserialize(blob.data, blob.format)
    return _CACHE[key]


def save_version(
    session: Session, result: TrainingResult, decision: PromotionDecision
) -> SelectorVersion:
    """Store a trained selector with its metrics and the promotion decision."""
    row = SelectorVersion(
        metrics=_json_safe(result.metrics),
        features=result.model.encoder.columns,
        hyperparameters=asdict(result.hyperparameters),
        task_types=result.model.task_types,
        data_fingerprint=result.fingerprint,
        sklearn_version=sklearn_version(),
        n_generations=result.n_generations,
        n_rows=result.n_rows,
        grouping=result.grouping,
        training_seconds=result.seconds,
        promoted=decision.promoted,
        promoted_at=utcnow() if decision.promoted else None,
        promotion_reason=decision.reason,
        notes=list(result.notes),
    )
    session.add(row)
    session.flush()
    session.add(SelectorBlob(version_id=row.id, format=FORMAT, data=serialize(result.model)))
    return row


def promote(session: Session, version_id: int, reason: str) -> SelectorVersion:
    """Make ``version_id`` current (a manual promotion or a rollback)."""
    row = session.get(SelectorVersion, version_id)
    if row is None:
        raise LookupError(f"selector version {version_id} does not exist")
    row.promoted, row.promoted_at, row.promotion_reason = True, utcnow(), reason
    session.add(row)
    return row


def decide_promotion(
    result: TrainingResult,
    incumbent: SelectorVersion | None,
    incumbent_model: SelectorModel | None,
    *,
    tolerance: float = 0.05,
) -> PromotionDecision:
    """Whether ``result`` may replace ``incumbent`` (see the module docstring)."""
    if incumbent is None:
        measured = ", ".join(
            _describe(name, result.metrics[name][metric])
            for name, metric in COMPARED.items()
            if metric in result.metrics.get(name, {})
        )
        held_out = {"suite": "suites", "config": "configs"}.get(result.grouping, result.grouping)
        reason = "first selector version: nothing to compare with" + (
            f"; its cross-validated errors (held-out {held_out}): {measured}" if measured else ""
        )
        return PromotionDecision(True, reason, basis="first version")
    rows = result.rows
    unseen = pd.Series(False, index=rows.index)
    if incumbent_model is not None:
        keys = rows["config_hash"] + "|" + rows["suite"]
        unseen = ~keys.isin(incumbent_model.trained_keys)
    enough = unseen.sum() >= MIN_COMPARISON_ROWS and (~unseen).sum() >= MIN_COMPARISON_ROWS
    how = ""
    if incumbent_model is None:
        why = "its stored model cannot be loaded, so what it learned from is not known"
        return _not_comparable(result, incumbent, why)
    if enough:
        basis = "unseen rows"
        comparison = _compare_on_rows(result, incumbent_model, rows[~unseen], rows[unseen])
    else:
        basis = "cross-validation"
        comparison, how = _compare_on_folds(result, incumbent, incumbent_model)
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
                f"{_describe(name, errors['candidate'])} > "
                f"{_describe(name, errors['incumbent'])} of version {incumbent.id}"
            )
    where = (
        f"on {int(unseen.sum())} (config, suite) aggregates version {incumbent.id} never saw, "
        f"both fit on the {int((~unseen).sum())} it saw, so that only the training "
        "differs (unchanged training gives the same errors)"
        if basis == "unseen rows"
        else f"in cross-validation on this version's data ({_unseen_count(unseen, incumbent.id)}), "
        f"{how}"
    )
    if not comparison:
        worse.append("no comparable error: the new version lacks quality or latency models")
    if worse:
        reason = f"not promoted: worse {where}: " + "; ".join(worse)
    else:
        summary = ", ".join(
            _change(n, e["incumbent"], e["candidate"]) for n, e in comparison.items()
        )
        reason = (
            f"promoted: not worse than version {incumbent.id} beyond the margin "
            f"{'with 95% confidence ' if basis == 'unseen rows' else ''}{where} "
            f"(version {incumbent.id} → this one: {summary})"
        )
    return PromotionDecision(
        promoted=not worse,
        reason=reason,
        incumbent_id=incumbent.id,
        basis=basis,
        comparison=comparison,
        n_comparison_rows=int(unseen.sum()) if basis == "unseen rows" else 0,
    )


def _compare_on_folds(
    result: TrainingResult, incumbent: SelectorVersion, incumbent_model: SelectorModel
) -> tuple[dict[str, dict[str, float]], str]:
    """Both versions' cross-validated errors on the new version's aggregates, with the
    same folds: the new one's out-of-fold predictions, and the current one's way of
    training (its settings, fit only on the (config, suite) aggregates it learned from)
    refit on each fold's other rows. Each version's own recorded errors were measured
    on its own data: a version that learned from 3 configs all scoring 0.500 had a
    quality MAE of 0.00, which no version with more data could ever meet (a newcomer's
    v5, with 26 more cases of each config, was "worse in cross-validation: 2.92 > 0.00"
    forever), and toggling --include-simulated compared one pair of versions with other
    figures in each direction. Also the text saying how they were compared."""
    from selection.training import target_arrays

    rows = result.rows
    keys = rows["config_hash"] + "|" + rows["suite"]
    learned = keys.isin(incumbent_model.trained_keys).to_numpy()
    settings = _settings(incumbent)
    alike = bool(learned.all()) and settings == result.hyperparameters
    groups = rows["suite" if result.grouping == "suite" else "config_hash"].to_numpy()
    strata = rows["task_type"].to_numpy()
    encoder = result.model.encoder
    x = encoder.transform(rows)
    comparison: dict[str, dict[str, float]] = {}
    left_out = 0
    for name in COMPARED:
        if name not in result.model.targets:
            continue
        y, weight, _ = target_arrays(rows, name)
        use = np.isfinite(y)
        folds = _folds(groups[use], strata[use], result.hyperparameters.n_splits)
        data = (x[use], y[use], weight[use], encoder)
        if f"oof_{name}" in rows:  # freshly trained: its own cross-validation, these folds
            new = rows[f"oof_{name}"].to_numpy(dtype=float)[use]
        else:
            new = out_of_fold(*data, result.hyperparameters, name, folds)[0]
        old = new if alike else out_of_fold(*data, settings, name, folds, learned[use])[0]
        both = np.isfinite(new) & np.isfinite(old)
        left_out = max(left_out, int((~both).sum()))
        if both.any():
            truth, w = y[use][both], weight[use][both]
            comparison[name] = {
                "candidate": _weighted_error(name, new[both], truth, w),
                "incumbent": _weighted_error(name, old[both], truth, w),
            }
    held_out = {"suite": "suites", "config": "configs"}.get(result.grouping, result.grouping)
    how = (
        f"version {incumbent.id} cross-validated on the same folds (held-out {held_out}), "
        "fit only on the aggregates it learned from"
    )
    if alike:
        how += (
            ": it learned from every one, with the same settings, so the two err alike and "
            "only the generations each learned from set them apart"
        )
    if left_out:
        how += (
            f"; {left_out} aggregate{'s' * (left_out != 1)} left out: in "
            f"{'its' if left_out == 1 else 'their'} fold version {incumbent.id} learned "
            "from none of the others"
        )
    elsewhere = len(incumbent_model.trained_keys - set(keys))
    if elsewhere:
        how += f"; the {elsewhere} it learned from that this data lacks do not count"
    return comparison, how


def _folds(
    groups: np.ndarray, strata: np.ndarray, n_splits: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds training cross-validated with (:func:`selection.training._fit_target`):
    grouped, or with a single group every row on both sides (in-sample)."""
    if len(np.unique(groups)) >= 2:
        return grouped_folds(groups, strata, n_splits)
    everything = np.arange(len(groups))
    return [(everything, everything)]


def _weighted_error(
    name: str, predicted: np.ndarray, truth: np.ndarray, weight: np.ndarray
) -> float:
    """A target's error as training records it: quality's MAE (predictions clipped to
    [0, 1]), a positive target's mean relative error, weighted as the rows are."""
    if name in LOG_TARGETS:
        truth, predicted = np.exp(truth), np.exp(predicted)
    else:
        predicted = np.clip(predicted, 0, 1)
    return float(np.average(_errors(COMPARED[name], predicted, truth), weights=weight))


def _settings(version: SelectorVersion) -> Hyperparameters:
    """The training settings ``version`` stored (settings added since: the defaults)."""
    known = {f.name for f in fields(Hyperparameters)}
    stored = version.hyperparameters or {}
    return Hyperparameters(**{k: v for k, v in stored.items() if k in known})


def _unseen_count(unseen: pd.Series, incumbent_id: int | None) -> str:
    """Why cross-validation decided: how many (config, suite) aggregates the current
    version never saw, too few to compare on (a newcomer's 2 new ones were reported as
    "no data version 1 had not seen")."""
    new, seen = int(unseen.sum()), int((~unseen).sum())
    if new == 0:
        return f"no data version {incumbent_id} had not seen"
    if new < MIN_COMPARISON_ROWS:
        return (
            f"only {new} (config, suite) aggregate{'s' * (new != 1)} version {incumbent_id} "
            f"had not seen: {MIN_COMPARISON_ROWS} needed to compare on them"
        )
    return (
        f"{new} (config, suite) aggregates version {incumbent_id} had not seen, but only "
        f"{seen} it had: {MIN_COMPARISON_ROWS} needed to refit on"
    )


def train_and_maybe_promote(
    engine: Engine,
    frame: pd.DataFrame,
    *,
    include_outcomes: bool = True,
    hyperparameters: Hyperparameters | None = None,
    tolerance: float = 0.05,
) -> RetrainOutcome:
    """Train a selector on ``frame`` (plus recorded outcomes), store it as a new version
    and promote it if it is not worse than the current one. Raises TrainingDataError when
    the data cannot train a selector."""
    from selection.outcomes import outcomes_frame

    with Session(with_selector_tables(engine)) as session:
        outcomes = outcomes_frame(session) if include_outcomes else pd.DataFrame()
    parts = [frame, outcomes] if len(outcomes) else [frame]
    data = validate_training_frame(pd.concat(parts, ignore_index=True))
    with Session(engine, expire_on_commit=False) as session:
        kept = _nothing_new(session, data, hyperparameters, len(outcomes), tolerance)
    if kept is not None:
        return kept
    result = train_selector(data, hyperparameters)
    with Session(engine, expire_on_commit=False) as session:
        incumbent = current_version(session)
        incumbent_model = None
        if incumbent is not None:
            try:
                incumbent_model = load_model(session, incumbent)
            except LOAD_ERRORS:
                incumbent_model = None  # compared on its recorded cross-validation errors
        decision = decide_promotion(result, incumbent, incumbent_model, tolerance=tolerance)
        row = save_version(session, result, decision)
        session.commit()
        return RetrainOutcome(
            version_id=int(row.id or 0),
            decision=decision,
            result=result,
            sklearn_version=row.sklearn_version,
            n_outcomes=len(outcomes),
        )


def _nothing_new(
    session: Session,
    data: pd.DataFrame,
    hyperparameters: Hyperparameters | None,
    n_outcomes: int,
    tolerance: float,
) -> RetrainOutcome | None:
    """Nothing trained or stored where a stored version learned from exactly this data
    with these settings and this scikit-learn: a new version would be the same model (a
    second `retrain` with nothing stored since made and promoted a copy; after a version
    was not promoted, each `retrain` stored another copy of it; toggling `retrain
    --include-simulated` off, on and off stored a third version, a copy of the first).
    The current version is kept; another such version is compared with it as a new one
    would be (:func:`_compared_again`) unless it already was. One whose stored model
    cannot be loaded is trained again."""
    incumbent = current_version(session)
    if incumbent is None:
        return None
    if _learned_from(session, incumbent, data, hyperparameters):
        reason = (
            f"nothing new since version {incumbent.id}: it learned from these same "
            f"{len(data)} generations; no version stored, version {incumbent.id} stays current"
        )
        return _kept(incumbent, reason, n_outcomes)
    same = next(
        (
            version
            for version in reversed(list_versions(session))
            if version.id != incumbent.id and _learned_from(session, version, data, hyperparameters)
        ),
        None,
    )
    if same is None:
        return None
    if not _compared_with(same, incumbent):
        return _compared_again(
            session, same, incumbent, data, hyperparameters, n_outcomes, tolerance
        )
    reason = (
        f"version {same.id} learned from these same {len(data)} generations and was not "
        f"promoted; no version stored, version {incumbent.id} stays current; version "
        f"{same.id} answers with `evalflow recommend TASK --version {same.id}`; "
        f"{promotion_advice(session, same)}"
    )
    return _kept(incumbent, reason, n_outcomes)


def _kept(incumbent: SelectorVersion, reason: str, n_outcomes: int) -> RetrainOutcome:
    """The current version kept: nothing trained or stored."""
    decision = PromotionDecision(False, reason, incumbent_id=incumbent.id, basis="same data")
    return RetrainOutcome(
        version_id=int(incumbent.id or 0),
        decision=decision,
        result=None,
        sklearn_version=incumbent.sklearn_version,
        n_outcomes=n_outcomes,
    )


OWN_ERRORS_RULE = "worse in cross-validation ("
"""How a version's reason began when it was not promoted on the two versions' own
cross-validated errors, each measured on its own data (until 2026-11-27): such a version
is compared again, on the same data (:func:`_compare_on_folds`)."""


def _compared_with(version: SelectorVersion, incumbent: SelectorVersion) -> bool:
    """Whether ``version`` was compared with ``incumbent`` when it was stored and not
    promoted: ``incumbent`` was current then, nothing has been promoted since, and the
    comparison was not on each version's own errors (:data:`OWN_ERRORS_RULE`: a
    newcomer's version 5 stayed unpromoted against version 3's 0.00 of 3 flat configs)."""
    return (
        not version.promoted
        and incumbent.promoted_at is not None
        and version.created_at >= incumbent.promoted_at
        and OWN_ERRORS_RULE not in (version.promotion_reason or "")
    )


def _compared_again(
    session: Session,
    version: SelectorVersion,
    incumbent: SelectorVersion,
    data: pd.DataFrame,
    hyperparameters: Hyperparameters | None,
    n_outcomes: int,
    tolerance: float,
) -> RetrainOutcome:
    """``version``, which learned from ``data`` but was never compared with the current
    version (it was current before it, or compared with an earlier one), compared with
    it as a newly trained copy would be (the same model, rows and cross-validated
    errors), and made current again where that copy would have been promoted."""
    result = _stored_result(version, load_model(session, version), data, hyperparameters)
    try:
        incumbent_model = load_model(session, incumbent)
    except LOAD_ERRORS:
        incumbent_model = None
    decision = decide_promotion(result, incumbent, incumbent_model, tolerance=tolerance)
    reason = (
        f"version {version.id} learned from these same {len(data)} generations with these "
        f"settings, so nothing was trained or stored; compared with version {incumbent.id} "
        f"as a new version is, {decision.reason}"
    )
    if decision.promoted:
        promote(session, int(version.id or 0), reason)
        session.commit()
    else:
        reason += (
            f"; version {incumbent.id} stays current; version {version.id} answers with "
            f"`evalflow recommend TASK --version {version.id}`"
        )
    return RetrainOutcome(
        version_id=int((version if decision.promoted else incumbent).id or 0),
        decision=replace(decision, reason=reason, basis=f"same data, {decision.basis}"),
        result=None,
        sklearn_version=version.sklearn_version,
        n_outcomes=n_outcomes,
    )


def _stored_result(
    version: SelectorVersion,
    model: SelectorModel,
    data: pd.DataFrame,
    hyperparameters: Hyperparameters | None,
) -> TrainingResult:
    """What training ``version`` again on ``data`` would give, read from what it stored."""
    return TrainingResult(
        model=model,
        metrics=version.metrics,
        importances=model.importances,
        rows=training_rows(data),
        fingerprint=version.data_fingerprint,
        n_generations=version.n_generations,
        n_rows=version.n_rows,
        grouping=version.grouping,
        seconds=0.0,
        hyperparameters=hyperparameters or Hyperparameters(),
        notes=list(version.notes),
    )


def _learned_from(
    session: Session,
    version: SelectorVersion,
    data: pd.DataFrame,
    hyperparameters: Hyperparameters | None,
) -> bool:
    """Whether ``version`` learned from exactly ``data`` with these settings and this
    scikit-learn, and its stored model loads."""
    from selection.frame import fingerprint

    settings = _json_safe(asdict(hyperparameters or Hyperparameters()))
    if (
        version.data_fingerprint != fingerprint(data)
        or version.hyperparameters != settings
        or version.sklearn_version != sklearn_version()
    ):
        return False
    try:
        load_model(session, version)
    except LOAD_ERRORS:
        return False
    return True


def promotion_advice(session: Session, version: SelectorVersion) -> str:
    """How what ``version`` (not promoted) learned reaches the promoted answer: a retrain
    on the same data stores nothing (:func:`_nothing_new`), and the promotion rule
    compares on (config, suite) pairs the current version never saw only from
    ``MIN_COMPARISON_ROWS`` of them, so how many more to measure (a newcomer's version 3
    had 2: each `retrain` after it stored a copy, not promoted on the same figures)."""
    current = current_version(session)
    if current is None:
        return "`evalflow retrain` trains a version to promote"
    try:
        known = load_model(session, current).trained_keys
        new = len(load_model(session, version).trained_keys - known)
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


def _compare_on_rows(
    result: TrainingResult,
    incumbent: SelectorModel,
    seen: pd.DataFrame,
    unseen: pd.DataFrame,
) -> dict[str, dict[str, float]]:
    from selection.training import target_arrays

    comparison = {}
    for name, metric in COMPARED.items():
        if name not in result.model.targets or name not in incumbent.targets:
            continue
        truth = target_arrays(unseen, name)[0]
        usable = np.isfinite(truth)
        if usable.sum() == 0:
            continue
        refit = fit_ensemble(seen, name, result.model.encoder, result.hyperparameters)
        candidate = refit.predict(result.model.encoder.transform(unseen))[0]
        current = incumbent.targets[name].predict(incumbent.encoder.transform(unseen))[0]
        truth_scale = np.exp(truth) if name in LOG_TARGETS else truth
        new = _errors(metric, candidate[usable], truth_scale[usable])
        old = _errors(metric, current[usable], truth_scale[usable])
        comparison[name] = {
            "candidate": float(new.mean()),
            "incumbent": float(old.mean()),
            "difference_low": _difference_low(new, old),
        }
    return comparison


def _errors(metric: str, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    error = np.abs(predicted - truth)
    return error / truth if metric == "relative_error" else error


def _difference_low(new: np.ndarray, old: np.ndarray) -> float:
    """One-sided 95% lower bound of mean(new − old) (paired t); the plain difference
    when there are too few rows or no variation."""
    from scipy import stats

    difference = new - old
    if len(difference) < 2 or np.allclose(difference, difference[0]):
        return float(difference.mean())
    test = stats.ttest_rel(new, old, alternative="greater")
    return float(test.confidence_interval(0.95).low)


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


def _change(name: str, old: float, new: float) -> str:
    """Two versions' errors on one target, the metric named once: ``quality MAE 12.6 →
    12.4 points``, ``latency_p95 mean relative error 48.5% → 47.9%``."""
    if name == "quality":
        return f"quality MAE {100 * old:.1f} → {100 * new:.1f} points"
    return f"{name} mean relative error {100 * old:.1f}% → {100 * new:.1f}%"


def _describe(name: str, error: float) -> str:
    """An error as the reason says it: quality's mean absolute error in points, a
    positive target's mean relative error (|predicted − measured| / measured)."""
    if name == "quality":
        return f"quality MAE {100 * error:.2f} points"
    return f"{name} mean relative error {100 * error:.1f}%"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
