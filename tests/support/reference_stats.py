"""statsmodels' ``multipletests``, the tests' reference for adjusted p-values, without the
``gc.collect()`` its Holm step runs on every call: a full collection of the calling
process's heap, ~0.8 s of CPU in a pytest-xdist worker late in a full run (6.4 s for
test_multiple's eight families). What it returns is the same."""

from __future__ import annotations

import gc
from unittest import mock

from statsmodels.stats.multitest import multipletests as _multipletests


def multipletests(pvals, **kwargs):
    """``statsmodels.stats.multitest.multipletests(pvals, **kwargs)``, collecting nothing
    (it imports ``gc`` inside the call: the module's function is what is replaced)."""
    with mock.patch.object(gc, "collect", lambda *_: 0):
        return _multipletests(pvals, **kwargs)
