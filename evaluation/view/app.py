"""The output browser: a FastAPI app over the results database, pages rendered on the
server from Jinja2 templates (autoescaped: model outputs are untrusted text).

Every state is a URL, so any view can be linked to: ``/e/NAME`` lists an experiment's
generations (query parameters filter, sort and page), ``/e/NAME/compare?a=..&b=..``
puts two configs side by side, ``/e/NAME/cases/CASE`` shows one case under every
config, ``/e/NAME/g/ID`` one generation. Serve it on a loopback address
(``evalflow view`` does): there is no login.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from evaluation.compare import SIMULATED_BANNER
from evaluation.compare._leaderboard import is_corpus_metric
from evaluation.errors import EvalError, StorageError
from evaluation.itembank import SUBSET_INTERVAL, estimates_heading, named_estimates
from evaluation.labels import configs_fitting, configs_named
from evaluation.monitor import RunControl, add_monitor
from evaluation.run._rate import format_rate
from evaluation.statistics.precision import fixed
from evaluation.storage.db import session_scope
from evaluation.storage.models import CaseRow, Experiment
from evaluation.storage.no_results import no_results_line
from evaluation.storage.repository import case_input, get_experiment
from evaluation.storage.runs import experiment_status, with_status
from evaluation.view.compiled_templates import compiled_templates
from evaluation.view.links import experiment_path
from evaluation.view.matrix import flip_shade, flip_window, quality_grid, varied_parameters
from evaluation.view.page_scorers import PageScorers
from evaluation.view.queries import (
    PAIR_SORTS,
    SORTS,
    ExperimentFacts,
    Filters,
    Page,
    case_generations,
    experiment_facts,
    generation_page,
    pair_page,
)
from evaluation.view.session_key import add_session_key, new_key
from evaluation.view.stored import estimates_page, flips_page, pair_summary_page, summary_page
from evaluation.view.summary import REFRESH_S, effects_words
from evaluation.view.worddiff import word_diff
from evaluation.wording import cost_words, per_case_words

_ERROR_TITLES = {400: "bad request", 404: "not found", 405: "method not allowed"}
PER_PAGE = 50
PAIRS_PER_PAGE = 20
FLIP_CONFIGS = 20  # configs per window of the flip matrix (?top=)
MAX_PER_PAGE = 500
EXPORT_PER_PAGE = 200  # the list's page size in a static export


# The environment's options that shape its compiled templates (kept between starts under
# their digest: ``compiled_templates``).
_AUTOESCAPED = ("html",)
_WHITESPACE = {"trim_blocks": True, "lstrip_blocks": True}


def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                PackageLoader("evaluation.view", "templates"),
                PackageLoader("evaluation.monitor", "templates"),
            ]
        ),
        autoescape=select_autoescape(_AUTOESCAPED),
        bytecode_cache=compiled_templates("view", {"autoescape": _AUTOESCAPED, **_WHITESPACE}),
        **_WHITESPACE,
    )
    env.filters["num"] = _num
    env.filters["signed"] = _signed
    env.filters["marked"] = marked
    env.filters["p_value"] = p_value_text
    env.filters["to_second"] = to_second
    env.filters["rate"] = format_rate
    env.filters["humane"] = lambda name: str(name).replace("_", " ")
    env.filters["cost_words"] = cost_words
    env.globals["score_class"] = score_class
    env.globals["diff_class"] = diff_class
    env.globals["flip_shade"] = flip_shade
    env.globals["ahead_first"] = ahead_first
    env.globals["experiment_path"] = experiment_path
    env.globals["sorts"] = SORTS
    env.globals["quote"] = lambda value: quote(str(value), safe="")
    return env


def create_app(
    engine: Engine,
    *,
    allowed_hosts: Sequence[str] | None = None,
    control: RunControl | Callable[[], RunControl | None] | None = None,
    poll_s: float | None = None,
    key: str | None = None,
) -> FastAPI:
    """The view app over every experiment in ``engine``'s database, with the monitor's
    pages (``evaluation.monitor``: the home page, each run's live page; ``control``
    starts and cancels runs from them, or makes the one that does on first use; ``poll_s``:
    how often an open page asks for changes). ``allowed_hosts`` (e.g.
    ``evaluation.view.links.LOOPBACK_HOSTS``) rejects
    requests naming any other host, which stops other web pages reaching a loopback
    server by DNS rebinding. The pages are read by anyone; the monitor's writes need the
    server's ``key`` (made here unless given; ``app.state.key``), a cookie set by the
    link ``?key=KEY`` the command prints (``evaluation.view.session_key``)."""
    app = FastAPI(title="evalflow view", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(PageScorers)  # each experiment's page: its own scorers' declarations
    app.state.key = key or new_key()
    add_session_key(app, app.state.key, guarded=lambda path: False, command="evalflow view")
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.mount("/static", StaticFiles(packages=[("evaluation.view", "static")]), name="static")
    app.mount(
        "/monitor-static",
        StaticFiles(packages=[("evaluation.monitor", "static")]),
        name="monitor-static",
    )
    env = _environment()

    def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        page = env.get_template(name).render(banner=SIMULATED_BANNER, **context)
        return HTMLResponse(page, status_code=status_code)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        """Errors as pages a reader can follow back, not JSON; an unknown config lists
        the experiment's configs, each a link."""
        return render(
            "error.html",
            status_code=exc.status_code,
            status=exc.status_code,
            title=_ERROR_TITLES.get(exc.status_code, "error"),
            detail=exc.detail,
            experiment=None,
            unknown=exc if isinstance(exc, UnknownConfig) else None,
            last_page=exc if isinstance(exc, PastLastPage) else None,
        )

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return render(
            "error.html",
            status_code=400,
            status=400,
            title=_ERROR_TITLES[400],
            detail=problems,
            experiment=None,
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        """Where a browser looks for the icon of a page that names none (not ours)."""
        return RedirectResponse("/static/favicon.svg", status_code=301)

    add_monitor(app, engine, env, render, control=control, poll_s=poll_s, key=app.state.key)

    # Each page reads its path parameters from the request: a typed argument would be a
    # pydantic field FastAPI makes as the route is added (and imports pydantic.v1 for),
    # ~0.03 s of `evalflow view`'s first page.
    @app.get("/e/{experiment}", response_class=HTMLResponse)
    def generations(request: Request) -> HTMLResponse:
        experiment, params = request.path_params["experiment"], request.query_params
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            filters = _filters(params, facts, row.name)
            sort = _choice(params, "sort", SORTS, "id")
            direction = _choice(params, "dir", ("asc", "desc"), "asc")
            page = generation_page(
                session,
                int(row.id),
                filters,
                sort=sort,
                direction=direction,
                page=_int(params, "page", 1),
                per_page=min(_int(params, "per_page", PER_PAGE), MAX_PER_PAGE),
            )
        _check_page(page, _linker(params))
        return render(
            "generations.html",
            experiment=row.model_dump(),
            facts=facts,
            filters=filters,
            sort=sort,
            direction=direction,
            page=page,
            link=_linker(params),
        )

    @app.get("/e/{experiment}/summary", response_class=HTMLResponse)
    def summary(request: Request) -> HTMLResponse:
        experiment = request.path_params["experiment"]
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            shown = summary_page(session, row.name)
            estimates = estimates_page(session, row.name)
            # nothing scored: what `show` says, and no ranking (counted afresh, not kept)
            unscored = None
            if shown.primary is None:
                unscored = no_results_line(session, row, experiment_status(session, row))
        # named and ordered as the leaderboard above them, as `show` does
        names = {facts.full_labels[r.config]: r.label for r in shown.rows}
        return render(
            "summary.html",
            experiment=row.model_dump(),
            facts=facts,
            summary=shown,
            no_results=unscored,
            refresh_s=REFRESH_S,
            estimates=named_estimates(estimates.rows, names),
            estimate_notes=estimates.notes,
            subset_interval=SUBSET_INTERVAL,
            estimates_metric=estimates.metric,
            estimates_heading=estimates_heading(estimates.metric, estimates.rows),
            estimates_per_case=per_case_words(estimates.metric)
            if is_corpus_metric(estimates.metric)
            else "",
            effects_words=effects_words(shown),
        )

    @app.get("/e/{experiment}/matrix", response_class=HTMLResponse)
    def matrix(request: Request) -> HTMLResponse:
        experiment, params = request.path_params["experiment"], request.query_params
        start, top = _int(params, "start", 1), _int(params, "top", FLIP_CONFIGS)
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            flips = flips_page(session, row.name)
        return render(
            "matrix.html",
            experiment=row.model_dump(),
            facts=facts,
            flips=flips and flip_window(flips, start, top),
            link=_linker(params),
        )

    @app.get("/e/{experiment}/grid", response_class=HTMLResponse)
    def grid(request: Request) -> HTMLResponse:
        experiment, params = request.path_params["experiment"], request.query_params
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            varied = varied_parameters(session, int(row.id))
            x = _choice(params, "x", varied, varied[0]) if varied else ""
            y = _choice(params, "y", varied, varied[1 % len(varied)]) if varied else ""
            shown = quality_grid(session, row.name, x, y) if varied else None
        return render(
            "grid.html",
            experiment=row.model_dump(),
            facts=facts,
            grid=shown,
            varied=varied,
            x=x,
            y=y,
        )

    @app.get("/e/{experiment}/compare", response_class=HTMLResponse)
    def compare(request: Request) -> HTMLResponse:
        experiment, params = request.path_params["experiment"], request.query_params
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            filters = _filters(params, facts, row.name)
            a, b = (_config(params.get(side, ""), facts, row.name, side) for side in ("a", "b"))
            opened_on_top = not (a or b or params.get("a") or params.get("b"))
            if opened_on_top:  # opened bare: the leaderboard's #1 against its #2
                ranked = [r.config for r in summary_page(session, row.name).rows]
                a, b = (ranked[0], ranked[1]) if len(ranked) > 1 else ("", "")
                opened_on_top = bool(a)
            if a and a == b:
                raise HTTPException(
                    400,
                    f"a and b both name config {facts.labels[a]!r}: pick two different configs",
                )
            sort = _choice(params, "sort", PAIR_SORTS, "case")
            page, summary = None, None
            if a and b:
                metric = filters.metric or (facts.metrics[0] if facts.metrics else "")
                if metric:
                    summary = pair_summary_page(session, row.name, a, b, metric)
                page = pair_page(
                    session,
                    int(row.id),
                    a,
                    b,
                    filters,
                    sort=sort,
                    page=_int(params, "page", 1),
                    per_page=min(_int(params, "per_page", PAIRS_PER_PAGE), MAX_PER_PAGE),
                )
        if page is not None:
            _check_page(page, _linker(params))
            for r in page.rows:
                r["words"] = word_diff(r["a"]["output"] or "", r["b"]["output"] or "")
        return render(
            "compare.html",
            experiment=row.model_dump(),
            facts=facts,
            filters=filters,
            a=a,
            b=b,
            sort=sort,
            sort_names=pair_sort_names(filters.metric),
            page=page,
            summary=summary,
            opened_on_top=opened_on_top,
            link=_linker(params),
        )

    @app.get("/e/{experiment}/cases/{case_id:path}", response_class=HTMLResponse)
    def case(request: Request) -> HTMLResponse:
        experiment, case_id = request.path_params["experiment"], request.path_params["case_id"]
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            generations = case_generations(session, int(row.id), case_id)
            if not generations:
                raise HTTPException(404, f"experiment {row.name!r} has no case {case_id!r}")
            case_row = session.get(CaseRow, generations[0]["case_uid"])
            system, turns = case_input(session, case_row)
            case_facts = case_row.model_dump()
        return render(
            "case.html",
            experiment=row.model_dump(),
            facts=facts,
            case=case_facts,
            system=system,
            turns=turns,
            generations=generations,
        )

    @app.get("/e/{experiment}/g/{generation_id}", response_class=HTMLResponse)
    def generation(request: Request) -> HTMLResponse:
        # its prompts module loads the backends' and the spec's models: not for other pages
        from evaluation.view.detail import generation_detail, neighbours

        experiment = request.path_params["experiment"]
        generation_id = _path_int(request, "generation_id")
        with session_scope(engine) as session:
            row, facts = _experiment(session, experiment)
            detail = generation_detail(session, int(row.id), generation_id)
            if detail is None:
                raise HTTPException(
                    404, f"experiment {row.name!r} has no generation {generation_id}"
                )
            previous, following = neighbours(session, int(row.id), generation_id)
        return render(
            "generation.html",
            experiment=row.model_dump(),
            facts=facts,
            g=detail,
            previous=previous,
            following=following,
        )

    return app


def _path_int(request: Request, name: str) -> int:
    """Path parameter ``name`` read as FastAPI reads one typed ``int`` (pydantic's lax
    integer): one that is no integer is the same 400 page its validation error made."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(int).validate_python(request.path_params[name])
    except ValidationError as exc:
        errors = [{**error, "loc": ("path", name)} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _experiment(session, name: str) -> tuple[Experiment, ExperimentFacts]:
    try:
        row = with_status(session, get_experiment(session, name))  # crashed, as status says
    except StorageError as exc:
        raise HTTPException(404, str(exc)) from exc
    return row, experiment_facts(session, int(row.id), row.suite, list(row.metrics or []))


class UnknownConfig(HTTPException):
    """A config named in the URL's ``field`` that the experiment does not have (or names
    several): its error page lists the configs it fits, or all the experiment's
    (``choices``: label, link)."""

    def __init__(
        self, value: str, experiment: str, facts: ExperimentFacts, fits: list[str], field: str
    ) -> None:
        self.several = len(fits) > 1
        if self.several:
            detail = f"{field}: {value!r} fits {len(fits)} configs of experiment {experiment!r}"
        else:
            detail = f"{field}: experiment {experiment!r} has no config {value!r}"
        super().__init__(404, detail)
        base = experiment_path(experiment)
        self.experiment = experiment
        self.choices = [
            (facts.labels[c["hash"]], f"{base}?config={quote(c['hash'], safe='')}")
            for c in facts.configs
            if not self.several or c["hash"] in fits
        ]


class PastLastPage(HTTPException):
    """A ``page`` beyond the last one of what matched: a 404 whose page links to the
    last page (``href``, page number ``last``)."""

    def __init__(self, page: Page, link: Callable[..., str]) -> None:
        self.last = page.pages
        super().__init__(
            404, f"page {page.page} is past the last page ({self.last}) of what matched"
        )
        self.href = link(page=self.last)


def _check_page(page: Page, link: Callable[..., str]) -> None:
    """``PastLastPage`` when ``page`` asked for a page after the last (an empty page 1
    is a filter matching nothing, which the page says itself)."""
    if page.page > 1 and not page.rows:
        raise PastLastPage(page, link)


def _config(value: str, facts: ExperimentFacts, experiment: str, field: str = "config") -> str:
    """A config hash from any name the other outputs give a config (a hash, its label,
    the shown label, a unique hash prefix: ``evaluation.labels.configs_named``; "" when
    none); ``UnknownConfig`` when it names none of the experiment's configs, or several,
    saying which of the URL's parameters (``field``) did."""
    value = value.strip()
    if not value:
        return ""
    hashes = list(facts.labels)
    labels = [facts.full_labels.get(h, h) for h in hashes]
    found = configs_named(value, hashes, labels)
    if len(found) != 1:  # as the CLI refuses
        raise UnknownConfig(
            value, experiment, facts, configs_fitting(value, hashes, labels, found), field
        )
    return found[0]


