"""The digest of the code a comparison is computed by (no pandas, numpy or scipy: the
view's first page checks its stored pages against it)."""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import version
from pathlib import Path


@functools.cache
def statistics_code() -> str:
    """The source of the statistics and of the comparison, and the versions of the
    numeric libraries under them: a stored comparison or page made by other code is
    stale."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted([*(here.parent / "statistics").glob("*.py"), *here.glob("_*.py")]):
        h.update(path.read_bytes())
    for package in ("numpy", "pandas", "scipy", "statsmodels"):
        h.update(version(package).encode())
    return h.hexdigest()
