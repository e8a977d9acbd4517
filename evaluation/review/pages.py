"""The review and history pages, rendered from Jinja2 templates (autoescaped) with
their CSS and JavaScript as static files. Model outputs never pass through a template:
the scripts fetch them and put them in the page with ``textContent`` only."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from evaluation.review.store import AFTER_REVEAL, CRITERIA

_ENV = Environment(
    loader=PackageLoader("evaluation.review", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def review_page(
    experiment: str, rater: str, *, simulated: bool, fast: bool = False, csrf: str = ""
) -> str:
    """The page; ``csrf``: the server's token its writes carry (``X-CSRF-Token``)."""
    return _ENV.get_template("review.html").render(
        experiment=experiment,
        rater=rater,
        simulated=simulated,
        fast=fast,
        csrf=csrf,
        criteria=list(CRITERIA),
        after_reveal=list(AFTER_REVEAL),
    )


def history_page(experiment: str, rater: str) -> str:
    return _ENV.get_template("history.html").render(experiment=experiment, rater=rater)