def _filters(params: Mapping[str, str], facts: ExperimentFacts, experiment: str) -> Filters:
    configs = tuple(_config(v, facts, experiment) for v in params.getlist("config") if v.strip())
    metric = params.get("metric", "").strip()
    if metric and metric not in facts.metrics:
        raise HTTPException(
            400,
            f"metric: experiment {experiment!r} has no metric {metric!r}; "
            f"expected one of {', '.join(facts.metrics) or 'none (nothing is scored)'}",
        )
    return Filters(
        configs=configs,
        case=params.get("case", "").strip(),
        text=params.get("q", "").strip(),
        group=params.get("group", "").strip(),
        metric=metric,
        min_value=_float(params, "min"),
        max_value=_float(params, "max"),
        failed=_flag(params, "failed"),
        truncated=_flag(params, "truncated"),
    )


def _float(params: Mapping[str, str], name: str) -> float | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: expected a number, got {raw!r}") from exc
    if not math.isfinite(value):
        raise HTTPException(400, f"{name}: expected a finite number, got {raw!r}")
    return value


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: expected a whole number, got {raw!r}") from exc
    if value < 1:
        raise HTTPException(400, f"{name}: expected 1 or more, got {value}")
    return value


def _flag(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name, "").strip()
    if raw in ("", "any"):
        return None
    if raw in ("yes", "no"):
        return raw == "yes"
    raise HTTPException(400, f"{name}: expected yes, no or any, got {raw!r}")


