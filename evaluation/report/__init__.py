"""The experiment report: one self-contained HTML file with the leaderboard, pairwise
significance, parameter effects, quality against latency, latency distributions,
ratings and trends across runs (plots by matplotlib, embedded as PNG)."""

from evaluation.report.data import ReportData, gather
from evaluation.report.html import build_report, render_report, write_report

__all__ = ["ReportData", "build_report", "gather", "render_report", "write_report"]
