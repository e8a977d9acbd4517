"""The experiment page's summary: leaderboard with intervals, verdict, the configs within
noise of the best, Pareto fronts and parameter effects, from the functions the CLI and
the report use (the stored leaderboard, ``ranked_table``, the comparison's verdict,
``pareto_fronts``, ``parameter_effects``). The verdict is the stored comparison's (the
one that ends a sweep or an earlier `compare`); only where none is stored is it computed,
as the report does, and not while a run is going (it comes when the run ends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy import text
from sqlmodel import Session

from evaluation.calibration._render import calibration_text
from evaluation.compare._leaderboard import (
    UNSCORED_FLAG,
    Leaderboard,
    echo_flags,
    empty_flags,
    is_corpus_metric,
    load_leaderboard,
    metric_direction,
    ranked_table,
    ranking_words,
)
from evaluation.errors import EvalError
from evaluation.review.schema import RATED_IN_EXPERIMENT
from evaluation.spec._params import NAMES as PARAMETER_NAMES
from evaluation.spec._params import STUDIED_PARAMETERS as DEFAULT_PARAMETERS
from evaluation.statistics.precision import column_decimals, fixed
from evaluation.storage.comparisons import comparison_run
from evaluation.storage.models import Experiment
from evaluation.storage.race import raced
from evaluation.storage.repository import experiment_configs, get_experiment, metric_scores_frame
from evaluation.storage.runs import experiment_status
from evaluation.wording import EFFECTS_FIGURES, corpus_figure, per_case_words, verdict_words

if TYPE_CHECKING:  # pandas, numpy and the metrics: imported where a summary is computed
    import pandas as pd

#: While a run is going the page reloads itself this often (seconds).
REFRESH_S = 5


@dataclass(frozen=True)
class LeaderRow:
    rank: str
    config: str
    label: str
    cells: tuple[str, ...]  # one "mean [low, high]" per metric
    latency_p50_s: str  # the leaderboard's, as `show --wide` and the report show it
    latency_p95_s: str
    failed: str
    within_noise: bool
    fronts: tuple[str, ...]  # the quality metrics on whose latency-p95 front it stands
    empty: str = ""  # "empty outputs: 5 of 5" where the model returned nothing


class ShownFront(TypedDict):
    """A Pareto front as the summary lists it."""

    quality: str
    cost: str
    configs: list[tuple[str, str, str]]  # (rank, label, config hash) on the front
    note: str


@dataclass(frozen=True)
class Summary:
    status: str
    running: bool
    metrics: tuple[str, ...]
    primary: str | None
    rows: tuple[LeaderRow, ...]
    settings_line: str  # as under `show`'s board: one config's, what n= is alone
    verdict: str | None
    other_verdicts: tuple[str, ...]  # the other metrics' and latency's, stored ones only
    flags: tuple[str, ...]  # "ECHOES THE PROMPT: ...", "EMPTY OUTPUTS: ...", "NOT SCORED: ..."
    effects: tuple[dict[str, Any], ...]
    fronts: tuple[ShownFront, ...]
    notes: tuple[str, ...]
    calibrated: tuple[str, ...] = ()  # a judge's numbers combined with people's, as show
    coverage: str = ""  # "subset: 8 of 36 cases" where the run covered part of the suite
    groups_note: str = ""  # where the intervals rest on few case groups (``groups_note``)
    ranked_by: str = ""  # how the rows are ordered, as under the CLI's board (``ranking_words``)
    stopped: str = ""  # configs the race stopped rank above every one it kept, as under show's


def _empty_words(row: pd.Series) -> str:
    """The tag of a config with empty outputs (``empty_flags`` says it in full)."""
    import pandas as pd

    empty = row["empty_outputs"]
    if pd.isna(empty) or not empty:
        return ""
    return f"empty outputs: {int(empty)} of {int(row['generations_ok'])}"


def summary_fingerprint(session: Session, experiment: str, *, ending: str | None = None) -> tuple:
    """What the summary depends on, read cheaply (the small tables): when it is
    unchanged, a summary computed before still holds. ``ending``: the status its run
    ends with, taken for the stored one (a run stores its pages before its report, its
    last step)."""
    row = get_experiment(session, experiment)
    aggregates = session.exec(
        text("SELECT COUNT(*), SUM(mean), SUM(n) FROM aggregates WHERE experiment_id = :e"),
        params={"e": row.id},
    ).one()
    stored = comparison_run(session, row.name)
    status = ending or experiment_status(session, row).status
    people = session.exec(  # ratings and verdicts: the judges calibrated to people
        text(
            f"SELECT (SELECT COUNT(*) FROM ratings r WHERE {RATED_IN_EXPERIMENT}), "
            f"(SELECT MAX(r.id) FROM ratings r WHERE {RATED_IN_EXPERIMENT}), "
            "(SELECT COUNT(*) FROM judgements WHERE experiment_id = :e), "
            "(SELECT MAX(id) FROM judgements WHERE experiment_id = :e)"
        ),
        params={"e": row.id},
    ).one()
    created = stored.created_at if stored else None
    return (row.name, status, tuple(aggregates), created, tuple(people))


def experiment_summary(session: Session, experiment: str, *, ending: str | None = None) -> Summary:
    """What the experiment page shows (see the module docstring); ``ending``: the status
    its run ends with, shown in place of the stored one (``summary_fingerprint``)."""
    from evaluation.statistics.pareto import pareto_fronts

    row = get_experiment(session, experiment)
    status = ending or experiment_status(session, row).status
    running = status == "running"
    board = load_leaderboard(session, row.name)
    table = ranked_table(board)
    order = list(table["config"])
    names = {c: f"#{i}" for i, c in enumerate(order, start=1)}
    labels = board.labels
    primary = board.metrics[0] if board.metrics else None
    higher = metric_direction(primary) if primary else True
    notes: list[str] = [board.dropped_note] if board.dropped else []
    stopped = ""
    if raced(session, int(row.id)):  # configs the race stopped that lead the board
        from evaluation.adaptive import stopped_line

        stopped = stopped_line(session, int(row.id), board, order=order, where="")
    verdict, tied = _verdict(session, row, board, primary, running, notes)
    configs = experiment_configs(session, int(row.id)).rename(columns={"hash": "config"})
    facts = configs.merge(board.table.drop(columns=["label", "model"]), on="config", how="left")
    fronts = [
        front
        for metric in _front_metrics(board.metrics, primary, facts)
        for front in pareto_fronts(facts, quality=metric, higher_is_better=metric_direction(metric))
    ]
    on_fronts = {
        config: tuple(
            f.quality for f in fronts if f.cost == "latency_p95_s" and config in f.configs
        )
        for config in order
    }
    effects = _effects(session, int(row.id), facts, primary, higher) if primary else []
    by_value = _by_value(facts, primary, order) if primary else []
    indexed = board.table.set_index("config")
    digits = {
        m: column_decimals(indexed[f"{m}_ci_low"], indexed[f"{m}_ci_high"]) for m in board.metrics
    }
    rows = tuple(
        LeaderRow(
            rank=names[config],
            config=config,
            label=labels[config],
            cells=tuple(
                _interval(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"], digits[m])
                for m in board.metrics
            ),
            latency_p50_s=_number(r["latency_p50_s"], 3),
            latency_p95_s=_number(r["latency_p95_s"], 3),
            failed=_number(r["generations_failed"], 0),
            within_noise=config in tied,
            fronts=on_fronts[config],
            empty=_empty_words(r),
        )
        for config, r in ((c, indexed.loc[c]) for c in order)
    )
    return Summary(
        status=status,
        running=running,
        metrics=board.metrics,
        primary=primary,
        rows=rows,
        settings_line=board.settings_line,
        coverage=board.coverage.words() if board.coverage else "",
        groups_note=board.groups_note,
        ranked_by=ranking_words(board),
        stopped=stopped,
        verdict=verdict,
        other_verdicts=_other_verdicts(session, row.name, primary),
        flags=(echo_flags(board.rows) if "echoes_prompt" in board.metrics else ())
        + empty_flags(board.rows)
        + tuple(n for n in board.notes if n.startswith(UNSCORED_FLAG)),
        effects=tuple(
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
            for e in effects
        )
        + tuple(by_value),
        fronts=tuple(
            {
                "quality": f.quality,
                "cost": f.cost,
                "configs": [(names.get(c, c), labels.get(c, c), c) for c in f.configs],
                "note": f.note,
            }
            for f in fronts
        ),
        notes=tuple(notes),
        calibrated=tuple(calibration_text(session, row.name, labels=labels).splitlines()),
    )


def _front_metrics(
    metrics: tuple[str, ...] | list[str], primary: str | None, facts: pd.DataFrame
) -> list[str]:
    """The quality metrics the report draws fronts for (``evaluation.report.data``): the
    primary, then every other metric with a direction (not descriptive), each where some
    config has a mean on it."""
    import pandas as pd

    from evaluation.metrics import is_descriptive

    chosen = []
    for metric in metrics:
        scored = (
            metric in facts.columns and pd.to_numeric(facts[metric], errors="coerce").notna().any()
        )
        if scored and (metric == primary or not is_descriptive(metric)):
            chosen.append(metric)
    return chosen


def _verdict(
    session: Session,
    row: Experiment,
    board: Leaderboard,
    metric: str | None,
    running: bool,
    notes: list[str],
) -> tuple[str | None, set[str]]:
    """The primary metric's verdict line and the configs (hashes) within noise of the
    best: stored, else computed as the report does (not while a run is going)."""
    if metric is None:
        return None, set()
    found = _stored_verdict(session, row.name, metric)
    if found is None and running:
        notes.append("The verdict comes when the run ends (its comparison is computed then).")
        return None, set()
    if found is None:
        from evaluation.compare._comparison import compare_experiment

        outcome = compare_experiment(session, int(row.id), metrics=[metric])
        found = outcome.verdicts().get(metric)
        if found is None:
            return None, set()
        found = {"verdict": found["verdict"], "tied_at_top": found["tied"]}
    by_label = dict(zip(board.table["label"], board.table["config"], strict=True))
    tied = {by_label.get(name, name) for name in found.get("tied_at_top") or []}
    return found["verdict"], tied


def _other_verdicts(session: Session, experiment: str, primary: str | None) -> tuple[str, ...]:
    """The stored comparison's verdicts on every metric but the primary (latency's
    among them), as the CLI prints them at the end of a run; latency's says that its
    figures are means, the leaderboard's latency a median (``verdict_words``)."""
    from evaluation.compare._inputs import LATENCY  # pandas: `show` reads stored pages

    stored = comparison_run(session, experiment)
    if stored is None:
        return ()
    return tuple(
        verdict_words(str(v["verdict"]), on_latency=v.get("metric") == LATENCY)
        for v in stored.verdicts
        if v.get("metric") != primary and v.get("verdict")
    )


