"""A retrain on data a stored version already learned from: nothing trained or stored."""

from __future__ import annotations

from dataclasses import asdict, replace

import pandas as pd
from sqlmodel import Session

from selection.model import SelectorModel
from selection.schema import SelectorVersion
from selection.training import Hyperparameters, TrainingResult, training_rows
from selection.versions._decisions import PromotionDecision, RetrainOutcome
from selection.versions._model_cache import load_model, loaded_model
from selection.versions._promotion import decide_promotion, promotion_advice
from selection.versions._store import (
    current_version,
    json_safe,
    list_versions,
    promote,
    sklearn_version,
)


def nothing_new(
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
    same_data = _same_data(len(data), n_outcomes)
    if _learned_from(session, incumbent, data, hyperparameters):
        reason = (
            f"nothing new since version {incumbent.id}: it learned from {same_data}; no "
            f"version stored, version {incumbent.id} stays current"
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
        f"version {same.id} learned from {same_data} and was not promoted; no version "
        f"stored, version {incumbent.id} stays current; version {same.id} answers with "
        f"`evalflow recommend TASK --version {same.id}`; {promotion_advice(session, same)}"
    )
    return _kept(incumbent, reason, n_outcomes)


def _same_data(n_rows: int, n_outcomes: int) -> str:
    """ "these same 40 generations" (and the recorded outcomes among the ``n_rows``
    learned from: "… and 2 recorded outcomes"), as `retrain` counts what it trained on."""
    from selection.outcomes import outcomes_words

    return f"these same {n_rows - n_outcomes} generations{outcomes_words(n_outcomes)}"


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
is compared again, on the same data (:func:`compare_on_folds`)."""


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
    incumbent_model = loaded_model(session, incumbent)
    decision = decide_promotion(result, incumbent, incumbent_model, tolerance=tolerance)
    reason = (
        f"version {version.id} learned from {_same_data(len(data), n_outcomes)} with these "
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

    settings = json_safe(asdict(hyperparameters or Hyperparameters()))
    if (
        version.data_fingerprint != fingerprint(data)
        or version.hyperparameters != settings
        or version.sklearn_version != sklearn_version()
    ):
        return False
    return loaded_model(session, version) is not None
