"""A comparison for the terminal: per metric its verdict and the pairs that differ most,
within 100 columns, numbers rounded to what their intervals support. The full markdown
report stays what the artifact shows (`compare --markdown`)."""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from evaluation.compare._text_table import text_table
from evaluation.compare._wrapped_table import wrapped_table
from evaluation.labels import distinguishing_labels
from evaluation.statistics._adjust import ADJUSTMENT_NAMES
from evaluation.statistics.precision import decimals, finest_decimals, fixed, rounded
from evaluation.wording import (
    TERMINAL_COLUMNS,
    UNADJUSTED_ONLY,
    pair_mark,
    unadjusted_only_words,
)

PAIRS_PER_METRIC = 8
_SIMULATED = "*** SIMULATED: these configs ran on evalflow's simulated backend, not real models ***"
_SHORT = {"holm": "Holm", "fdr_bh": "BH"}
"""The adjustment as a column header names it ("p Holm-adj")."""
_DIFF_HEADER = "diff A-B [unadj. 95% CI]"


def render_comparison_text(
    run_label: str,
    rows: Sequence[Mapping[str, Any]],
    verdicts: Mapping[str, Mapping[str, Any]],
    *,
    simulated: bool,
    partly_simulated: Sequence[str] = (),
    all_pairs: bool = False,
    adjustment: str = "holm",
    columns: int = TERMINAL_COLUMNS,
    table_columns: int | None = None,
) -> str:
    """``rows``: the comparison table (one dict per pair and metric, as published);
    ``verdicts``: per metric, its ``verdict`` line. Pairs are listed most significant
    first, ``PAIRS_PER_METRIC`` per metric unless ``all_pairs``. ``adjustment`` names
    how the p-values were adjusted (the intervals are each pair's own, unadjusted: the
    column headers and the footnote say so, since one can exclude 0 beside an adjusted
    p that is not significant; a footnote alone, after every metric's table, went unread).
    The prose is wrapped to ``columns`` (the terminal's, as the leaderboard is); the
    pair tables fit ``table_columns`` (the width where it is known: a terminal,
    $COLUMNS; their labels wrapped, 94 wide at 80 before), else each pair is one row.
    ``partly_simulated``: where experiments that ran on the simulated backend are
    compared with real ones, their names: the banner says only their configs are
    simulated (it said "these configs" over 2 real configs of 6). A pair significant after
    adjustment is marked ``*``; one whose interval alone excludes 0, ``UNADJUSTED_ONLY``,
    with a line saying so under the tables."""
    p_header = f"p {_SHORT[adjustment]}-adj"
    banner = _partly_simulated(partly_simulated) if partly_simulated else _SIMULATED
    lines = textwrap.wrap(banner, columns, break_on_hyphens=False) if simulated else []
    lines.append(f"Comparison: {run_label}")
    frame = pd.DataFrame(list(rows))
    names = sorted(set(frame["a"]) | set(frame["b"])) if len(frame) else []
    short = distinguishing_labels(names) if names else {}
    marked = False  # a pair whose interval alone excludes 0 is shown
    for metric in dict.fromkeys([*verdicts, *(frame["metric"] if len(frame) else [])]):
        lines += ["", f"{metric}:"]
        verdict = verdicts.get(metric, {}).get("verdict")
        if verdict:
            lines += _wrap_whole_names(verdict, [*names, *short.values()], columns)
        pairs = frame[frame["metric"] == metric] if len(frame) else frame
        if not len(pairs):
            continue
        pairs = pairs.sort_values("p_adjusted", na_position="last", kind="stable")
        shown = pairs if all_pairs else pairs.head(PAIRS_PER_METRIC)
        # one number of decimals per metric's column: rows rounded each to its own
        # interval read "+0.80 [-0.22, +1.00]" above "+0.6 [-1.0, +1.0]"; the finest,
        # so a pair reads the same alone and beside wider ones
        digits = finest_decimals(shown["diff_ci_low"], shown["diff_ci_high"])
        table = {
            "A": [short[a] for a in shown["a"]],
            "B": [short[b] for b in shown["b"]],
            _DIFF_HEADER: [_diff(r, digits) for r in shown.to_dict("records")],
            p_header: [_p(p) for p in shown["p_adjusted"]],
            "": (
                marks := [
                    pair_mark(r.get("significant"), r.get("diff_ci_low"), r.get("diff_ci_high"))
                    for r in shown.to_dict("records")
                ]
            ),
        }
        marked = marked or UNADJUSTED_ONLY in marks
        drawn = text_table(table) if table_columns is None else _fitted_pairs(table, table_columns)
        lines += ["  " + line for line in drawn.splitlines()]
        if len(pairs) > len(shown):
            lines.append(f"  ... {len(pairs) - len(shown)} more pairs (--all lists every pair)")
    footnote = (
        f"[unadj. 95% CI]: each pair's own interval, not adjusted for multiple comparisons; "
        f"{p_header}: p {ADJUSTMENT_NAMES[adjustment]}-adjusted over the metric's pairs (an "
        "interval can exclude 0 where the adjusted p is not significant; on 0/1 scores, where "
        "the exact p is not, on few discordant cases: the note in --markdown says so)"
    )
    if any("[no CI: all" in line for line in lines):
        footnote += (
            "; [no CI: all n equal]: every shared case differs by the same amount, and a "
            "spread of 0 cannot bound the difference on cases not run"
        )
    lines += ["", *textwrap.wrap(footnote, columns)]
    lines.append("* significant after adjustment; --markdown prints the full report")
    if marked:
        lines.append(unadjusted_only_words(ADJUSTMENT_NAMES[adjustment]))
    return "\n".join(lines)


