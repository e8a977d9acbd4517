"""The annual-report generator and the bundled pipeline suites: deterministic, facts
where the questions say, straddling facts cut by chunk boundaries unless chunks
overlap, the committed files in step with the generator, and bad documents refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evaluation.documents import annual_report
from evaluation.documents.bundled import (
    RAG_CORPUS,
    REPORT_QA_SEED,
    REPORT_QA_WORDS,
    SUMMARIES_SEED,
    SUMMARIES_WORDS,
    bundled_files,
)
from evaluation.errors import SuiteError
from evaluation.metrics import get_metric
from evaluation.suites import load_suite
from tests.conftest import REPO

SUITES = REPO / "benchmarks" / "suites"
TOKEN = re.compile(r"\S+")


def chunk_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of chunks of ``size`` whitespace tokens sharing ``overlap``."""
    tokens = [m.span() for m in TOKEN.finditer(text)]
    spans, first = [], 0
    while True:
        last = min(first + size, len(tokens)) - 1
        spans.append((tokens[first][0], tokens[last][1]))
        if first + size >= len(tokens):
            return spans
        first += size - overlap


def held_whole(text: str, start: int, end: int, size: int, overlap: int) -> bool:
    return any(s <= start and end <= e for s, e in chunk_spans(text, size, overlap))


def test_the_generator_is_deterministic_and_seeded() -> None:
    first = annual_report(11, "report-01", 4000)
    again = annual_report(11, "report-01", 4000)
    assert first == again
    assert annual_report(12, "report-01", 4000).text != first.text
    assert annual_report(11, "report-02", 4000).text != first.text
    assert first.tokens == 4000
    assert first.text.startswith(first.title)


@pytest.mark.parametrize("words", [3000, 20000])
def test_planted_facts_are_where_they_are_recorded(words: int) -> None:
    report = annual_report(5, "report-01", words)
    starts = [m.start() for m in TOKEN.finditer(report.text)]
    assert len(report.facts) >= 8
    for fact in report.facts:
        sentence = report.text[fact.start : fact.end]
        assert starts[fact.token] == fact.start
        assert len(TOKEN.findall(sentence)) == fact.tokens
        assert fact.references[0] in sentence, fact.key
        assert sum(report.text.count(r) for r in fact.references[:1]) >= 1


