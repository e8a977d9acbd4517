"""Each experiment's pages read users' scorers as that experiment declared them.

`evalflow view NAME` remembers the stored declarations of users' scorers whose code does
not import here (``evaluation.metrics._stored``), NAME's own first. Its server serves
every experiment's pages, and a page of another experiment read NAME's declaration of a
same-named scorer (ranked by NAME's direction) where that experiment stored its own. A
request for an experiment's page (``/e/OTHER/...``, the monitor's ``/api/runs/OTHER``)
now reads OTHER's (``reading_experiment``, in that request's context only); the monitor's
pages over every run read each name's latest, as `show` without a name does."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from evaluation.metrics import reading_experiment

#: The paths of one experiment's pages, its name in the first group.
_EXPERIMENT_PAGE = re.compile(r"/(?:e|api/runs)/([^/]+)")


def page_experiment(path: str) -> str | None:
    """The experiment a page at ``path`` shows, or None (the monitor's home, a series)."""
    found = _EXPERIMENT_PAGE.match(path)
    return found[1] if found else None


class PageScorers:
    """ASGI middleware: a request for an experiment's page reads that experiment's own
    declarations of users' scorers (:func:`page_experiment`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = page_experiment(scope.get("path", "")) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        with reading_experiment(name):
            await self.app(scope, receive, send)
