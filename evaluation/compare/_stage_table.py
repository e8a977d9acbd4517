"""Time per pipeline stage, one row per config in the leaderboard's order and one column
per stage in the pipeline's order (a long table of config × stage rows pushed the
leaderboard off the screen): the terminal's form and the report's markdown."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.pipelines.summary import SHARED

_MISSING = "–"


def _number(value: Any, digits: int = 2) -> str | None:
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    return f"{value:.{digits}f}"


def _seconds(row: Mapping[str, Any]) -> str:
    """Seconds in service per case, "+wait" for a host slot where there was any."""
    service = _number(row["seconds_per_case"]) or _MISSING
    wait = row["wait_s_per_case"]
    waited = _number(wait) if wait is not None and not pd.isna(wait) and wait >= 0.005 else None
    return f"{service} +{waited}" if waited else service


def report_cell(row: Mapping[str, Any]) -> str:
    """The report's cell: time, calls, prompt and output tokens per case."""
    tokens = [_number(row[k], 0) for k in ("prompt_tokens", "output_tokens")]
    calls = _number(row["calls_per_case"], 1) or _MISSING
    shown = "/".join(t or _MISSING for t in tokens)
    return f"{_seconds(row)} s, {calls} calls, {shown} tok"


def stage_pivot(
    stages: pd.DataFrame,
    order: Sequence[str],
    labels: Mapping[str, str],
    cell: Callable[[Mapping[str, Any]], str] = _seconds,
) -> pd.DataFrame:
    """Rows: the configs of ``order`` that have stages, then the stages run once for the
    whole sweep (``SHARED``); columns: "config" and each stage as the pipeline runs them."""
    names = list(dict.fromkeys(stages["stage"]))
    by_config = {c: rows for c, rows in stages.groupby("config", sort=False)}
    rows = []
    for config in [*order, SHARED]:
        if config not in by_config:
            continue
        row = {"config": labels.get(config, config)}
        row |= {r["stage"]: cell(r) for r in by_config[config].to_dict("records")}
        rows.append(row)
    return pd.DataFrame(rows, columns=["config", *names]).fillna("")


def stage_text(stages: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str]) -> str:
    """The terminal's table."""
    table = stage_pivot(stages, order, labels)
    return (
        "Time per stage (s per case in service, +s waiting for a host slot):\n"
        + table.to_string(index=False)
    )


def stage_lines(stages: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """The report's markdown table, and what its figures count."""
    named = {c: f"`{c}` {labels.get(c, '')}" for c in order}
    table = stage_pivot(stages, order, named, report_cell)
    header = list(table.columns)
    lines = [
        "Time per stage (mean per case: seconds in service, +seconds waiting for a host "
        "slot; calls; prompt/output tokens), configs in the leaderboard's order:",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        "calls/case: model calls per case; prompt cut: generations cut by the context "
        "window (a prompt cut to num_ctx, or an output the server stopped for want of "
        "room), which servers do silently.",
    ]
    return lines
