"""The experiment page's summary: leaderboard with intervals, verdict, the configs within
noise of the best, Pareto fronts and parameter effects. Built by the report's own
``gather`` (the leaderboard, ranking, comparison and effects the CLI and the HTML report
show), so the page and the report cannot disagree; only the layout is the view's."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from evaluation.report import gather
from evaluation.statistics.precision import column_decimals
from evaluation.storage.runs import experiment_status

#: While a run is going the page reloads itself this often (seconds).
REFRESH_S = 5


@dataclass(frozen=True)
class LeaderRow:
    rank: str
    config: str
    label: str
    cells: tuple[str, ...]  # one "mean [low, high]" per metric
    latency_p95_s: str
    failed: str
    within_noise: bool
    on_front: bool


@dataclass(frozen=True)
class Summary:
    status: str
    running: bool
    metrics: tuple[str, ...]
    primary: str | None
    rows: tuple[LeaderRow, ...]
    shared: str
    verdict: str | None
    effects: tuple[dict[str, Any], ...]
    fronts: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]


def experiment_summary(session: Session, experiment: str) -> Summary:
    """What the experiment page shows, as the report computes it."""
    data = gather(session, experiment)
    state = experiment_status(session, data.experiment)
    board = data.board
    labels = board.labels
    table = board.table.set_index("config")
    comparison = data.comparison
    tied = set(comparison.tied_at_top) if comparison is not None else set()
    front = {c for f in data.fronts if f.cost == "latency_p95_s" for c in f.configs}
    digits = {
        m: column_decimals(table[f"{m}_ci_low"], table[f"{m}_ci_high"]) for m in board.metrics
    }
    rows = []
    for config in data.order:
        r = table.loc[config]
        rows.append(
            LeaderRow(
                rank=data.names[config],
                config=config,
                label=labels[config],
                cells=tuple(
                    _interval(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"], digits[m])
                    for m in board.metrics
                ),
                latency_p95_s=_number(r["latency_p95_s"], 3),
                failed=_number(r["generations_failed"], 0),
                within_noise=config in tied,
                on_front=config in front,
            )
        )
    effects = tuple(
        {
            "parameter": e.parameter,
            "configs": e.n_configs,
            "rho": _interval(e.rho, *(e.rho_ci or (None, None)), 2),
            "p": _number(e.p_value, 3),
            "best": "–" if e.best_value is None else f"{e.best_value:g}",
            "recommended": "–"
            if e.recommended_range is None
            else "{:g} – {:g}".format(*e.recommended_range),
            "note": e.note,
        }
        for e in data.effects
    )
    fronts = tuple(
        {
            "quality": f.quality,
            "cost": f.cost,
            "configs": [(data.names.get(c, c), labels.get(c, c), c) for c in f.configs],
            "note": f.note,
        }
        for f in data.fronts
    )
    return Summary(
        status=state.status,
        running=state.status == "running",
        metrics=board.metrics,
        primary=data.primary,
        rows=tuple(rows),
        shared=board.shared,
        verdict=comparison.verdict if comparison is not None else None,
        effects=effects,
        fronts=fronts,
        notes=data.notes,
    )


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: object, digits: int) -> str:
    return "–" if _missing(value) else f"{float(value):.{digits}f}"


def _interval(mean: object, low: object, high: object, digits: int = 3) -> str:
    if _missing(mean):
        return "–"
    if _missing(low) or _missing(high):
        return f"{float(mean):.{digits}f}"
    return f"{float(mean):.{digits}f} [{float(low):.{digits}f}, {float(high):.{digits}f}]"
