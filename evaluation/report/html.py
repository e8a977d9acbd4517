"""The experiment report as one self-contained HTML file: inline CSS, plots as embedded
PNGs, no scripts and nothing fetched. The page is a Jinja2 template (autoescaped: every
text from the database is escaped); this module turns the facts into its blocks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session

from evaluation.adaptive import RaceStanding
from evaluation.calibration._combined import CalibratedMetric
from evaluation.calibration._shown import DIFFERENCE, UNIT, shown_interval
from evaluation.compare._inputs import LATENCY
from evaluation.compare._leaderboard import (
    SIMULATED_BANNER,
    is_corpus_metric,
    label_names,
    ranked_table,
    ranking_words,
)
from evaluation.compare._stage_table import SUMMED, report_cell, stage_pivot
from evaluation.itembank import SUBSET_INTERVAL, estimates_heading, named_estimates
from evaluation.report.data import ReportData, gather
from evaluation.report.ratings import RatingsSummary
from evaluation.statistics._adjust import ADJUSTMENT_NAMES
from evaluation.statistics.precision import fixed
from evaluation.view import view_command, view_url
from evaluation.wording import (
    EFFECTS_FIGURES,
    IN_FULL,
    MEASURED_IN_FULL,
    NOT_MEASURED,
    corpus_figure,
    cost_words,
    per_case_words,
    verdict_words,
)

_ENV = Environment(
    loader=PackageLoader("evaluation.report", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def build_report(session: Session, experiment: str, *, seed: int = 0) -> str:
    """The report of ``experiment`` as an HTML string."""
    return render_report(gather(session, experiment, seed=seed))


def write_report(session: Session, experiment: str, path: Path, *, seed: int = 0) -> Path:
    """Write the report to ``path`` (folders created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(session, experiment, seed=seed), encoding="utf-8")
    return path


def render_report(data: ReportData, *, generated_at: datetime | None = None) -> str:
    e = data.experiment
    sections = [
        _leaderboard(data),
        _significance(data),
        *([_race(data.race)] if data.race else []),
        *([_estimated(data)] if data.estimates[1] else []),
        _parameters(data),
        _pareto(data),
        _latency(data),
        _ratings(data),
        _trends(data),
    ]
    notes = [*data.notes, *data.board.notes]
    if notes:
        sections.append(_Section("notes", "Notes", [_List(notes)]))
    return _ENV.get_template("report.html").render(
        title=f"evalflow report: {e.name}",
        style=files("evaluation.report").joinpath("static/report.css").read_text("utf-8"),
        e=e,
        n_configs=len(data.order),
        generated=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        view_command=view_command(e.name),
        view_url=view_url(e.name),
        nav=[(s.key, s.title) for s in sections if s.key != "notes"],
        banner=SIMULATED_BANNER,
        sections=sections,
    )


# -- the page's blocks, each drawn by the template's macro of its kind ---------------------


@dataclass(frozen=True)
class _P:
    text: str
    muted: bool = False
    kind: ClassVar[str] = "p"


@dataclass(frozen=True)
class _H3:
    text: str
    kind: ClassVar[str] = "h3"


@dataclass(frozen=True)
class _Table:
    """Cells from ``numeric_from`` up to the last (a note) are right-aligned numbers."""

    head: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric_from: int = 99
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class _Img:
    src: str
    alt: str
    kind: ClassVar[str] = "img"


@dataclass(frozen=True)
class _Grid:
    images: Sequence[_Img]
    kind: ClassVar[str] = "grid"


@dataclass(frozen=True)
class _List:
    items: Sequence[str]
    kind: ClassVar[str] = "list"


@dataclass(frozen=True)
class _ReviewHint:
    experiment: str
    kind: ClassVar[str] = "review_hint"


_Block = _P | _H3 | _Table | _Img | _Grid | _List | _ReviewHint


@dataclass(frozen=True)
class _Section:
    key: str
    title: str
    blocks: Sequence[_Block]


