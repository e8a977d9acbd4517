"""The report's key content as markdown, for a Prefect artifact: the verdict, the top of
the leaderboard, the parameters that mattered and the Pareto front, with links to the
other artifacts. The HTML file has the plots; a browser on the UI cannot open a
``file://`` link, so the summary carries what a reader needs first."""

from __future__ import annotations

from collections.abc import Mapping

from evaluation.compare._leaderboard import SIMULATED_BANNER, is_corpus_metric
from evaluation.report.data import ReportData
from evaluation.statistics.precision import fixed
from evaluation.view import view_hint
from evaluation.wording import EFFECTS_FIGURES, NOT_MEASURED, cost_words, per_case_words

TOP = 5  # leaderboard rows in the summary


def render_summary(
    data: ReportData, *, links: Mapping[str, str], report_file: str | None = None
) -> str:
    """Markdown summary of ``data``. ``links``: link text -> URL (artifacts, flow run);
    ``report_file``: where the HTML report was written (shown as a path, not a link)."""
    e = data.experiment
    lines = [f"# Report: {e.name}", ""]
    if e.simulated:
        lines += [f"> **{SIMULATED_BANNER}**", ""]
    lines += [
        f"Suite `{e.suite}` ({e.task_type}) · {len(data.order)} configs · status {e.status}",
        "",
    ]
    for multi in data.comparisons or ((data.comparison,) if data.comparison else ()):
        lines += [f"**Verdict on {multi.metric}:** {multi.verdict}", ""]
    lines += _leaderboard(data)
    lines += _effects(data)
    for front in data.fronts:
        listing = ", ".join(f"{data.names.get(c, c)} `{c}`" for c in front.configs)
        cost = cost_words(front.cost)
        lines += [f"**Pareto front, {front.quality} against {cost}:** {listing}", ""]
    if links:
        lines += ["## More", "", *[f"- [{text}]({url})" for text, url in links.items()], ""]
    if report_file:
        lines += [
            f"The full report (plots, significance matrix, latency, ratings, trends) is "
            f"`{report_file}` on the machine that ran the flow; `evalflow report {e.name}` "
            "writes it anywhere the results database is reachable.",
        ]
    lines += ["", view_hint(e.name) + "."]
    notes = [*data.notes, *data.board.notes]
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    return "\n".join(lines).rstrip() + "\n"


def _leaderboard(data: ReportData) -> list[str]:
    if data.primary is None or not data.order:
        return ["No scored configs.", ""]
    m = data.primary
    table = data.board.table.set_index("config")
    shown = data.order[:TOP]
    title = f"## Leaderboard ({len(shown)} of {len(data.order)}, by {m})"
    lines = [title, "", f"| # | config | {m} [95% CI] | p95 latency s | ok | failed |"]
    lines.append("|---|---|---|---|---|---|")
    for config in shown:
        r = table.loc[config]
        lines.append(
            f"| {data.names[config]} | {data.board.labels[config]} `{config}` | "
            f"{_num(r[m])} [{_num(r[f'{m}_ci_low'])}, {_num(r[f'{m}_ci_high'])}] | "
            f"{_latency(r['latency_p95_s'])} | {_num(r['generations_ok'], 0)} | "
            f"{_num(r['generations_failed'], 0)} |"
        )
    if data.board.dropped:
        lines += ["", f"**{data.board.dropped_note}**"]
    return [*lines, ""]


def _effects(data: ReportData) -> list[str]:
    lines = []
    for effect in data.effects:
        if effect.rho is None:
            continue
        best = "" if effect.best_value is None else f", best at {effect.best_value:g}"
        p = "" if effect.p_value is None else f", p = {effect.p_value:.3g}"
        lines.append(f"- `{effect.parameter}`: Spearman rho {effect.rho:+.2f}{p}{best}")
    if not lines:
        return []
    if is_corpus_metric(data.primary):
        lines += ["", f"{per_case_words(data.primary, EFFECTS_FIGURES)}."]
    return [f"**Parameter effects on {data.primary}:**", "", *lines, ""]


def _latency(value: object) -> str:
    shown = _num(value)
    return NOT_MEASURED if shown == "–" else shown


def _num(value: object, digits: int = 3) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    if number != number:  # NaN
        return "–"
    return fixed(number, digits)