def _choice(params: Mapping[str, str], name: str, allowed: Sequence[str], default: str) -> str:
    raw = params.get(name, "").strip() or default
    if raw not in allowed:
        raise HTTPException(400, f"{name}: expected one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _linker(params) -> Callable[..., str]:
    """``link(page=2)``: this page's query with some parameters replaced (None drops
    one), for paging and sorting links that keep the filters."""
    current = list(params.multi_items())

    def link(**changes: Any) -> str:
        kept = [(k, v) for k, v in current if k not in changes]
        for key, value in changes.items():
            if value is None:
                continue
            values = value if isinstance(value, list | tuple) else [value]
            kept += [(key, str(v)) for v in values]
        return "?" + urlencode(kept) if kept else "?"

    return link


def score_class(metric: str, value: object) -> str:
    """The colour class of a score: "pass" at the best end of a 0–1 score, "fail" at the
    worst, "partial" between; "" for a missing score, a descriptive metric (no better
    direction) or a value off the 0–1 scale (lengths, seconds)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if math.isnan(value) or not 0 <= value <= 1:
        return ""
    higher = _better_direction(metric)
    if higher is None:
        return ""
    good = value if higher else 1 - value
    return "pass" if good >= 1 else "fail" if good <= 0 else "partial"


def _better_direction(metric: str) -> bool | None:
    """True where higher is better on ``metric`` (and for an unknown one), False where
    lower is, None for a descriptive metric (neither). A built-in metric's is read from
    its table: the registry imports every scorer and numpy (~0.1 s of the monitor's
    first page, which colours its scores)."""
    from evaluation.metrics._directions import DESCRIPTIVE, HIGHER_IS_BETTER

    if metric in HIGHER_IS_BETTER:
        return None if metric in DESCRIPTIVE else HIGHER_IS_BETTER[metric]
    from evaluation.metrics import get_metric

    try:
        definition = get_metric(metric)
    except EvalError:
        return True
    return None if definition.descriptive else definition.higher_is_better is not False


def diff_class(metric: str, diff: float) -> str:
    """The colour class of a difference A − B on ``metric``: "pos" where A is the better
    side, "neg" where B is, "zero" when equal; "" for a descriptive metric (neither
    higher nor lower is better, so neither side is coloured as ahead)."""
    higher = _better_direction(metric)
    if higher is None:
        return ""
    ahead = diff if higher else -diff
    return "pos" if ahead > 0 else "neg" if ahead < 0 else "zero"


def ahead_first(metric: str) -> str:
    """The side-by-side sort that puts the cases where A is ahead on ``metric`` first."""
    return "-diff" if _better_direction(metric) is False else "diff"


def pair_sort_names(metric: str) -> list[tuple[str, str]]:
    """The side-by-side page's sort choices, named for ``metric``: "diff" puts the largest
    A − B first, which is A ahead when higher is better and B ahead when lower is (a
    descriptive metric has no ahead: A or B higher)."""
    higher = _better_direction(metric) if metric else None
    if higher is None:
        first, last = "A higher first", "B higher first"
    else:
        first, last = ("A ahead first", "B ahead first")[:: 1 if higher else -1]
    return [
        ("case", "by case"),
        ("diff", first),
        ("-diff", last),
        ("|diff|", "largest difference first"),
    ]


def marked(text: object, needle: str) -> Markup:
    """``text`` escaped, each match of the search ``needle`` (ASCII letters in either
    case, as the search matches) in ``<mark>``."""
    text = "" if text is None else str(text)
    if not needle:
        return escape(text)
    parts = re.split(f"({re.escape(needle)})", text, flags=re.IGNORECASE | re.ASCII)
    return Markup("").join(
        Markup("<mark>{}</mark>").format(part) if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )


def p_value_text(value: float | None) -> str:
    """A p-value as read: ``p < 0.001`` rather than a rounded ``p = 0.000``."""
    if value is None or math.isnan(value):
        return "p –"
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def to_second(value: object) -> str:
    """A stored time (a datetime, or its ISO text where the database keeps text) to the
    second, without the microseconds a reader does not need."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value  # stored naive in UTC
        return utc.strftime("%Y-%m-%d %H:%M:%S")
    return _num(value)


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fixed(value, digits)
    return str(value)


def _signed(value: object, digits: int = 3) -> str:
    """A difference: with its sign, zero as 0.000."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fixed(float(value), digits, signed=True)  # type: ignore[arg-type]