def _stored_verdict(session: Session, experiment: str, metric: str) -> Mapping[str, Any] | None:
    stored = comparison_run(session, experiment)
    if stored is None:
        return None
    return next((v for v in stored.verdicts if v.get("metric") == metric), None)


def _effects(
    session: Session, experiment_id: int, facts: pd.DataFrame, metric: str, higher: bool
) -> list:
    """The parameter effects on ``metric``, as the report computes them."""
    from evaluation.metrics import get_metric
    from evaluation.statistics.effects import parameter_effects  # scipy, statsmodels

    varied = [
        p for p in DEFAULT_PARAMETERS if p in facts.columns and facts[p].dropna().nunique() >= 2
    ]
    if not varied:
        return []
    scores = metric_scores_frame(session, experiment_id, metric)
    if scores.empty:
        return []
    try:
        score_type = get_metric(metric).score_type
    except EvalError:
        score_type = "continuous"
    return parameter_effects(
        scores, facts, metric, score_type=score_type, higher_is_better=higher, parameters=varied
    )


NOT_NUMERIC = "– (not numeric)"  # a by-value row's rho (``_by_value``)


def effects_words(summary: Summary) -> str:
    """Under the parameter effects on a corpus metric, which figure each row has: the
    correlations' per-case means, the rows per value (``_by_value``) the leaderboard's
    corpus figure ("" for any other metric: its one figure)."""
    metric = summary.primary
    if not metric or not summary.effects or not is_corpus_metric(metric):
        return ""
    words = []
    if any(e["rho"] != NOT_NUMERIC for e in summary.effects):
        words.append(per_case_words(metric, EFFECTS_FIGURES))
    if any(e["rho"] == NOT_NUMERIC for e in summary.effects):
        words.append(f"best config per value: by its {corpus_figure(metric)}, the leaderboard's")
    return "; ".join(words)


