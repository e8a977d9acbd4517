"""Selector versions: store each training, decide promotion, load a version back.

Promotion rule: a new version is promoted unless it is worse than the current one on
data the current one never saw. The comparison rows are the (config, suite) aggregates
missing from the current version's training data; the new version is refitted without
them (so both predict data they never saw). The new version counts as worse on a target
when its per-row errors exceed the current version's by more than the margin
(``tolerance`` of the current error plus a small absolute slack) with evidence: the
one-sided 95% lower bound of the paired mean difference (``scipy.stats.ttest_rel``) lies
above the margin. When there are no such rows (same data, or only more samples of the
same pairs), or when the current version's model cannot be loaded any more, the
cross-validated errors recorded for both versions are compared against the margin, if
both were cross-validated alike (both holding out suites, or both configs); if not, the
errors are not comparable and the new version is promoted, saying so (holding out whole
suites gives errors far above holding out configs: a second suite never got promoted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
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
_CACHE: dict[tuple[str, int, str], SelectorModel] = {}
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
    """The fitted selector of ``version`` (cached per database, version and data)."""
    bind = session.get_bind()
    key = (str(bind.url), int(version.id or 0), version.data_fingerprint)
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
    if incumbent_model is not None and enough:
        basis = "unseen rows"
        comparison = _compare_on_rows(result, incumbent_model, rows[~unseen], rows[unseen])
    elif incumbent.grouping != result.grouping:
        return _not_comparable(result, incumbent, int(unseen.sum()))
    else:
        basis = "cross-validation"
        comparison = {
            name: {
                "candidate": result.metrics[name][metric],
                "incumbent": incumbent.metrics[name][metric],
            }
            for name, metric in COMPARED.items()
            if metric in result.metrics.get(name, {}) and metric in incumbent.metrics.get(name, {})
        }
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
        else f"in cross-validation ({_unseen_count(unseen, incumbent.id)})"
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


def _compared_with(version: SelectorVersion, incumbent: SelectorVersion) -> bool:
    """Whether ``version`` was compared with ``incumbent`` when it was stored and not
    promoted: ``incumbent`` was current then, and nothing has been promoted since."""
    return (
        not version.promoted
        and incumbent.promoted_at is not None
        and version.created_at >= incumbent.promoted_at
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
    result: TrainingResult, incumbent: SelectorVersion, n_unseen: int
) -> PromotionDecision:
    """Promoted without a comparison: too few rows the current version never saw, and
    cross-validation errors measured another way. Holding out whole suites (two suites or
    more) predicts each suite from the others, its errors far above those of holding out
    configs of one suite (the demo's qa-short predicted from a pipeline suite alone:
    p95 latency 350 times too long): compared, a second suite never got promoted."""
    held_out = {"suite": "suites", "config": "configs"}
    reason = (
        f"promoted: not comparable with version {incumbent.id}: it never saw only "
        f"{n_unseen} of these (config, suite) aggregates ({MIN_COMPARISON_ROWS} needed to "
        "compare on them), and the two versions' cross-validation errors were measured "
        f"differently (this one held out {held_out.get(result.grouping, result.grouping)}, "
        f"version {incumbent.id} {held_out.get(incumbent.grouping, incumbent.grouping)}); "
        f"this one learned from {result.n_rows} aggregates, version {incumbent.id} from "
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