def test_straddling_facts_need_overlap() -> None:
    report = annual_report(5, "report-01", 20000)
    cut = {
        size: [f for f in report.facts if size in f.cut_without_overlap]
        for size in (512, 2048, 2000, 3000)
    }
    assert all(cut.values()), cut  # every common size cuts at least one fact
    for size, facts in cut.items():
        for fact in facts:
            assert not held_whole(report.text, fact.start, fact.end, size, 0)
            assert held_whole(report.text, fact.start, fact.end, size, size // 10)
    uncut = [f for f in report.facts if not f.cut_without_overlap]
    assert uncut and all(held_whole(report.text, f.start, f.end, 512, 0) for f in uncut)


def test_the_committed_files_are_what_the_generator_writes() -> None:
    for relative, content in bundled_files().items():
        assert (SUITES / relative).read_text(encoding="utf-8") == content, relative


def test_report_qa_loads_with_documents_and_evidence() -> None:
    suite = load_suite(SUITES / "report-qa.jsonl")
    sizes = {
        c.metadata["document_id"]: len(TOKEN.findall(c.metadata["document"])) for c in suite.cases
    }
    assert sorted(sizes.values()) == sorted(REPORT_QA_WORDS)
    assert REPORT_QA_SEED == 2026
    contains = get_metric("contains")
    for case in suite.cases:
        [span] = case.metadata["evidence"]
        assert span["document"] == case.metadata["document_id"]
        sentence = case.metadata["document"][span["start"] : span["end"]]
        # the evidence sentence answers the question
        assert contains.score([sentence], [case])[0] == 1.0, case.id
    kinds = {c.metadata["fact_kind"] for c in suite.cases}
    assert kinds == {"figure", "name", "date"}
    assert sum(1 for c in suite.cases if 2048 in c.metadata["cut_without_overlap"]) >= 4


def test_summaries_have_key_points_that_their_documents_state() -> None:
    suite = load_suite(SUITES / "report-summaries.jsonl")
    assert len(suite.cases) == len(SUMMARIES_WORDS) and SUMMARIES_SEED == 2027
    recall = get_metric("key_point_recall")
    documents = [c.metadata["document"] for c in suite.cases]
    assert recall.score(documents, suite.cases).tolist() == [1.0] * len(suite.cases)
    assert recall.score(["No figures here."] * len(suite.cases), suite.cases).max() < 0.2
    assert all(3000 <= c.metadata["tokens"] <= 12000 for c in suite.cases)


def test_the_rag_corpus_and_its_gold_evidence() -> None:
    suite = load_suite(SUITES / "rag-reports.jsonl")
    corpus = [json.loads(line) for line in (SUITES / RAG_CORPUS).read_text().splitlines()]
    texts = {d["id"]: d["text"] for d in corpus}
    assert len(corpus) >= 30
    companies = {d["title"].rsplit(" Annual Report", 1)[0] for d in corpus}
    assert len(companies) == len(corpus)  # a question naming its company has one answer
    assert len(suite.cases) >= 2 * 30
    contains = get_metric("contains")
    for case in suite.cases:
        [span] = case.metadata["evidence"]
        sentence = texts[span["document"]][span["start"] : span["end"]]
        assert contains.score([sentence], [case])[0] == 1.0, case.id
    assert any(1024 in c.metadata["cut_without_overlap"] for c in suite.cases)


def _suite(tmp_path: Path, documents: object, cases: list[dict]) -> Path:
    sidecar = {
        "name": "docs",
        "version": "1",
        "task_type": "qa",
        "default_metrics": ["contains"],
        "documents": documents,
    }
    import yaml

    (tmp_path / "docs.suite.yaml").write_text(yaml.safe_dump(sidecar))
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    return tmp_path / "docs.jsonl"


CASE = {"id": "q", "input": "?", "references": ["a"]}


@pytest.mark.parametrize(
    ("documents", "cases", "field", "fragment"),
    [
        (
            {"generator": "novels", "seed": 1, "words": [500]},
            [CASE],
            "documents.generator",
            "annual-reports",
        ),
        (
            {"generator": "annual-reports", "seed": 1, "words": [50]},
            [CASE],
            "documents.words[0]",
            "between 300",
        ),
        (
            {"generator": "annual-reports", "seed": "x", "words": [500]},
            [CASE],
            "documents.seed",
            "integer",
        ),
        (
            {"generator": "annual-reports", "seed": 1, "words": [500], "size": 2},
            [CASE],
            "documents.size",
            "unknown key",
        ),
        (
            {"generator": "annual-reports", "seed": 1, "words": [500]},
            [CASE, CASE | {"id": "r", "metadata": {"document_id": "report-09"}}],
            "metadata.document_id",
            "'report-09' is not a document",
        ),
        (
            {"generator": "annual-reports", "seed": 1, "words": [500]},
            [
                CASE
                | {"metadata": {"evidence": [{"document": "report-01", "start": 5, "end": 10**6}]}}
            ],
            "metadata.evidence[0]",
            "start < end",
        ),
    ],
)
def test_bad_documents_are_refused_with_file_line_and_field(
    tmp_path: Path, documents: object, cases: list[dict], field: str, fragment: str
) -> None:
    with pytest.raises(SuiteError) as caught:
        load_suite(_suite(tmp_path, documents, cases))
    assert caught.value.field == field and fragment in str(caught.value)
    if field.startswith("metadata"):
        assert caught.value.line == len(cases)  # the offending case's line


def test_a_corpus_file_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(SuiteError, match="duplicate document id 'a'") as caught:
        load_suite(_suite(tmp_path, "corpus.jsonl", [CASE]))
    assert caught.value.line == 2
