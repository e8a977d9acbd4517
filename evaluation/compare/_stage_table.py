"""Time per pipeline stage, one row per config in the leaderboard's order and one column
per stage in the pipeline's order (a long table of config × stage rows pushed the
leaderboard off the screen): the terminal's form and the report's markdown."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evaluation.compare._text_table import text_table
from evaluation.pipelines.summary import SHARED

if TYPE_CHECKING:
    import pandas as pd

Stages = Sequence[Mapping[str, Any]]  # a PipelineSummary's rows

_MISSING = "–"
#: What a stage's seconds are: a case's map calls run at once, so the sum of their
#: seconds exceeds the case's wall time (a newcomer read "map 13.76" against a p95 of 10.5).
SUMMED = "summed over the stage's calls, which may run at once: not the case's wall time"


def _number(value: Any, digits: int = 2) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{value:.{digits}f}"


def _seconds(row: Mapping[str, Any]) -> str:
    """Seconds in service per case, "+wait" for a host slot where there was any."""
    service = _number(row["seconds_per_case"]) or _MISSING
    wait = row["wait_s_per_case"]
    waited = _number(wait) if _number(wait) is not None and wait >= 0.005 else None
    return f"{service} +{waited}" if waited else service


def report_cell(row: Mapping[str, Any]) -> str:
    """The report's cell: time, calls, prompt and output tokens per case."""
    tokens = [_number(row[k], 0) for k in ("prompt_tokens", "output_tokens")]
    calls = _number(row["calls_per_case"], 1) or _MISSING
    shown = "/".join(t or _MISSING for t in tokens)
    return f"{_seconds(row)} s, {calls} calls, {shown} tok"


def stage_cells(
    stages: Stages,
    order: Sequence[str],
    labels: Mapping[str, str],
    cell: Callable[[Mapping[str, Any]], str] = _seconds,
) -> dict[str, list[str]]:
    """Rows: the configs of ``order`` that have stages, then the stages run once for the
    whole sweep (``SHARED``); columns: "config" and each stage as the pipeline runs them
    ("" where a config has no such stage)."""
    names = list(dict.fromkeys(r["stage"] for r in stages))
    by_config: dict[str, dict[str, str]] = {}
    for r in stages:
        by_config.setdefault(r["config"], {})[r["stage"]] = cell(r)
    shown = [c for c in [*order, SHARED] if c in by_config]
    columns = {"config": [labels.get(c, c) for c in shown]}
    columns |= {name: [by_config[c].get(name, "") for c in shown] for name in names}
    return columns


def stage_pivot(
    stages: Stages,
    order: Sequence[str],
    labels: Mapping[str, str],
    cell: Callable[[Mapping[str, Any]], str] = _seconds,
) -> pd.DataFrame:
    """``stage_cells`` as a DataFrame (the report's)."""
    import pandas as pd

    return pd.DataFrame(stage_cells(stages, order, labels, cell))


def stage_text(stages: Stages, order: Sequence[str], labels: Mapping[str, str]) -> str:
    """The terminal's table."""
    return (
        f"Time per stage (s per case in service, {SUMMED}; +s waiting for a host slot):\n"
        + text_table(stage_cells(stages, order, labels))
    )


def stage_lines(stages: Stages, order: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """The report's markdown table, and what its figures count."""
    named = {c: f"`{c}` {labels.get(c, '')}" for c in order}
    table = stage_cells(stages, order, named, report_cell)
    header = list(table)
    lines = [
        f"Time per stage (mean per case: seconds in service, {SUMMED}; +seconds waiting "
        "for a host slot; calls; prompt/output tokens), configs in the leaderboard's order:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in zip(*table.values(), strict=True):
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "calls/case: model calls per case; prompt cut: generations cut by the context "
        "window (a prompt cut to num_ctx, or an output the server stopped for want of "
        "room), which servers do silently.",
    ]
    return lines
