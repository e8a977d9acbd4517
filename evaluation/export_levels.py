"""What `evalflow export` writes: its formats and levels, apart from the export itself
(which imports pandas), so that the command line offers them without loading it."""

from __future__ import annotations

FORMATS: tuple[str, ...] = ("csv", "json", "parquet", "excel")
LEVELS: tuple[str, ...] = (
    "generations",
    "scores",
    "aggregates",
    "comparisons",
    "ratings",
    "judgements",
    "stages",
)