def _fitted_pairs(table: Mapping[str, Sequence[str]], width: int) -> str:
    """The pair table (indented 2) within ``width``: its labels wrapped at spaces; where a
    label's word is still too wide for them (`smollm2-135m-instruct` in A and B made
    every row 81 at 80 columns), the numbers' headers also fold onto two lines ("diff A-B"
    over "[unadj. 95% CI]", "p" over "Holm-adj"), as wide as their numbers, and the
    labels wrap to the room that leaves."""
    drawn = wrapped_table(table, ("A", "B"), width - 2)
    if max(map(len, drawn.splitlines())) <= width - 2:
        return drawn
    folded = {}
    for name, cells in table.items():
        top, _, under = name.partition(" [" if name == _DIFF_HEADER else " ")
        folded[top] = [f"[{under}" if name == _DIFF_HEADER else under, *cells]
    return wrapped_table(folded, ("A", "B"), width - 2)


def _partly_simulated(experiments: Sequence[str]) -> str:
    """The banner where only ``experiments``' configs ran simulated."""
    names = " and ".join(", ".join(experiments).rsplit(", ", 1))
    return (
        f"*** SIMULATED: only some configs ran on evalflow's simulated backend, not real "
        f"models: those of {names}; the others ran on real models ***"
    )


def _wrap_whole_names(text: str, names: Sequence[str], columns: int) -> list[str]:
    """``text`` wrapped to the terminal, indented, never inside one of ``names`` (a
    newcomer could not copy a config's name that a verdict line broke in two)."""
    glue = "\x00"
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, name.replace(" ", glue))
    wrapped = textwrap.wrap(
        text,
        columns,
        initial_indent="  ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(glue, " ") for line in wrapped]


def verdicts_by_metric(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The verdict table's rows (``table_rows(report)["verdicts"]``) per metric: the
    winner (or None), the configs tied at the top, those significantly worse than the
    best, the verdict line."""
    return {
        v["metric"]: {
            "winner": v["winner"],
            "tied": v["tied_at_top"],
            "worse": v["significantly_worse"],
            "verdict": v["verdict"],
        }
        for v in rows
    }


def _diff(row: Mapping[str, Any], digits: int) -> str:
    low, high, diff = row.get("diff_ci_low"), row.get("diff_ci_high"), row.get("diff")
    if not _finite(diff):
        return "–"
    if not (_finite(low) and _finite(high)):
        return f"{fixed(diff, digits, signed=True)} {_no_interval(row.get('n_used'))}"
    signed = [fixed(float(v), digits, signed=True) for v in (diff, low, high)]
    return f"{signed[0]} [{signed[1]}, {signed[2]}]"


def _no_interval(n_used: object) -> str:
    """Why a pair's difference has no interval: one shared case, or every shared case
    differing by the same amount (not 0/1 scores: their interval is Tango's), whose
    spread of 0 would give a point, as if a few cases made the difference certain."""
    if not isinstance(n_used, numbers.Real) or n_used < 2:
        return "[no CI: 1 case]"
    return f"[no CI: all {int(n_used)} equal]"


def _p(value: object) -> str:
    if not _finite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def rounded_comparison_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The comparison table for an artifact: differences and means to what the pair's
    interval supports, p-values to two significant digits, statistics to three decimals."""
    out = []
    for row in rows:
        low, high = row.get("diff_ci_low"), row.get("diff_ci_high")
        d = decimals((high - low) / 2) if _finite(low) and _finite(high) else 3
        new = dict(row)
        for key in (
            "mean_a",
            "mean_b",
            "diff",
            "diff_ci_low",
            "diff_ci_high",
            "min_detectable_difference",
        ):
            new[key] = rounded(row.get(key), d)
        for key in ("statistic", "effect_size", "correlation"):
            new[key] = rounded(row.get(key), 3)
        for key in ("p_value", "p_adjusted"):
            p = row.get(key)
            new[key] = float(f"{p:.2g}") if _finite(p) else p
        out.append(new)
    return out
