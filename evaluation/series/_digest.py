"""A suite's digest for a series: its cases as ``suite_fingerprint`` reads them, then
``+`` and a digest of everything else that changes what is asked or how it is scored (the
sidecar's task type, labels and default metrics; each case's system prompt, whole chat
input and metadata). Digests stored before the second part existed are compared on
the first part only, so an upgrade alone is no suite change."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from evaluation.storage.repository import suite_fingerprint
from evaluation.suites import Suite


def suite_digest(suite: Suite) -> str:
    """``CASES+REST``: what a run of ``suite`` asked and how it was scored."""
    rest = {
        "task_type": suite.task_type,
        "labels": list(suite.labels),
        "default_metrics": list(suite.default_metrics),
        "cases": [
            [
                c.id,
                c.system,
                c.input if isinstance(c.input, str) else [asdict(m) for m in c.input],
                c.metadata,
            ]
            for c in suite.cases
        ],
    }
    payload = json.dumps(rest, sort_keys=True, default=str).encode()
    return f"{suite_fingerprint(suite)}+{hashlib.sha256(payload).hexdigest()[:8]}"


def digests_differ(before: str, after: str) -> bool:
    """Whether two stored digests name different suites; unknown (empty) is no change,
    and a digest without the ``+`` part is compared on the cases only."""
    if not before or not after:
        return False
    if "+" in before and "+" in after:
        return before != after
    return before.split("+")[0] != after.split("+")[0]
