"""Render a :class:`StatisticsReport` as markdown and as plain table rows.

Undefined values are written "undefined" (markdown) or None (rows), never 0 or NaN; the
note beside them says why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from evaluation.statistics._adjust import ADJUSTMENT_NAMES
from evaluation.statistics.analysis import StatisticsReport
from evaluation.statistics.multiple import MultiComparison
from evaluation.wording import (
    EFFECTS_FIGURES,
    UNADJUSTED_ONLY,
    cost_words,
    pair_mark,
    per_case_words,
    unadjusted_only_words,
)

UNDEFINED = "undefined"


def render_markdown(
    report: StatisticsReport,
    *,
    banner: str,
    title: str = "Statistics",
    corpus: Collection[str] = (),
) -> str:
    """Markdown: the banner line first (e.g. "SIMULATED — not real model output"), then per
    metric the verdict (winner or tie), means, pairwise table with adjusted p-values,
    effect sizes, intervals and power, parameter effects; then the Pareto fronts.
    ``corpus``: the corpus metrics (chrF, BLEU), whose means and parameter effects are of
    per-case values where the leaderboard's figure is the corpus value: each table says so
    (``per_case_words``), as the report and the view do."""
    if not banner.strip() or "\n" in banner:
        raise ValueError("banner must be one non-empty line")
    out = [f"**{banner.strip()}**", "", f"# {title}", ""]
    for multi in report.comparisons:
        out += _metric_section(report, multi, multi.metric in corpus)
    for front in report.pareto:
        cost = cost_words(front.cost)
        out += [f"## Pareto front: {front.quality} vs {cost}", ""]
        out += _table(
            ["config", front.quality, cost],
            [[cfg, _num(q), _num(c)] for cfg, q, c in front.points],
        )
        if front.note:
            out += ["", f"_{front.note}_"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def table_rows(report: StatisticsReport) -> dict[str, list[dict[str, Any]]]:
    """Flat rows (str / int / float / None) for artifacts and database tables."""
    comparisons = []
    for multi in report.comparisons:
        for ac in multi.comparisons:
            c = ac.comparison
            comparisons.append(
                {
                    "metric": c.metric,
                    "a": c.a,
                    "b": c.b,
                    "n_used": c.n_used,
                    "n_excluded": c.n_excluded,
                    "mean_a": c.mean_a,
                    "mean_b": c.mean_b,
                    "diff": c.diff,
                    "diff_ci_low": _lo(c.diff_ci),
                    "diff_ci_high": _hi(c.diff_ci),
                    "test": c.test,
                    "statistic": c.statistic,
                    "p_value": c.p_value,
                    "p_adjusted": ac.p_adjusted,
                    "adjustment": multi.adjustment,
                    "significant": ac.significant,
                    "effect_size": c.effect_size,
                    "effect_size_name": c.effect_size_name,
                    "correlation": c.correlation,
                    "min_detectable_difference": ac.power.min_detectable_difference,
                    "cases_needed": ac.power.cases_needed,
                    "note": c.note,
                }
            )
    return {
        "means": [
            {
                "metric": s.metric,
                "config": s.config,
                "n": s.n,
                "n_excluded": s.n_excluded,
                "mean": s.mean,
                "se": s.se,
                "ci_low": _lo(s.ci),
                "ci_high": _hi(s.ci),
                "method": s.method,
                "samples_per_case": s.samples_per_case,
                "note": s.note,
            }
            for s in report.summaries
        ],
        "comparisons": comparisons,
        "verdicts": [
            {
                "metric": m.metric,
                "winner": m.winner,
                "tied_at_top": list(m.tied_at_top),
                "significantly_worse": list(m.significantly_worse),
                "verdict": m.verdict,
            }
            for m in report.comparisons
        ],
        "parameter_effects": [
            {
                "metric": e.metric,
                "parameter": e.parameter,
                "n_configs": e.n_configs,
                "rho": e.rho,
                "rho_ci_low": _lo(e.rho_ci),
                "rho_ci_high": _hi(e.rho_ci),
                "p_value": e.p_value,
                "best_value": e.best_value,
                "best_config": e.best_config,
                "recommended_values": list(e.recommended_values),
                "recommended_low": _lo(e.recommended_range),
                "recommended_high": _hi(e.recommended_range),
                "note": e.note,
            }
            for e in report.effects
        ],
        "pareto": [
            {
                "quality": f.quality,
                "cost": f.cost,
                "config": cfg,
                "quality_value": q,
                "cost_value": c,
            }
            for f in report.pareto
            for cfg, q, c in f.points
        ],
    }


def _metric_section(report: StatisticsReport, multi: MultiComparison, corpus: bool) -> list[str]:
    direction = {True: "higher is better", False: "lower is better"}.get(
        multi.higher_is_better, "descriptive"
    )
    out = [
        f"## {multi.metric} ({multi.score_type}, {direction})",
        "",
        f"**Verdict:** {multi.verdict}",
        "",
    ]
    out += [f"- {n}" for n in multi.notes] + ([""] if multi.notes else [])
    summaries = [s for s in report.summaries if s.metric == multi.metric]
    conf = f"{summaries[0].confidence:.0%}" if summaries else "95%"
    out += [f"### Means ({conf} intervals)", ""]
    out += _table(
        ["config", "n", "excluded", "mean", "SE", f"{conf} CI", "method", "note"],
        [
            [s.config, s.n, s.n_excluded, _num(s.mean), _num(s.se), _ci(s.ci), s.method, s.note]
            for s in summaries
        ],
    )
    if corpus:
        out += ["", f"_{per_case_words(multi.metric)}._"]
    adj = ADJUSTMENT_NAMES[multi.adjustment]
    m = len(multi.comparisons)
    power = multi.comparisons[0].power if multi.comparisons else None
    mdd = "MDD" if power is None else f"MDD ({power.power:.0%} power, α/{m})"
    delta = None if power is None else power.delta
    scope = "all pairs" if multi.mode == "all_pairs" else f"each versus {multi.baseline}"
    out += ["", f"### Paired comparisons ({scope}; {adj}-adjusted, α = {multi.alpha:g})", ""]
    out += [
        f"CI: each pair's own 95% interval of A − B, not adjusted for multiple comparisons; "
        f"p adj.: {adj}-adjusted over the {m} comparisons, so an interval can exclude 0 "
        "where the pair is not significant.",
        "",
    ]
    header = [
        "A",
        "B",
        "n",
        "A − B",
        "CI",
        "test",
        "p",
        "p adj.",
        "significant",
        "effect size",
        "corr.",
        mdd,
    ]
    if delta is not None:
        header.append(f"cases for δ = {delta:g}")
    header += ["excluded", "note"]
    rows, marked = [], False
    for ac in multi.comparisons:
        c = ac.comparison
        effect = UNDEFINED if c.effect_size is None else f"{c.effect_size_name} {c.effect_size:.3g}"
        mark = pair_mark(ac.significant, _lo(c.diff_ci), _hi(c.diff_ci))  # as compare's rows
        marked = marked or mark == UNADJUSTED_ONLY
        row = [
            c.a,
            c.b,
            c.n_used,
            _num(c.diff),
            _ci(c.diff_ci),
            c.test,
            _p(c.p_value),
            _p(ac.p_adjusted),
            "yes" if ac.significant else f"no {mark}".rstrip(),
            effect,
            _num(c.correlation),
            _num(ac.power.min_detectable_difference),
        ]
        if delta is not None:
            row.append(_num(ac.power.cases_needed))
        reasons = ", ".join(f"{k}: {v}" for k, v in c.exclusion_reasons.items())
        row += [
            f"{c.n_excluded} ({reasons})" if reasons else c.n_excluded,
            "; ".join(x for x in (c.note, ac.power.note) if x),
        ]
        rows.append(row)
    out += _table(header, rows) if rows else ["_No comparisons._"]
    if marked:
        out += ["", unadjusted_only_words(adj)]
    effects = [e for e in report.effects if e.metric == multi.metric]
    if effects:
        out += ["", "### Parameter effects", ""]
        out += _table(
            [
                "parameter",
                "configs",
                "Spearman ρ",
                "CI",
                "p",
                "best value",
                "recommended values",
                "note",
            ],
            [
                [
                    e.parameter,
                    e.n_configs,
                    _num(e.rho),
                    _ci(e.rho_ci),
                    _p(e.p_value),
                    _num(e.best_value),
                    ", ".join(f"{v:g}" for v in e.recommended_values) or UNDEFINED,
                    e.note,
                ]
                for e in effects
            ],
        )
        if corpus:
            out += ["", f"_{per_case_words(multi.metric, EFFECTS_FIGURES)}._"]
    out.append("")
    return out


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return lines


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _num(x: float | int | None) -> str:
    if x is None:
        return UNDEFINED
    if isinstance(x, int):
        return str(x)
    return f"{x:.4g}"


def _p(p: float | None) -> str:
    if p is None:
        return UNDEFINED
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return UNDEFINED if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _lo(pair: tuple[float, float] | None) -> float | None:
    return None if pair is None else pair[0]


def _hi(pair: tuple[float, float] | None) -> float | None:
    return None if pair is None else pair[1]
