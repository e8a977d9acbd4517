"""The bundled pipeline suites, made from the annual-report generator, and the command
that writes them: ``python -m evaluation.documents.bundled [--out benchmarks/suites]``.

- ``report-qa`` (qa): a question per planted fact of five reports of 3,000 to 20,000
  tokens; the reports are generated when the suite loads (its sidecar names the
  generator, seed and lengths), only the questions are committed.
- ``report-summaries`` (summarization): twelve reports of 3,000 to 12,000 tokens, each
  to be summarised; the planted facts are the reference key points.
- ``rag-reports`` (qa): a corpus of 32 short reports (committed, the ``corpus`` of a
  ``rag`` pipeline) and two or three questions per report with the evidence span of each answer.

Rewriting the files from the same constants gives the same bytes (a test checks the
committed files against this module).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.documents.annual_reports import Fact, Report, annual_report
from evaluation.documents.loading import report_id

REPORT_QA_SEED = 2026
REPORT_QA_WORDS = (3000, 5000, 8000, 12000, 20000)
SUMMARIES_SEED = 2027
SUMMARIES_WORDS = (3000, 3500, 4000, 4500, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000)
RAG_SEED = 2028
RAG_DOCUMENTS = 32
RAG_LONG_EVERY = 6  # every 6th corpus report is long enough to cut facts at 512 / 1,024
RAG_WORDS, RAG_LONG_WORDS = 400, 1300
RAG_CORPUS = "corpora/rag-reports.jsonl"
SUMMARY_TASK = (
    "Summarise this annual report for an investor: the results, the people appointed, "
    "the deals and the dates that matter."
)


def reports(seed: int, words: Sequence[int]) -> list[Report]:
    return [annual_report(seed, report_id(i), n) for i, n in enumerate(words, 1)]


def _evidence(report: Report, fact: Fact) -> list[dict[str, Any]]:
    return [{"document": report.id, "start": fact.start, "end": fact.end}]


def report_qa_cases() -> list[dict[str, Any]]:
    return [
        {
            "id": f"{report.id}-{fact.key}",
            "input": fact.question,
            "references": list(fact.references),
            "group": report.id,
            "metadata": {
                "document_id": report.id,
                "evidence": _evidence(report, fact),
                "fact_kind": fact.kind,
                "fact_token": fact.token,
                "cut_without_overlap": list(fact.cut_without_overlap),
            },
        }
        for report in reports(REPORT_QA_SEED, REPORT_QA_WORDS)
        for fact in report.facts
    ]


def summary_cases() -> list[dict[str, Any]]:
    return [
        {
            "id": report.id,
            "input": SUMMARY_TASK,
            "references": [" ".join(fact.statement for fact in report.facts)],
            "metadata": {
                "document_id": report.id,
                "key_points": [fact.statement for fact in report.facts],
                "tokens": report.tokens,
            },
        }
        for report in reports(SUMMARIES_SEED, SUMMARIES_WORDS)
    ]


def rag_corpus() -> list[Report]:
    """32 reports of distinct companies (a repeated company is skipped, so a question
    naming its company has one answer in the corpus)."""
    corpus: list[Report] = []
    companies: set[str] = set()
    number = 0
    while len(corpus) < RAG_DOCUMENTS:
        number += 1
        long = len(corpus) % RAG_LONG_EVERY == 0
        report = annual_report(RAG_SEED, f"rag-{number:02d}", RAG_LONG_WORDS if long else RAG_WORDS)
        if report.company not in companies:
            companies.add(report.company)
            corpus.append(report)
    return corpus


def rag_cases(corpus: Sequence[Report]) -> list[dict[str, Any]]:
    """Questions on a report's facts cut by a chunk boundary (the long reports have
    them) or else its first fact, and on its last fact."""
    cases = []
    for report in corpus:
        cut = [f for f in report.facts if f.cut_without_overlap]
        chosen = dict.fromkeys([*(cut or report.facts[:1]), report.facts[-1]])
        for fact in chosen:
            cases.append(
                {
                    "id": f"{report.id}-{fact.key}",
                    "input": fact.question,
                    "references": list(fact.references),
                    "group": report.id,
                    "metadata": {
                        "evidence": _evidence(report, fact),
                        "gold_document": report.id,
                        "fact_kind": fact.kind,
                        "cut_without_overlap": list(fact.cut_without_overlap),
                    },
                }
            )
    return cases


def _jsonl(rows: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def bundled_files() -> dict[str, str]:
    """Relative path -> content of every generated file."""
    corpus = rag_corpus()
    return {
        "report-qa.jsonl": _jsonl(report_qa_cases()),
        "report-summaries.jsonl": _jsonl(summary_cases()),
        "rag-reports.jsonl": _jsonl(rag_cases(corpus)),
        RAG_CORPUS: _jsonl([{"id": r.id, "title": r.title, "text": r.text} for r in corpus]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the bundled pipeline suites.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/suites"))
    args = parser.parse_args(argv)
    for relative, content in bundled_files().items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path} ({len(content.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
