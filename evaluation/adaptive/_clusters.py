"""Which cases of a race share a source, when the suite does not say.

A race's error bound (P(the truly best config is eliminated) ≤ α) rests on its paired
tests, and those are valid for cases that are independent or clustered by known groups
(:func:`evaluation.statistics.compare_scores`, clustered t). Cases drawn from the same
document or topic are not independent: configs' differences cluster by source, the plain
standard error is too small by √(1 + (m − 1)·ρ) (m cases per source, ρ their
intra-class correlation), and a race that tests as if they were independent eliminated a
truly best config in 8–25% of trials against the stated 5% (issue 30).

So when no case declares a ``group``, the race looks in the case metadata for a field
that names a source (``GROUPING_FIELDS``: document, source, topic, …, with or without an
``_id`` suffix) and is shared by cases (at least two cases per value on average, present
on nearly every case), and failing that, for an id prefix before a path-like separator
("report-3/q2" → "report-3"), and for passages the cases' inputs share (a sentence or line
of ``MIN_PASSAGE_CHARS`` or more found in at least two inputs and in at most half of
them, so that instructions every case repeats do not count; cases sharing one are one
source, and sources sharing one are merged). Failing all, it estimates the clustering
from the suite's order: suites are written source by source, so cases that share a
source sit together, and the race clusters runs of ⌈√n⌉ consecutive cases (the batch
size of batch means, the classic variance estimate for dependence that is local in a
sequence). A source longer than a run, or cut by a run's end, is still mostly within one
run or two; a shuffled suite whose inputs do not show their sources is not covered, and
the race's output says so. Grouping by a field, passage or run that does not, in truth,
cluster the differences leaves the tests valid (a clustered standard error is consistent
under independence too), at some cost in power (issue 30's race benchmark, independent cases:
a median 4–11 points more of the grid's generations); missing a clustering that does is what
breaks the bound. Only a suite of fewer than ``MIN_CASES_FOR_RUNS`` cases is tested as
independent, and the race says that its bound is not promised for cases that share
sources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evaluation.wording import counted

GROUPING_FIELDS = (
    "group",
    "document",
    "doc",
    "source",
    "topic",
    "article",
    "passage",
    "context",
    "paper",
    "report",
    "file",
    "url",
    "conversation",
    "dialogue",
    "thread",
)
"""Metadata fields read as a case's source (case-insensitive; ``_id``/``id`` suffixes too)."""
MIN_PRESENT = 0.9
"""Share of the cases a field must be set on."""
ID_SEPARATORS = "/:#"
MIN_PASSAGE_CHARS = 40
"""The shortest sentence or line that, shared by inputs, marks a shared source."""
_PIECE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+")
"""Where an input is cut into the sentences and lines compared across inputs."""
MIN_CASES_FOR_RUNS = 10
"""The fewest cases clustered by runs of the suite's order (3 runs of 4 at 10 cases)."""
FEW_GROUPS = 5
"""Below this many clusters the race's output says its tests are weak: at a 300-case,
24-config race's per-test level (0.05 / (8 looks × 23 rivals)) a t with 3 degrees of
freedom needs ~16 standard errors and one with 4 about 10, against 3.5 for many clusters."""


@dataclass(frozen=True)
class Clustering:
    """Per case (``case_ids``) its cluster label, or None for every case when no
    clustering is known; ``basis`` says where it came from, ``field`` the metadata field
    or id separator, ``run_length`` the cases per run of the suite's order."""

    case_ids: tuple[str, ...]
    groups: tuple[str | None, ...]
    basis: Literal["declared", "metadata", "case id", "text", "order", "none"]
    field: str | None = None
    run_length: int | None = None

    @property
    def known(self) -> bool:
        return self.basis != "none"

    @property
    def n_groups(self) -> int:
        return len({g for g in self.groups if g is not None})

    @property
    def text(self) -> str:
        """What the race's error bound assumes, for its output."""
        few = ""
        clusters = self.n_groups + self.groups.count(None)  # a case alone is a cluster
        if self.known and self.basis != "order" and clusters < FEW_GROUPS:
            few = (
                f"; with {clusters} clusters its clustered tests have "
                f"{counted(clusters - 1, 'degree')} of freedom and can seldom drop a config "
                "(give each case the group of its document to cluster more finely)"
            )
        return self._assumption + few

    @property
    def _assumption(self) -> str:
        if self.basis == "declared":
            return (
                f"cases clustered by their declared groups ({self.n_groups}): the bound "
                "allows for cases of a group being alike"
            )
        if self.basis == "metadata":
            return (
                f"no groups declared; cases clustered by their metadata field "
                f"'{self.field}' ({self.n_groups} values): the bound allows for cases "
                "that share it being alike"
            )
        if self.basis == "case id":
            return (
                f"no groups declared; cases clustered by their id before '{self.field}' "
                f"({self.n_groups} prefixes): the bound allows for cases that share it "
                "being alike"
            )
        if self.basis == "text":
            return (
                f"no groups declared; cases clustered by the passages their inputs share "
                f"({self.n_groups} sources): the bound allows for cases of a source being "
                "alike"
            )
        if self.basis == "order":
            return (
                f"no groups declared or found in the case metadata or ids; cases clustered "
                f"by runs of {self.run_length} consecutive cases in the suite's order "
                f"({self.n_groups} runs): the bound allows for cases of a source being alike "
                "if they sit together in the suite (as in a suite written document by "
                "document), NOT if the suite was shuffled (declare a group per case, or "
                "its document in its metadata, to be sure)"
            )
        return (
            "no groups declared or found in the case metadata: the bound assumes the "
            "cases are independent and is NOT promised if cases share documents or "
            "topics (declare a group per case, or its document in its metadata, to have "
            "it hold)"
        )


