"""The experiment report as one self-contained HTML file: inline CSS, plots as embedded
PNGs, no scripts and nothing fetched. Every text from the database is escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from evaluation.compare._leaderboard import SIMULATED_BANNER
from evaluation.report import plots
from evaluation.report.data import ReportData, gather
from evaluation.report.ratings import RatingsSummary
from evaluation.view import view_command, view_url

_STYLE = """
body { font-family: system-ui, sans-serif; color: #1d2330; margin: 0; background: #f6f7f9; }
header { background: #24324a; color: #fff; padding: 1rem 1.5rem; }
header h1 { margin: 0 0 .3rem; font-size: 1.4rem; }
nav a, .view a { color: #cfe0ff; margin-right: 1rem; font-size: .9rem; }
.view { font-size: .85rem; margin: .2rem 0; }
main { max-width: 1150px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
section { background: #fff; border: 1px solid #d9dde5; border-radius: 6px; padding: .8rem 1.2rem;
  margin: 1rem 0; }
h2 { font-size: 1.1rem; margin: .2rem 0 .6rem; }
h3 { font-size: .95rem; margin: 1rem 0 .4rem; color: #46506a; }
table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { border-bottom: 1px solid #eceef2; padding: .3rem .55rem; text-align: left;
  vertical-align: top; }
th { background: #f0f2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: .6rem .9rem; margin: 1rem 0;
  font-weight: 600; }
.muted { color: #6b7385; font-size: .85rem; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; }
img { max-width: 100%; }
"""

_SECTIONS = (
    ("leaderboard", "Leaderboard"),
    ("significance", "Pairwise significance"),
    ("parameters", "Parameter effects"),
    ("pareto", "Quality vs latency"),
    ("latency", "Latency distributions"),
    ("ratings", "Ratings"),
    ("trends", "Trends across runs"),
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
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    e = data.experiment
    title = f"evalflow report: {e.name}"
    nav = "".join(f'<a href="#{key}">{_e(name)}</a>' for key, name in _SECTIONS)
    header = (
        f"<header><h1>{_e(title)}</h1>"
        f"<div>suite {_e(e.suite)} · {_e(e.task_type)} · {len(data.order)} configs · "
        f"status {_e(e.status)} · generated {when}</div>"
        f'<div class="view">every output: <code>{_e(view_command(e.name))}</code>, then '
        f'<a href="{_e(view_url(e.name))}">{_e(view_url(e.name))}</a></div>'
        f"<nav>{nav}</nav></header>"
    )
    body = [f'<div class="banner">{_e(SIMULATED_BANNER)}</div>'] if e.simulated else []
    body += [
        _leaderboard(data),
        _significance(data),
        _parameters(data),
        _pareto(data),
        _latency(data),
        _ratings(data),
        _trends(data),
    ]
    notes = [*data.notes, *data.board.notes]
    if notes:
        body.append(_section("notes", "Notes", _list(notes)))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{header}<main>{''.join(body)}</main></body></html>"
    )


def _leaderboard(data: ReportData) -> str:
    board = data.board
    table = board.table.set_index("config").loc[list(data.order)].reset_index()
    front = {c for f in data.fronts if f.cost == "latency_p95_s" for c in f.configs}
    head = ["#", "config", "model", *[f"{m} [95% CI]" for m in board.metrics]]
    head += ["latency p50 s", "p95 s", "TTFT p50 s", "tok/s", "ok", "failed", "Pareto"]
    rows = []
    for r in table.to_dict("records"):
        cells = [data.names[r["config"]], f"{r['label']} ({r['config']})", r["model"]]
        cells += [_interval(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in board.metrics]
        cells += [_num(r[f]) for f in ("latency_p50_s", "latency_p95_s", "ttft_p50_s")]
        cells += [_num(r["tokens_per_s"], 1), _num(r["generations_ok"], 0)]
        cells += [_num(r["generations_failed"], 0), "on front" if r["config"] in front else ""]
        rows.append(cells)
    parts = [_table(head, rows, numeric_from=3)]
    if board.shows_pipelines:
        parts.append(_stages(data))
    if data.primary is not None:
        fig = plots.interval_plot(
            table, data.primary, _label_names(data), title=f"{data.primary} by config"
        )
        parts.append(_img(fig, f"{data.primary} with 95% intervals", data))
    parts.append(
        '<p class="muted">Sorted by the first metric. Intervals: 95%, clustered by case '
        "group where the suite has groups; corpus metrics by a seeded case bootstrap.</p>"
    )
    return _section("leaderboard", "Leaderboard", "".join(parts))


def _stages(data: ReportData) -> str:
    """Per config: calls and cut prompts per case, then the time and tokens per stage."""
    board = data.board
    assert board.pipelines is not None
    facts = board.table.set_index("config")
    head = ["config", "stage", "s per case", "calls per case", "prompt tok", "output tok"]
    rows = [
        [
            data.names.get(r["config"], r["config"]),
            r["stage"],
            _num(r["seconds_per_case"]),
            _num(r["calls_per_case"], 1),
            _num(r["prompt_tokens"], 0),
            _num(r["output_tokens"], 0),
        ]
        for r in board.pipelines.stages.to_dict("records")
    ]
    cut = {
        data.names.get(c, c): int(facts.at[c, "context_truncated"])
        for c in facts.index
        if facts.at[c, "context_truncated"] > 0
    }
    note = (
        "Prompts cut to the context window (num_ctx), which Ollama does silently: "
        + ", ".join(f"{name}: {n} generation(s)" for name, n in cut.items())
        if cut
        else "No prompt was longer than its context window."
    )
    return (
        "<h3>Pipeline stages</h3>"
        + _table(head, rows, numeric_from=2)
        + _p(f"Calls per case and time per stage, mean over cases. {note}", muted=True)
    )


def _significance(data: ReportData) -> str:
    multi = data.comparison
    if multi is None:
        return _section("significance", "Pairwise significance", _p("No comparisons."))
    fig = plots.significance_matrix(multi, data.order, data.names)
    parts = [
        _p(multi.verdict),
        _img(fig, "pairwise significance matrix", data),
        _p(
            f"Every pair of configs on {multi.metric}, paired on cases; p-values "
            f"{multi.adjustment}-adjusted over {len(multi.comparisons)} comparisons. Green: "
            "the row config is significantly better than the column config.",
            muted=True,
        ),
    ]
    if multi.notes:
        parts.append(_list(multi.notes))
    return _section("significance", "Pairwise significance", "".join(parts))


def _parameters(data: ReportData) -> str:
    if data.primary is None or not data.varied:
        return _section("parameters", "Parameter effects", _p("No parameter was varied."))
    images = [
        _img(
            plots.parameter_plot(data.facts, p, data.primary),
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
    body = f'<div class="grid">{"".join(images)}</div>'
    if rows:
        body += _table(head, rows, numeric_from=1)
    return _section("parameters", "Parameter effects", body)


def _pareto(data: ReportData) -> str:
    if not data.fronts:
        return _section("pareto", "Quality vs latency", _p("No quality and latency facts."))
    parts = []
    for front in data.fronts:
        fig = plots.quality_latency(data.facts, front.quality, front.cost, front, data.names)
        parts.append(f"<h3>{_e(front.quality)} against {_e(front.cost)}</h3>")
        parts.append(_img(fig, f"{front.quality} against {front.cost}", data))
        listing = ", ".join(f"{data.names.get(c, c)}" for c in front.configs)
        parts.append(_p(f"Pareto front (no config is both better and cheaper): {listing}."))
        if front.note:
            parts.append(_p(front.note, muted=True))
    return _section("pareto", "Quality vs latency", "".join(parts))


def _latency(data: ReportData) -> str:
    fig = plots.latency_distributions(data.generations, data.order, data.names)
    return _section("latency", "Latency distributions", _img(fig, "latency per config", data))


def _ratings(data: ReportData) -> str:
    summary = data.ratings
    if summary.n_ratings == 0 and not summary.judges:
        text = (
            "No human ratings yet. Rate outputs side by side with "
            f"<code>evalflow review {_e(data.experiment.name)}</code>."
        )
        return _section("ratings", "Ratings", f"<p>{text}</p>")
    return _section("ratings", "Ratings", _ratings_body(summary, data.names, data))


def _ratings_body(summary: RatingsSummary, names: dict[str, str], data: ReportData) -> str:
    parts = [
        _p(
            f"{summary.n_ratings} current ratings by {len(summary.raters)} rater(s) "
            f"({', '.join(summary.raters) or 'none'}); {summary.n_superseded} earlier "
            "ratings were replaced by their raters and are kept in the history."
        )
    ]
    if not summary.stars.empty:
        rank = {c: i for i, c in enumerate(names)}
        ranked = summary.stars.assign(rank=summary.stars["config"].map(rank))
        ranked = ranked.sort_values("rank", kind="stable").drop(columns="rank")
        parts.append(_img(plots.star_plot(ranked, names), "mean stars", data))
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
        parts.append(_table(["config", "criterion", "cases", "stars [95% CI]", "note"], rows, 2))
    if summary.preferences:
        parts.append("<h3>Preferences (exact binomial test, ties left out)</h3>")
        parts.append(
            _p(
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
        parts.append(_table(head, rows, 1))
    if summary.star_tests:
        parts.append("<h3>Stars, paired on cases (sign test and Wilcoxon signed-rank)</h3>")
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
        parts.append(_table(head, rows, 2))
    if summary.kappas:
        parts.append("<h3>Inter-rater agreement (weighted Cohen's kappa)</h3>")
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
            _table(["raters", "criterion", "items", "kappa [95% CI]", "weights", "note"], rows, 2)
        )
    for judge in summary.judges:
        parts.append(f"<h3>Judge {_e(judge.judge)}</h3>")
        rate = "–" if judge.contradiction_rate is None else f"{judge.contradiction_rate:.0%}"
        parts.append(
            _p(
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
                _table(
                    ["criterion", "generations", "Spearman rho vs humans [95% CI]", "p", "note"],
                    rows,
                    1,
                )
            )
    return "".join(parts)


def _trends(data: ReportData) -> str:
    history = data.history
    if data.primary is None or history.empty:
        return _section("trends", "Trends across runs", _p("No stored runs to compare."))
    runs = history["experiment"].nunique()
    parts = [
        _img(plots.trends(history, data.primary, data.order, data.names), "metric trends", data)
    ]
    parts.append(
        _p(
            f"Each config's mean {data.primary} in the {runs} run(s) of suite "
            f"{data.experiment.suite} that included it, by run start time.",
            muted=True,
        )
    )
    return _section("trends", "Trends across runs", "".join(parts))


# -- small HTML helpers ------------------------------------------------------------------


def _label_names(data: ReportData) -> dict[str, str]:
    labels = dict(zip(data.board.table["config"], data.board.table["label"], strict=True))
    return {c: f"{data.names[c]} {labels.get(c, c)}" for c in data.order}


def _e(value: object) -> str:
    return html.escape(str(value))


def _p(text: str, *, muted: bool = False) -> str:
    cls = ' class="muted"' if muted else ""
    return f"<p{cls}>{_e(text)}</p>"


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _img(fig, alt: str, data: ReportData) -> str:
    """A figure as an embedded PNG; a simulated experiment's carries the SIMULATED mark
    in the picture and its alt text, so no plot copied out of the report passes as real."""
    if data.experiment.simulated:
        plots.mark_simulated(fig)
        alt = f"SIMULATED: {alt}"
    return f'<img src="{plots.png_data_uri(fig)}" alt="{_e(alt)}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 99) -> str:
    # in a scrolling box: a wide table stays inside its section's card
    out = ['<div class="scroll"><table><thead><tr>', *(f"<th>{_e(h)}</th>" for h in head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="num"' if numeric_from <= i < len(row) - 1 else ""
            out.append(f"<td{cls}>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _num(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):.{digits}f}"


def _interval(mean: object, low: object, high: object, digits: int = 3) -> str:
    if _missing(mean):
        return "–"
    if _missing(low) or _missing(high):
        return f"{float(mean):.{digits}f}"
    return f"{float(mean):.{digits}f} [{float(low):.{digits}f}, {float(high):.{digits}f}]"
