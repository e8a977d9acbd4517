"""Stored selector versions: each training's row and model, listed, read back, promoted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from evaluation.storage.models import utcnow
from selection._codec import FORMAT, decode, encode
from selection._forest import SelectorFormatError
from selection.model import SelectorModel
from selection.schema import SelectorBlob, SelectorVersion
from selection.training import TrainingResult
from selection.versions._decisions import PromotionDecision


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


def save_version(
    session: Session, result: TrainingResult, decision: PromotionDecision
) -> SelectorVersion:
    """Store a trained selector with its metrics and the promotion decision."""
    row = SelectorVersion(
        metrics=json_safe(result.metrics),
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


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
