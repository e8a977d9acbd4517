"""Long documents for the pipeline suites: a seeded generator of annual reports with
planted facts, and a suite's ``documents`` (a corpus file or a generator) joined to its
cases at load time."""

from evaluation.documents.annual_reports import Fact, Report, annual_report
from evaluation.documents.loading import attach_documents, read_documents, suite_documents

__all__ = [
    "Fact",
    "Report",
    "annual_report",
    "attach_documents",
    "read_documents",
    "suite_documents",
]