def case_clustering(
    case_ids: Sequence[str],
    declared: Sequence[str | None],
    metadata: Sequence[Mapping[str, Any]] | None = None,
    inputs: Sequence[str] | None = None,
) -> Clustering:
    """The clustering of a suite's cases (``case_ids`` in the suite's order; ``inputs``
    their texts): declared groups, else a source field of the metadata, else an id
    prefix, else passages the inputs share, else runs of consecutive cases, else none
    (module docstring)."""
    ids, n = tuple(case_ids), len(case_ids)
    if any(g is not None for g in declared):
        labels = tuple(None if g is None else str(g) for g in declared)
        return Clustering(ids, labels, "declared")
    found = _metadata_field(metadata or [{}] * n, n)
    if found is not None:
        field, values = found
        return Clustering(ids, values, "metadata", field)
    for separator in ID_SEPARATORS:
        prefixes = [c.rsplit(separator, 1)[0] if separator in c else None for c in ids]
        if _shares(prefixes, n):
            return Clustering(ids, tuple(prefixes), "case id", separator)
    sources = _shared_passages(inputs or [""] * n)
    if _shares(sources, n):
        return Clustering(ids, sources, "text")
    if n >= MIN_CASES_FOR_RUNS:
        run = math.ceil(math.sqrt(n))
        runs = tuple(f"run-{i // run}" for i in range(n))
        return Clustering(ids, runs, "order", run_length=run)
    return Clustering(ids, (None,) * n, "none")


def _metadata_field(
    metadata: Sequence[Mapping[str, Any]], n: int
) -> tuple[str, tuple[str | None, ...]] | None:
    """The coarsest source-like field shared by the cases, and its values."""
    names = {key for meta in metadata for key in meta if _source_like(key)}
    best = None
    for name in sorted(names):
        values = [_scalar(meta.get(name)) for meta in metadata]
        if not _shares(values, n):
            continue
        distinct = len({v for v in values if v is not None})
        if best is None or distinct < best[0]:
            best = (distinct, name, tuple(values))
    return None if best is None else (best[1], best[2])


def _shared_passages(inputs: Sequence[str]) -> tuple[str | None, ...]:
    """Per input, its source: the cases linked by passages they share (module
    docstring), None for an input that shares none."""
    n = len(inputs)
    pieces = [
        {p for p in (q.strip() for q in _PIECE_BREAK.split(text)) if len(p) >= MIN_PASSAGE_CHARS}
        for text in inputs
    ]
    holders: dict[str, list[int]] = {}
    for i, found in enumerate(pieces):
        for piece in found:
            holders.setdefault(piece, []).append(i)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    linked = [False] * n
    for cases in holders.values():
        if 2 <= len(cases) <= n / 2:
            for i in cases:
                linked[i] = True
                parent[root(i)] = root(cases[0])
    return tuple(f"source-{root(i)}" if linked[i] else None for i in range(n))


def _source_like(key: str) -> bool:
    stem = re.sub(r"[_\-\s]*id$", "", key.strip().lower())
    return stem in GROUPING_FIELDS


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value) if isinstance(value, str | int) else None


def _shares(values: Sequence[str | None], n: int) -> bool:
    """Set on nearly every case, and at least two cases per value on average."""
    present = [v for v in values if v is not None]
    distinct = len(set(present))
    return n > 0 and len(present) >= MIN_PRESENT * n and 2 <= distinct <= len(present) / 2
