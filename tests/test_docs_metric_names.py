"""Metric names in the docs are spelled as the registry spells them: a backticked word
that is a metric's name up to case and underscores (``rouge_l`` for ``rougeL``) is a
name a user would copy into a spec and see refused."""

from __future__ import annotations

import re
from pathlib import Path

from evaluation.metrics import metric_names

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    ROOT / "ARCHITECTURE.md",
    ROOT / "benchmarks" / "perf" / "README.md",
]


def _key(word: str) -> str:
    return re.sub(r"[^a-z0-9@]", "", word.lower())


def test_metric_names_in_the_docs_are_the_registry_names():
    names = set(metric_names())
    spelled = {_key(name): name for name in names}
    wrong = [
        f"{path.relative_to(ROOT)}:{number}: `{word}` (the metric is `{spelled[_key(word)]}`)"
        for path in DOCS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for word in re.findall(r"`([^`\s]+)`", line)
        if _key(word) in spelled and word not in names
    ]
    assert not wrong, "\n".join(wrong)
