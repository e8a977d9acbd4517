"""A suite's documents: the sidecar's ``documents`` key, read at load time and joined to
the cases that refer to them.

``documents`` is either a JSONL file (path relative to the sidecar; one
``{"id": ..., "text": ...}`` object per line, ``title`` optional), e.g. a RAG corpus, or
a seeded generator, so that long documents need not be committed::

    documents: corpora/rag-reports.jsonl
    documents: {generator: annual-reports, seed: 2026, words: [3000, 20000]}

``annual-reports`` makes one report per entry of ``words`` (its length in tokens), with
ids ``report-01``, ``report-02``, ... (see ``annual_reports``). A case then names its
document in ``metadata.document_id``: the loaded case carries the text in
``metadata.document`` (where the pipelines read it; the input is the question or task).
``metadata.evidence`` (``[{"document", "start", "end"}]``, character offsets) must lie
within a document of the suite. Problems are SuiteErrors naming file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from evaluation import bounded_json
from evaluation.documents.annual_reports import annual_report
from evaluation.errors import SuiteError
from evaluation.input_files import MAX_DATA_BYTES, read_text
from evaluation.suites import Case

GENERATORS = ("annual-reports",)


@cache
def generated_reports(seed: int, words: tuple[int, ...]) -> dict[str, str]:
    """The ``annual-reports`` documents: id -> text (made once per process)."""
    return {
        report_id(i): annual_report(seed, report_id(i), count).text
        for i, count in enumerate(words, 1)
    }


def report_id(number: int) -> str:
    return f"report-{number:02d}"


def suite_documents(value: Any, sidecar: Path) -> dict[str, str]:
    """The documents the sidecar's ``documents`` names: id -> text."""
    if isinstance(value, str) and value.strip():
        return read_documents(sidecar.parent / value)
    if isinstance(value, Mapping):
        return _generated(value, sidecar)
    raise SuiteError(
        "expected a JSONL file of documents, or {generator: annual-reports, seed: N, "
        f"words: [N, ...]}}; got {value!r}",
        path=str(sidecar),
        field="documents",
    )


def _generated(value: Mapping[str, Any], sidecar: Path) -> dict[str, str]:
    where = {"path": str(sidecar)}
    unknown = sorted(set(value) - {"generator", "seed", "words"})
    if unknown:
        raise SuiteError(
            "unknown key (expected generator, seed, words)",
            field=f"documents.{unknown[0]}",
            **where,
        )
    if value.get("generator") not in GENERATORS:
        raise SuiteError(
            f"expected one of: {', '.join(GENERATORS)}; got {value.get('generator')!r}",
            field="documents.generator",
            **where,
        )
    seed, words = value.get("seed"), value.get("words")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SuiteError(f"expected an integer, got {seed!r}", field="documents.seed", **where)
    if not isinstance(words, list) or not words:
        raise SuiteError(
            f"expected a non-empty list of word counts, got {words!r}",
            field="documents.words",
            **where,
        )
    for i, count in enumerate(words):
        if isinstance(count, bool) or not isinstance(count, int) or not 300 <= count <= 50_000:
            raise SuiteError(
                f"expected a word count between 300 and 50000, got {count!r}",
                field=f"documents.words[{i}]",
                **where,
            )
    return generated_reports(seed, tuple(words))


def read_documents(path: Path) -> dict[str, str]:
    """id -> text of a documents JSONL file."""
    try:
        # a named pipe is refused, not waited on; a file past the most, before it is read
        lines = read_text(path, most=MAX_DATA_BYTES).split("\n")
    except OSError as exc:
        raise SuiteError(f"cannot read the documents file: {exc.strerror}", path=str(path)) from exc
    documents: dict[str, str] = {}
    for line, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = bounded_json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"invalid JSON: {exc.msg}", path=str(path), line=line) from exc
        if not (
            isinstance(row, dict)
            and isinstance(row.get("id"), str)
            and row["id"].strip()
            and isinstance(row.get("text"), str)
        ):
            raise SuiteError('expected {"id": "...", "text": "..."}', path=str(path), line=line)
        if row["id"] in documents:
            raise SuiteError(
                f"duplicate document id '{row['id']}'", path=str(path), line=line, field="id"
            )
        documents[row["id"]] = row["text"]
    if not documents:
        raise SuiteError("the documents file has no documents", path=str(path))
    return documents


def attach_documents(
    cases: Sequence[Case], documents: Mapping[str, str], jsonl: Path
) -> tuple[Case, ...]:
    """The cases with ``metadata.document`` filled from ``metadata.document_id``, their
    document ids and evidence spans checked against ``documents``."""
    lines = _case_lines(jsonl)
    out = []
    for case in cases:
        where = {"path": str(jsonl), "line": lines.get(case.id)}
        doc_id = case.metadata.get("document_id")
        metadata = case.metadata
        if doc_id is not None:
            if doc_id not in documents:
                raise SuiteError(
                    f"'{doc_id}' is not a document of this suite ({_listing(documents)})",
                    field="metadata.document_id",
                    **where,
                )
            metadata = {**metadata, "document": documents[doc_id]}
        for i, span in enumerate(case.metadata.get("evidence") or ()):
            problem = _span_problem(span, documents)
            if problem:
                raise SuiteError(problem, field=f"metadata.evidence[{i}]", **where)
        out.append(replace(case, metadata=metadata) if metadata is not case.metadata else case)
    return tuple(out)


def _span_problem(span: Any, documents: Mapping[str, str]) -> str | None:
    if not isinstance(span, dict) or not {"document", "start", "end"} <= set(span):
        return 'expected {"document": id, "start": N, "end": N}'
    text = documents.get(span["document"])
    if text is None:
        return f"'{span['document']}' is not a document of this suite ({_listing(documents)})"
    start, end = span["start"], span["end"]
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
        return (
            f"expected 0 <= start < end <= {len(text)} (the document's length), got {start}, {end}"
        )
    return None


def _listing(documents: Mapping[str, str]) -> str:
    ids = list(documents)
    return ", ".join(ids[:5]) + (f", ... {len(ids)} in all" if len(ids) > 5 else "")


def _case_lines(jsonl: Path) -> dict[str, int]:
    """Case id -> its line (the suite already loaded, so every line parses)."""
    lines: dict[str, int] = {}
    for line, raw in enumerate(read_text(jsonl, "utf-8-sig", most=MAX_DATA_BYTES).split("\n"), 1):
        if raw.strip():
            lines.setdefault(str(json.loads(raw).get("id")), line)
    return lines
