"""Browsing every output of an experiment: paged, filtered reads of the results
database (:mod:`evaluation.view.queries`, :mod:`evaluation.view.detail`) and the local
web page over them (:mod:`evaluation.view.app`, which needs FastAPI; its templates and
static files ship as package data). This package's top level offers only where a view
lives, so the CLI and the report can name it without importing the database layer."""

from evaluation.view.links import DEFAULT_HOST, DEFAULT_PORT, view_command, view_hint, view_url

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "view_command", "view_hint", "view_url"]
