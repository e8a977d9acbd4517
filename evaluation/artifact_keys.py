"""The keys of an experiment's Prefect artifacts, which its report file's name shares
(``evaluation.report.files``): Prefect-free, so `evalflow report` names the file without
importing Prefect."""

from __future__ import annotations

import re


def artifact_key(experiment: str, kind: str) -> str:
    """Prefect artifact keys must match ^[a-z0-9-]*$."""
    slug = re.sub(r"[^a-z0-9-]+", "-", experiment.lower()).strip("-")
    return f"evalflow-{slug}-{kind}"
