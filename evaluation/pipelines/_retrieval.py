"""Retrieval: the corpus a ``rag`` pipeline searches, and cosine top-k search over it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from evaluation import bounded_json
from evaluation.errors import SpecError
from evaluation.input_files import MAX_DATA_BYTES, read_text
from evaluation.pipelines._chunking import Unit, chunk_text

DOCUMENT = "<document>"  # SpecError's field for a whole file (evaluation.spec._fields)


@dataclass(frozen=True)
class CorpusChunk:
    """A chunk of a corpus document; ``id`` is ``"<document id>#<chunk index>"``."""

    id: str
    document: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    chunk: CorpusChunk
    similarity: float


@cache
def load_corpus(path: str) -> tuple[tuple[str, str], ...]:
    """(id, text) of each document of a JSONL corpus (``{"id": ..., "text": ...}`` per
    line). Read once per process: every config and case of a sweep shares it."""
    documents = []
    seen: set[str] = set()
    try:
        # split at "\n" only: splitlines() also splits at U+2028 and other characters
        # that JSON strings may hold raw
        lines = read_text(path, "utf-8-sig", most=MAX_DATA_BYTES).split("\n")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text ({exc.reason})", field=DOCUMENT, path=path) from exc
    except OSError as exc:  # a file past the most, or one that went (exit 1 before)
        raise SpecError(f"cannot read it: {exc.strerror}", field=DOCUMENT, path=path) from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = bounded_json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(f"not JSON ({exc.msg})", field=DOCUMENT, path=where) from exc
        if not (
            isinstance(row, dict)
            and isinstance(row.get("id"), str)
            and isinstance(row.get("text"), str)
        ):
            raise SpecError('expected {"id": text, "text": text}', field=DOCUMENT, path=where)
        if row["id"] in seen:
            raise SpecError(f"duplicate document id {row['id']!r}", field=DOCUMENT, path=where)
        seen.add(row["id"])
        documents.append((row["id"], row["text"]))
    if not documents:
        raise SpecError("the corpus has no documents", field=DOCUMENT, path=path)
    return tuple(documents)


def corpus_chunks(
    documents: tuple[tuple[str, str], ...], size: int, overlap: int, unit: Unit
) -> list[CorpusChunk]:
    """Every document chunked alike, in corpus order."""
    return [
        CorpusChunk(f"{doc_id}#{c.index}", doc_id, c.start, c.end, c.text)
        for doc_id, text in documents
        for c in chunk_text(text, size, overlap, unit)
    ]


def retrieve(
    query: list[float],
    vectors: list[list[float]],
    chunks: list[CorpusChunk],
    *,
    k: int,
    min_similarity: float,
) -> list[Hit]:
    """The ``k`` chunks most cosine-similar to ``query`` with similarity at least
    ``min_similarity``, best first (ties: corpus order). A zero vector matches nothing."""
    if not chunks:
        return []
    import numpy as np  # here: what runs a case (a lane worker) loads it only to retrieve

    matrix = np.asarray(vectors, dtype=float)
    q = np.asarray(query, dtype=float)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(norms > 0, matrix @ q / np.where(norms > 0, norms, 1.0), -np.inf)
    order = np.argsort(-similarity, kind="stable")[:k]
    return [
        Hit(chunks[i], float(similarity[i]))
        for i in order
        if similarity[i] >= min_similarity and np.isfinite(similarity[i])
    ]
