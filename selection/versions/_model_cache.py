"""A stored version's fitted selector, loaded once and kept for the next question."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from selection._forest import SelectorFormatError
from selection.model import SelectorModel
from selection.schema import SelectorBlob, SelectorVersion
from selection.versions._store import deserialize

LOAD_ERRORS = (LookupError, SelectorFormatError)
"""What loading a stored selector raises: no blob, or a blob that is not a selector in
the current format (one line each, never a traceback)."""
_CACHE: dict[tuple[str, int, str, datetime], SelectorModel] = {}
_CACHE_SIZE = 4


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


def loaded_model(session: Session, version: SelectorVersion) -> SelectorModel | None:
    """:func:`load_model`, or None where the stored model cannot be loaded."""
    try:
        return load_model(session, version)
    except LOAD_ERRORS:
        return None