def _by_value(facts: pd.DataFrame, metric: str, order: list[str]) -> list[dict[str, Any]]:
    """The varied parameters that rank correlation does not study (the model, the
    template, switches and text): per value, its best config's mean on ``metric``, the
    values in the order of their best configs on the leaderboard (``order``: its rule
    breaks ties, so the best value is the #1 config's)."""
    studied = set(DEFAULT_PARAMETERS)
    ranked = facts.set_index("config").loc[[c for c in order if c in set(facts["config"])]]
    rows = []
    for name in ("model", "template_name", *(p for p in PARAMETER_NAMES if p not in studied)):
        if name not in ranked.columns or metric not in ranked.columns:
            continue
        values = ranked[[name, metric]].dropna(subset=[name])
        if values[name].nunique() < 2:
            continue
        best = values.drop_duplicates(subset=name)  # each value's first config: its best
        rows.append(
            {
                "parameter": name,
                "configs": len(values),
                "rho": NOT_NUMERIC,
                "p": "–",
                "best": _shown(best[name].iloc[0]) if best[metric].notna().any() else "–",
                "recommended": "–",
                "note": "best config per value: "
                + ", ".join(f"{_shown(v)} {_number(m, 3)}" for v, m in best.values),
            }
        )
    return rows


def _shown(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: object, digits: int) -> str:
    return "–" if _missing(value) else fixed(float(value), digits)


def _interval(mean: object, low: object, high: object, digits: int = 3) -> str:
    if _missing(mean):
        return "–"
    if _missing(low) or _missing(high):
        return fixed(float(mean), digits)
    return (
        f"{fixed(float(mean), digits)} [{fixed(float(low), digits)}, {fixed(float(high), digits)}]"
    )
