"""Views across many configs at once: the flip matrix (for each pair of configs, on how
many cases the row config is better than the column config, and the cases only one
config gets best; shown a window of leaderboard ranks at a time) and the grid of a
quality metric over two chosen parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session

from evaluation.compare._leaderboard import is_corpus_metric, metric_direction, shown_interval
from evaluation.spec._params import PARAMETERS
from evaluation.statistics.ranking import rank_order, tie_keys
from evaluation.storage.repository import (
    aggregates_frame,
    experiment_configs,
    get_experiment,
    metric_scores_frame,
)
from evaluation.wording import corpus_figure

if TYPE_CHECKING:
    import pandas as pd

#: Parameters a grid can be drawn over, besides the generation parameters.
_CATEGORICAL = ("model", "template_name")


@dataclass(frozen=True)
class FlipMatrix:
    metric: str
    configs: tuple[str, ...]  # config hashes, best first
    better: tuple[tuple[int, ...], ...]  # better[i][j]: cases where i beats j
    only_best: dict[str, tuple[str, ...]]  # config -> cases where it alone is best
    cases: int


def flip_shade(wins: int, losses: int) -> tuple[float, float]:
    """A flip cell's colour: how far the row's config leads (``win``) or trails
    (``lose``) the column's on the cases either is better on, each 0-1 (0.5 of the
    decided cases each way: both 0, no colour)."""
    decided = wins + losses
    if decided == 0:
        return 0.0, 0.0
    lead = (wins - losses) / decided
    return round(max(lead, 0.0), 3), round(max(-lead, 0.0), 3)


def flip_matrix(
    session: Session, experiment_id: int, metric: str, order: list[str], higher: bool = True
) -> FlipMatrix | None:
    """Case means (samples averaged first) of every config on ``metric``; None when
    nothing is scored. ``order``: the configs as the leaderboard ranks them."""
    from evaluation.statistics._cases import case_table

    scores = metric_scores_frame(session, experiment_id, metric).dropna(subset=["value"])
    if scores.empty:
        return None
    means = case_table(scores, metric).means
    configs = [c for c in order if c in means.columns]
    signed = means[configs] if higher else -means[configs]
    better = tuple(tuple(int((signed[a] > signed[b]).sum()) for b in configs) for a in configs)
    best = signed.max(axis=1)
    alone = signed.eq(best, axis=0).sum(axis=1) == 1
    only_best = {
        c: tuple(str(x) for x in signed.index[alone & signed[c].eq(best)]) for c in configs
    }
    return FlipMatrix(metric, tuple(configs), better, only_best, len(signed))


@dataclass(frozen=True)
class FlipWindow:
    """Ranks ``start`` to ``start + len(configs) - 1`` of a flip matrix, among themselves:
    the page shows ``top`` configs at a time (a 100 × 100 matrix of links is 1.4 MB of
    HTML), and the cases a config alone gets best are counted against every config."""

    flips: FlipMatrix
    start: int  # the rank (1-based) of the first config shown
    top: int  # configs per window
    configs: tuple[str, ...]
    better: tuple[tuple[int, ...], ...]  # better[i][j] among the shown configs

    @property
    def previous(self) -> int | None:
        return max(1, self.start - self.top) if self.start > 1 else None

    @property
    def next(self) -> int | None:
        end = self.start + len(self.configs)
        return end if end <= len(self.flips.configs) else None


def flip_window(flips: FlipMatrix, start: int, top: int) -> FlipWindow:
    """The ``top`` configs from rank ``start`` (clamped to the last window)."""
    first = max(0, min(start, len(flips.configs) - top + 1) - 1)
    shown = range(first, min(first + top, len(flips.configs)))
    return FlipWindow(
        flips,
        first + 1,
        top,
        tuple(flips.configs[i] for i in shown),
        tuple(tuple(flips.better[i][j] for j in shown) for i in shown),
    )


@dataclass(frozen=True)
class GridCell:
    configs: tuple[str, ...]
    mean: float | None
    low: float | None  # the 95% interval of the cell's config (of its best, for several)
    high: float | None
    note: str  # "95% CI" for one config, "best of k configs, its 95% CI" otherwise


@dataclass(frozen=True)
class Grid:
    metric: str
    x: str
    y: str
    x_values: tuple[str, ...]
    y_values: tuple[str, ...]
    cells: dict[tuple[str, str], GridCell]
    higher_is_better: bool = True

    @property
    def figure(self) -> str:
        """What a cell's number is, as its legend says: the leaderboard's figure (a
        corpus metric's is its corpus value, not a mean)."""
        if is_corpus_metric(self.metric):
            return f"{corpus_figure(self.metric)}, the leaderboard's figure,"
        return f"mean on {self.metric}"

    @property
    def span(self) -> tuple[float, float] | None:
        """The lowest and highest cell mean (None: no cell has one)."""
        means = [c.mean for c in self.cells.values() if c.mean is not None]
        return (min(means), max(means)) if means else None

    def shade(self, mean: float) -> float:
        """Where ``mean`` sits from the grid's worst cell (0) to its best (1): the colour
        spans the values present, so that close values still look different."""
        low, high = self.span or (mean, mean)
        if high == low:
            return 0.5
        share = (mean - low) / (high - low)
        return share if self.higher_is_better else 1 - share


def varied_parameters(session: Session, experiment_id: int) -> list[str]:
    """The parameters with two or more values among the experiment's configs."""
    configs = experiment_configs(session, experiment_id)
    names = [*_CATEGORICAL, *(p.name for p in PARAMETERS)]
    return [n for n in names if n in configs.columns and configs[n].dropna().nunique() >= 2]


def quality_grid(session: Session, experiment: str, x: str, y: str) -> Grid | None:
    """The first metric's mean per (x value, y value), from the stored aggregates: the
    config's mean and 95% interval; where several configs have those values (other
    parameters vary), the best of them with its interval. None for one parameter twice
    or nothing scored."""
    row = get_experiment(session, experiment)
    # The stored leaderboard's numbers, without load_leaderboard's pipeline facts, which
    # read every stage row (seconds with many).
    aggregates = aggregates_frame(session, int(row.id))
    metrics = [m for m in row.metrics or [] if m in set(aggregates["metric"])]
    if not metrics:
        return None
    metric = metrics[0]
    configs = experiment_configs(session, int(row.id)).rename(columns={"hash": "config"})
    if x == y or x not in configs.columns or y not in configs.columns:
        return None
    part = aggregates[aggregates["metric"] == metric].set_index("config_hash")
    table = configs[["config", "label", x, y]].copy()
    table[metric] = table["config"].map(part["mean"])
    # as the leaderboard shows them: none on fewer than 3 case groups, output_length's
    # capped at num_predict (shown_interval)
    most = configs.set_index("config")["num_predict"] if metric == "output_length" else {}
    shown = {h: shown_interval(a, most.get(h)) for h, a in part.to_dict("index").items()}
    table[f"{metric}_ci_low"] = table["config"].map(lambda h: shown.get(h, (None, None))[0])
    table[f"{metric}_ci_high"] = table["config"].map(lambda h: shown.get(h, (None, None))[1])
    table[x], table[y] = table[x].map(_shown), table[y].map(_shown)
    cells: dict[tuple[str, str], GridCell] = {}
    higher = metric_direction(metric)
    rank = _leaderboard_ranks(aggregates, table, metric, higher)
    for (vx, vy), part in table.groupby([x, y], sort=False):
        r = part.loc[min(part.index, key=lambda i: rank[part.at[i, "config"]])]
        note = "95% CI" if len(part) == 1 else f"best of {len(part)} configs, its 95% CI"
        cell = GridCell(
            tuple(part["config"]),
            _float(r[metric]),
            _float(r[f"{metric}_ci_low"]),
            _float(r[f"{metric}_ci_high"]),
            note,
        )
        cells[(str(vx), str(vy))] = cell
    return Grid(
        metric,
        x,
        y,
        tuple(dict.fromkeys(str(v) for v in table[x])),
        tuple(dict.fromkeys(str(v) for v in table[y])),
        cells,
        higher,
    )


def _leaderboard_ranks(
    aggregates: pd.DataFrame, table: pd.DataFrame, metric: str, higher: bool
) -> dict[str, int]:
    """Config -> its place on the leaderboard (``rank_order``, ties as there: a cell's
    best of several tied configs is the one the leaderboard ranks first)."""
    facts = aggregates.pivot(index="config_hash", columns="metric", values="mean")
    ties = tie_keys(facts.reset_index().to_dict("records"), name="config_hash")
    means = {c: _float(m) for c, m in zip(table["config"], table[metric], strict=True)}
    labels = dict(zip(table["config"], table["label"], strict=True))
    return {c: i for i, c in enumerate(rank_order(means, higher, labels, ties))}


def _shown(value: object) -> str:
    import pandas as pd

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _float(value: object) -> float | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else float(value)