def _leaderboard(data: ReportData) -> _Section:
    board = data.board
    table = board.table.set_index("config").loc[list(data.order)].reset_index()
    fronts = [f for f in data.fronts if f.cost == "latency_p95_s"]
    head = ["#", "config", "model", *[f"{m} [95% CI]" for m in board.metrics]]
    head += ["latency p50 s", "p95 s", "TTFT p50 s", "tok/s", "ok", "failed", "Pareto"]
    rows = []
    labels = board.labels
    for r in table.to_dict("records"):
        cells = [data.names[r["config"]], f"{labels[r['config']]} ({r['config']})", r["model"]]
        cells += [_interval(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in board.metrics]
        cells += [_latency_cell(r[f]) for f in ("latency_p50_s", "latency_p95_s")]
        cells.append(_num(r["ttft_p50_s"]))
        cells += [_num(r["tokens_per_s"], 1), _num(r["generations_ok"], 0)]
        on = [f.quality for f in fronts if r["config"] in f.configs]
        cells += [_num(r["generations_failed"], 0), f"on front: {', '.join(on)}" if on else ""]
        rows.append(cells)
    parts: list[_Block] = [_Table(head, rows, numeric_from=3)]
    if data.stopped:  # configs the race stopped lead the board: said under it, as show
        parts.append(_P(data.stopped))
    if board.shows_pipelines:
        parts += _stages(data)
    if data.primary is not None:
        fig = _plots().interval_plot(
            table, data.primary, _label_names(data), title=f"{data.primary} by config"
        )
        parts.append(_img(fig, f"{data.primary} with 95% intervals", data))
    parts.append(
        _P(
            f"{ranking_words(board) or 'Sorted by the first metric.'} Intervals: 95%, "
            "clustered by case group where the "
            "suite has groups; corpus metrics by a seeded case bootstrap."
            + (f" {board.groups_note}" if board.groups_note else "")
            + (f" {board.settings_line}." if board.settings_line else ""),
            muted=True,
        )
    )
    if board.dropped:  # configs of an earlier spec of this name: not in any of it
        parts.append(_P(board.dropped_note))
    words = board.coverage.words() if board.coverage else ""
    return _Section("leaderboard", f"Leaderboard ({words})" if words else "Leaderboard", parts)


def _stages(data: ReportData) -> list[_Block]:
    """Per config: calls and cut prompts per case, then the time and tokens per stage."""
    board = data.board
    assert board.pipelines is not None
    facts = board.table.set_index("config")
    # one row per config in the leaderboard's order, one column per stage
    order = list(ranked_table(board)["config"])
    table = stage_pivot(board.pipelines.rows, order, data.names, report_cell)
    head = list(table.columns)
    rows = [list(row) for row in table.itertuples(index=False)]
    cut = {
        data.names.get(c, c): int(facts.at[c, "context_truncated"])
        for c in facts.index
        if facts.at[c, "context_truncated"] > 0
    }
    note = (
        "Generations cut by the context window (a prompt cut to it, or an output the "
        "server stopped for want of room), which servers do silently: "
        + ", ".join(f"{name}: {n} generation(s)" for name, n in cut.items())
        if cut
        else "No generation was cut by its context window (from the servers' counts)."
    )
    return [
        _H3("Pipeline stages"),
        _Table(head, rows, numeric_from=1),
        _P(
            f"Per case, mean over cases: seconds in service, {SUMMED}; +seconds waiting "
            f"for a host slot; model calls; prompt/output tokens. {note}",
            muted=True,
        ),
    ]


def _significance(data: ReportData) -> _Section:
    comparisons = data.comparisons or ((data.comparison,) if data.comparison else ())
    if not comparisons:
        return _Section("significance", "Pairwise significance", [_P("No comparisons.")])
    parts: list[_Block] = []
    for multi in comparisons:  # every metric with a direction, the primary first
        if len(comparisons) > 1:
            parts.append(_H3(multi.metric))
        fig = _plots().significance_matrix(multi, data.order, data.names)
        parts += [
            _P(verdict_words(multi.verdict, on_latency=multi.metric == LATENCY)),
            _img(fig, f"pairwise significance matrix, {multi.metric}", data),
            _P(
                f"Every pair of configs on {multi.metric}, paired on cases; p-values "
                f"{multi.adjustment}-adjusted over {len(multi.comparisons)} comparisons. "
                "Green: the row config is significantly better than the column config.",
                muted=True,
            ),
        ]
        if multi.notes:
            parts.append(_List(multi.notes))
    return _Section("significance", "Pairwise significance", parts)


def _race(race: RaceStanding) -> _Section:
    blocks: list[_Block] = [
        _P(f"{race.head} {race.spent}"),
        _Table(("config", "cases run", "status"), [(c, str(n), why) for c, n, why in race.configs]),
    ]
    if race.bound:
        blocks.append(_P(f"Error control: {race.bound}.", muted=True))
    return _Section("race", "Race", blocks)


def _estimated(data: ReportData) -> _Section:
    """Full-suite estimates of configs that ran part of the suite (evaluation/itembank)."""
    metric, found = data.estimates
    shown = [(e.label, e.estimate.text(), e.placed) for e in found]
    rows = named_estimates(shown, label_names(data.board, data.order))  # as the table above
    placing = any(placed for _, _, placed in rows)  # none: no estimate is the bank's
    head = ("config", metric, "among the bank's configs")[: 3 if placing else 2]
    notes = sorted({e.estimate.note for e in found if e.estimate.note})
    blocks: list[_Block] = [
        _P(
            f"The configs ran part of the suite: their full-suite {metric} with a 95% "
            "interval, estimated from the suite's item bank where it serves, else the plain "
            "mean of the cases run; each line says which (docs/calibrated-subsets.md)."
        ),
        _Table(head, [row[: len(head)] for row in rows]),
    ]
    if notes:
        blocks.append(
            _List([f"not calibrated: {n}; the subset's plain mean instead" for n in notes])
        )
        blocks.append(_P(f"{SUBSET_INTERVAL[0].upper()}{SUBSET_INTERVAL[1:]}.", muted=True))
    if is_corpus_metric(metric):  # as `show` says it under the same block
        blocks.append(_P(f"{per_case_words(metric)}.", muted=True))
    if any(shown.endswith(MEASURED_IN_FULL) for _, shown, _ in rows):
        blocks.append(_P(f"{IN_FULL[0].upper()}{IN_FULL[1:]}.", muted=True))
    return _Section("estimates", estimates_heading(metric, rows), blocks)


def _parameters(data: ReportData) -> _Section:
    if data.primary is None or not data.varied:
        return _Section("parameters", "Parameter effects", [_P("No parameter was varied.")])
    images = [
        _img(
            _plots().parameter_plot(data.facts, p, data.primary),
            f"{p} against {data.primary}",
            data,
        )
        for p in data.varied
    ]
    rows = [
        [
            e.parameter,
            str(e.n_configs),
            _interval(e.rho, *(e.rho_ci or (None, None))),
            _num(e.p_value, 3),
            _num(e.best_value, 3),
            "–" if e.recommended_range is None else "{:g} – {:g}".format(*e.recommended_range),
            e.note,
        ]
        for e in data.effects
    ]
    head = [
        "parameter",
        "configs",
        "Spearman rho [95% CI]",
        "p",
        "best value",
        "recommended",
        "note",
    ]
    body: list[_Block] = [_Grid(images)]
    if rows:
        body.append(_Table(head, rows, numeric_from=1))
        if is_corpus_metric(data.primary):
            body.append(_P(f"{per_case_words(data.primary, EFFECTS_FIGURES)}.", muted=True))
    return _Section("parameters", "Parameter effects", body)


def _pareto(data: ReportData) -> _Section:
    if not data.fronts:
        return _Section("pareto", "Quality vs latency", [_P("No quality and latency facts.")])
    parts: list[_Block] = []
    for front in data.fronts:
        fig = _plots().quality_latency(data.facts, front.quality, front.cost, front, data.names)
        against = f"{front.quality} against {cost_words(front.cost)}"
        parts.append(_H3(against))
        parts.append(_img(fig, against, data))
        listing = ", ".join(f"{data.names.get(c, c)}" for c in front.configs)
        parts.append(_P(f"Pareto front (no config is both better and cheaper): {listing}."))
        if front.note:
            parts.append(_P(front.note, muted=True))
    return _Section("pareto", "Quality vs latency", parts)


def _latency(data: ReportData) -> _Section:
    fig = _plots().latency_distributions(data.latencies, data.order, data.names)
    return _Section("latency", "Latency distributions", [_img(fig, "latency per config", data)])


def _ratings(data: ReportData) -> _Section:
    summary = data.ratings
    if summary.n_ratings == 0 and not summary.judges:
        return _Section("ratings", "Ratings", [_ReviewHint(data.experiment.name)])
    return _Section("ratings", "Ratings", _ratings_body(summary, data.names, data))


def _ratings_body(summary: RatingsSummary, names: dict[str, str], data: ReportData) -> list[_Block]:
    parts: list[_Block] = [
        _P(
            f"{summary.n_ratings} current ratings by {len(summary.raters)} rater(s) "
            f"({', '.join(summary.raters) or 'none'}); {summary.n_superseded} earlier "
            "ratings were replaced by their raters and are kept in the history."
        )
    ]
    if not summary.stars.empty:
        rank = {c: i for i, c in enumerate(names)}
        ranked = summary.stars.assign(rank=summary.stars["config"].map(rank))
        ranked = ranked.sort_values("rank", kind="stable").drop(columns="rank")
        parts.append(_img(_plots().star_plot(ranked, names), "mean stars", data))
        rows = [
            [
                names.get(r["config"], r["config"]),
                r["criterion"],
                str(r["n"]),
                _interval(r["mean"], r["ci_low"], r["ci_high"], 2),
                r["note"],
            ]
            for r in ranked.to_dict("records")
        ]
        parts.append(_Table(["config", "criterion", "cases", "stars [95% CI]", "note"], rows, 2))
    if summary.preferences:
        parts.append(_H3("Preferences (exact binomial test, ties left out)"))
        parts.append(
            _P(
                "Counted per config, whichever side it was shown on: on the review page A is "
                "the left output and B the right, drawn at random for every pair.",
                muted=True,
            )
        )
        rows = [
            [
                f"{names.get(t.a, t.a)} vs {names.get(t.b, t.b)}",
                f"{names.get(t.a, t.a)}: {t.wins_a}",
                f"{names.get(t.b, t.b)}: {t.wins_b}",
                str(t.ties),
                _interval(t.share_a, *(t.ci or (None, None)), 2),
                _num(t.p_value, 3),
                t.note,
            ]
            for t in summary.preferences
        ]
        head = ["pair", "first wins", "second wins", "ties", "first's share [95% CI]", "p", "note"]
        parts.append(_Table(head, rows, 1))
    if summary.star_tests:
        parts.append(_H3("Stars, paired on cases (sign test and Wilcoxon signed-rank)"))
        rows = [
            [
                f"{names.get(t.a, t.a)} vs {names.get(t.b, t.b)}",
                t.criterion,
                f"{t.a_better} / {t.b_better} / {t.equal}",
                _num(t.sign_p, 3),
                _num(t.wilcoxon.diff, 2),
                _num(t.wilcoxon.p_value, 3),
                "; ".join(x for x in (t.note, t.wilcoxon.note) if x),
            ]
            for t in summary.star_tests
        ]
        head = [
            "pair",
            "criterion",
            "first better / second better / equal",
            "sign p",
            "mean diff",
            "Wilcoxon p",
            "note",
        ]
        parts.append(_Table(head, rows, 2))
    if summary.kappas:
        parts.append(_H3("Inter-rater agreement (weighted Cohen's kappa)"))
        rows = [
            [
                f"{k.rater_a} · {k.rater_b}",
                k.criterion,
                str(k.n),
                _interval(k.kappa, *(k.ci or (None, None))),
                k.weights,
                k.note,
            ]
            for k in summary.kappas
        ]
        parts.append(
            _Table(["raters", "criterion", "items", "kappa [95% CI]", "weights", "note"], rows, 2)
        )
    for judge in summary.judges:
        parts.append(_H3(f"Judge {judge.judge}"))
        rate = "–" if judge.contradiction_rate is None else f"{judge.contradiction_rate:.0%}"
        parts.append(
            _P(
                f"{judge.judgements} verdicts, {judge.unscored} unscored. Pairwise, judged in "
                f"both orders: {judge.pairs_judged} pairs, the judge contradicted itself in "
                f"{judge.contradictions} ({rate})."
            )
        )
        rows = [
            [
                a.criterion,
                str(a.n),
                _interval(a.rho, *(a.ci or (None, None))),
                _num(a.p_value, 3),
                a.note,
            ]
            for a in judge.agreement
        ]
        if rows:
            parts.append(
                _Table(
                    ["criterion", "generations", "Spearman rho vs humans [95% CI]", "p", "note"],
                    rows,
                    1,
                )
            )
    for metric in summary.calibrated:
        parts += _calibrated(metric, names)
    return parts


def _calibrated(metric: CalibratedMetric, names: dict[str, str]) -> list[_Block]:
    """A judge's criterion three ways: judge only, people only, combined (PPI++)."""

    def cell(est, bounds=UNIT, unit="rated case", note: bool = False) -> str:
        """The figure with its interval cut to ``bounds``; without one, why (``note``:
        the estimate's own, where it has no interval: over one case)."""
        shown, why = shown_interval(est.ci, est.n_rated, bounds, unit=unit)
        why = why or (est.note if note and est.estimate is not None else "")
        text = _interval(est.estimate, *(shown or (None, None)))
        return f"{text} ({why})" if why else text

    rows = [
        [
            names.get(e.config, e.config),
            cell(e.judge, unit="case", note=True),
            f"{cell(e.people, note=True)} ({e.people.n_rated})",
            cell(e.combined),
            _num(e.combined.lam, 2),
            e.combined.note,
        ]
        for e in metric.configs
    ]
    diffs = [
        [
            f"{names.get(d.a, d.a)} − {names.get(d.b, d.b)}",
            cell(d.judge, DIFFERENCE, "case", note=True),
            f"{cell(d.people, DIFFERENCE, note=True)} ({d.people.n_rated})",
            cell(d.combined, DIFFERENCE),
            _num(d.p_adjusted, 3),
            "yes" if d.significant else "no",
        ]
        for d in metric.diffs
    ]
    method = ADJUSTMENT_NAMES.get(metric.adjustment, metric.adjustment)
    adjusted = f"{method} over {len(metric.diffs)} pairs at α {metric.alpha:g}"
    blocks: list[_Block] = [
        _H3(f"{metric.metric} calibrated to people"),
        _P(f"{metric.source()[0].upper()}{metric.source()[1:]}; unit scale (stars − 1)/4."),
        _Table(
            ["config", "judge only", "people only (n)", "combined [95% CI]", "λ", "note"], rows, 1
        ),
    ]
    if diffs:  # none where people rated the outputs of one config only
        headers = ["difference", "judge only", "people only (n)", "combined"]
        blocks.append(_Table([*headers, f"p ({adjusted})", "differ"], diffs, 1))
    return blocks


def _trends(data: ReportData) -> _Section:
    histories = data.histories or (
        ((data.primary, data.history),) if data.primary and not data.history.empty else ()
    )
    if not histories:
        return _Section("trends", "Trends across runs", [_P("No stored runs to compare.")])
    parts: list[_Block] = []
    for metric, history in histories:
        runs = history["experiment"].nunique()
        if len(histories) > 1:
            parts.append(_H3(metric))
        parts.append(
            _img(_plots().trends(history, metric, data.order, data.names), f"{metric} trends", data)
        )
        figure = corpus_figure(metric) if is_corpus_metric(metric) else f"mean {metric}"
        parts.append(
            _P(
                f"Each config's {figure} in the {runs} run(s) of suite "
                f"{data.experiment.suite} that included it, by run start time.",
                muted=True,
            )
        )
    return _Section("trends", "Trends across runs", parts)


# -- small helpers ------------------------------------------------------------------


def _label_names(data: ReportData) -> dict[str, str]:
    labels = data.board.labels
    return {c: f"{data.names[c]} {labels.get(c, c)}" for c in data.order}


def _plots():
    """The figures' module: matplotlib (~27 MiB) is loaded when a report is drawn, not
    while a run's hosts generate (``flows/preload.py``), so it is not held through the
    comparison stage of a run, the highest point of the run's memory."""
    from evaluation.report import plots

    return plots


def _img(fig, alt: str, data: ReportData) -> _Img:
    """A figure as an embedded PNG; a simulated experiment's carries the SIMULATED mark
    in the picture and its alt text, so no plot copied out of the report passes as real."""
    if data.experiment.simulated:
        _plots().mark_simulated(fig)
        alt = f"SIMULATED: {alt}"
    return _Img(_plots().png_data_uri(fig), alt)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _latency_cell(value: object) -> str:
    return NOT_MEASURED if _missing(value) else _num(value)


def _num(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    return fixed(float(value), digits)


def _interval(mean: object, low: object, high: object, digits: int = 3) -> str:
    if _missing(mean):
        return "–"
    if _missing(low) or _missing(high):
        return fixed(float(mean), digits)
    # a no-break space inside the brackets: a narrow column wraps before "[", nowhere else
    return (
        f"{fixed(float(mean), digits)} "
        f"[{fixed(float(low), digits)},\u00a0{fixed(float(high), digits)}]"
    )
